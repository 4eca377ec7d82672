"""The one-time code of an API login (`login.code` with `login.type: json`), as it is sent.

The code goes either in the login body, sent again with one more field, or to a request of its
own (`login.code.url`): then the requests of `login.code.before` are sent after the login (a
session answer that says whether a code is wanted), `when` looks at the last answer, the values
of `capture` are read from it (an `otpId`), and the code request is sent with them. Both ask the
user again, with the portal's words, while the portal refuses the code. Read by
connectors/form/codespec.py; a mixin of the form connector's OtherLogins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

import requests

from connectors.base import CodeRequest
from connectors.form.loginspec import PROMPTS, JsonLogin, fill, fill_body
from gmid.errors import CodeRejected, PortalChanged

if TYPE_CHECKING:
    import mechanicalsoup

    from connectors.base import PortalContext
    from connectors.form.codespec import ApiCode
    from connectors.form.requestspec import ApiRequest
    from connectors.form.spec import FormSpec

MESSAGE_CAP = 500  # characters of a portal's message taken from a JSON answer


class ApiCodes:
    """Sending the code an API login asks for (a mixin of OtherLogins)."""

    spec: FormSpec
    ctx: PortalContext
    browser: mechanicalsoup.StatefulBrowser
    _response: requests.Response | None
    _send_login: Callable[..., tuple[requests.Response, Any]]
    _send_before: Callable[[ApiRequest, dict[str, str]], Any]
    _changed: Callable[..., PortalChanged]

    def _api_code(self, api: JsonLogin, url: str, body: Any) -> tuple[requests.Response, Any]:
        """Ask for the code the answer wants and send the body again with it, again while the
        portal refuses it; the answer that no longer asks for a code."""
        code = api.code
        assert code is not None and code.field is not None
        retry = None
        for _ in range(code.attempts):
            typed = self._ask_code(code, retry)
            response, answer = self._send_login(api, url, {**body, code.field: typed})
            if not code.when.find(answer):
                return response, answer
            words = (code.failure or api.failure) if answer is not None else None
            retry = (message_of(words.find(answer)) if words else None) or "the code was refused"
        raise self._rejected(code, retry)

    def _own_code(self, api: JsonLogin, answer: Any, values: dict[str, str]) -> None:
        """After the login (its `answer`): send `login.code.before`, and when the last answer
        asks for a code, send it in its own request with the values captured from that answer,
        again while the portal refuses it."""
        code = api.code
        assert code is not None and code.url is not None
        values = {k: v for k, v in values.items() if k != "password"}
        for request in code.before:  # the session's answer, which says whether a code is due
            answer = self._send_before(request, values)
        if not code.when.find(answer):
            return  # no code wanted (a device the portal trusts)
        for name, path in code.capture:
            found = path.find(answer)
            if isinstance(found, bool) or not isinstance(found, str | int) or found == "":
                where = f"login.code.capture.{name}: {path.expression!r}"
                raise self._changed(f"{where} found nothing in the answer that asks for a code")
            values[name] = str(found)
            self.ctx.learn_secret(values[name])
        retry = None
        for _ in range(code.attempts):
            typed = self._ask_code(code, retry)
            response, reply = self._send_code(code, {**values, "code": typed})
            words = code.failure or api.failure
            message = message_of(words.find(reply)) if words and reply is not None else None
            if not message and response.status_code < 400:
                return
            retry = message or f"the code was refused (HTTP {response.status_code})"
        raise self._rejected(code, retry)

    def _ask_code(self, code: ApiCode, retry: str | None) -> str:
        request = CodeRequest(PROMPTS[code.medium], code.medium, retry_message=retry)
        return self.ctx.ask(request).strip()

    def _send_code(self, code: ApiCode, values: dict[str, str]) -> tuple[requests.Response, Any]:
        """The code's own request: its address and body filled in (the address's values
        quoted), a POST of the body, or a GET without one."""
        assert code.url is not None
        address = fill(code.url, {k: quote(v, safe="") for k, v in values.items()})
        url = urljoin(self.spec.start, address)
        accept = {"Accept": "application/json"}
        if code.body is None:
            response = self.browser.session.get(url, headers=accept)
        else:
            body = fill_body(code.body, values)
            send = {"json": body} if code.encoding == "json" else {"data": body}
            response = self.browser.session.post(url, headers=accept, **send)
        self._response = response
        return response, json_of(response)

    def _rejected(self, code: ApiCode, retry: str | None) -> CodeRejected:
        return CodeRejected(
            f"{self.ctx.portal}: the portal refused {code.attempts} codes", portal_message=retry
        )


def json_of(response: requests.Response) -> Any:
    """The answer as JSON, or None when it is not (its size is capped by the session; a
    hostile answer nested too deep for the parser is not JSON either)."""
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        return None


def message_of(found: Any) -> str | None:
    """The portal's words from what a failure path found: a text, or texts in a list."""
    if found is None or found is False or found == "" or found == []:
        return None
    if isinstance(found, list):
        text = "; ".join(message_of(item) or "" for item in found if item)
    elif isinstance(found, dict):
        text = json.dumps(found, ensure_ascii=False)
    else:
        text = str(found)
    return " ".join(text.split())[:MESSAGE_CAP] or None
