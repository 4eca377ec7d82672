"""Logins beyond one HTML form: pages in steps, JSON APIs, and the headers sent afterwards.

The description's parts are read by connectors/form/loginspec.py. The form connector inherits
OtherLogins, runs these logins from its `login()`, and sends every request through
PortalHeaders, which adds the description's `headers:` and the login's token and CSRF header,
to the portal's own hosts only (never to a CDN a download link or a redirect leads to).

Every secret met here (the token of a JSON answer, a CSRF token; an API key comes through
`ctx.secret`) is told to the run (`ctx.learn_secret`) before anything could show it: it is then
blanked in logs, saved pages and messages, as the password is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import requests
import requests.auth

from connectors.form import extract as x
from connectors.form.apicode import ApiCodes
from connectors.form.apicode import json_of as _json
from connectors.form.apicode import message_of as _message
from connectors.form.loginspec import CsrfSpec, JsonLogin, StepSpec, fill, fill_body
from connectors.form.requestspec import ApiRequest
from gmid.errors import PortalError, SessionExpired, WrongCredentials

if TYPE_CHECKING:
    import mechanicalsoup

    from connectors.base import PortalContext
    from connectors.form.spec import FormSpec

logger = logging.getLogger(__name__)


class PortalHeaders(requests.auth.AuthBase):
    """Headers added to every request to the portal's hosts, and removed from any other.

    Set as the session's `auth`, it sees each request as it is prepared, and (through a
    response hook) each redirect before it is followed.
    """

    def __init__(self, hosts: set[str]):
        self.hosts = hosts
        self._values: dict[str, str | Callable[[], str | None]] = {}
        self.params: dict[str, str] = {}  # `login.session_params`: added to the address

    def set(self, name: str, value: str | Callable[[], str | None] | None) -> None:
        """Send `value` (or what the callable gives at each request) as header `name`."""
        if value is None:
            self._values.pop(name, None)
        else:
            self._values[name] = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._apply(request, request.url or "")
        if self.params and host_of(request.url or "") in self.hosts:
            query = parse_qs(urlsplit(request.url or "").query)
            request.prepare_url(
                request.url, {k: v for k, v in self.params.items() if k not in query}
            )
        request.register_hook("response", self._redirected)
        return request

    def _apply(self, request: requests.PreparedRequest, url: str) -> None:
        own = host_of(url) in self.hosts
        for name, value in self._values.items():
            text = value() if callable(value) else value
            if own and text:
                request.headers[name] = text
            else:
                request.headers.pop(name, None)

    def _redirected(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Before a redirect is followed: its request gets the headers only on our hosts."""
        if response.is_redirect and response.request is not None:
            target = urljoin(response.url, response.headers.get("Location", ""))
            self._apply(response.request, target)
        return response


def host_of(url: str) -> str:
    """The host and port a URL leads to, as compared for headers."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{(parts.hostname or '').lower()}:{port}"


class OtherLogins(ApiCodes):
    """The form connector's logins beyond one HTML form (a mixin of FormConnector)."""

    spec: FormSpec
    ctx: PortalContext
    browser: mechanicalsoup.StatefulBrowser
    headers: PortalHeaders
    _response: requests.Response | None
    _listing: bool  # documents are being listed or fetched: the login is behind us
    _open_json: Callable[[str], requests.Response]

    def _install_headers(self) -> PortalHeaders:
        """Put the description's headers on the session; return them for the login's.

        They go to the hosts the description names: `start`, the login's and CSRF page's
        addresses, the list pages.
        """
        spec, ctx = self.spec, self.ctx
        urls = [spec.start, *self._list_urls()]
        api = spec.login.api
        if api is not None:
            urls.append(urljoin(spec.start, api.url))
            if api.csrf is not None and api.csrf.page:
                urls.append(urljoin(spec.start, api.csrf.page))
            urls += [urljoin(spec.start, request.url) for request in api.before]
            if api.code is not None and api.code.url is not None:
                code = api.code
                urls += [urljoin(spec.start, r.url) for r in (*code.before, code)]
        headers = PortalHeaders({host_of(url) for url in urls})
        for header in spec.headers:
            values = {"username": ctx.username}
            if "{password}" in header.format:
                values["password"] = ctx.password()
            if header.secret is not None:
                values["secret"] = ctx.secret(header.secret)  # known to the run as a secret
            text = fill(header.format, values)
            if "\r" in text or "\n" in text:
                raise PortalError(
                    f"{ctx.portal}: headers.{header.name}: its value has a line break"
                )
            headers.set(header.name, text)
        self.browser.session.auth = headers
        return headers

    def _login_ended(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """After the login, a 401 of the portal (a list page, a download) means that it ended:
        SessionExpired, so that the runner logs in again once. Without a login, the portal
        refused the headers (the API key): WrongCredentials."""
        if response.status_code != 401 or not self._listing:
            return response
        response.close()
        where = f"{self.ctx.portal}: HTTP 401 for {x.public_url(response.url)}"
        if self.spec.login.type == "none":
            raise WrongCredentials(f"{where}, the portal refused the headers")
        raise SessionExpired(f"{where}, the login has ended")

    def _keep_session_params(self) -> None:
        """Take the session's parameters from the address the login ended on; they are added
        to every later address of the portal (`login.session_params`)."""
        names = self.spec.login.session_params
        if not names:
            return
        query = parse_qs(urlsplit(self.browser.url or "").query)
        missing = [name for name in names if not query.get(name)]
        if missing:
            raise self._changed(
                f"login.session_params: the address after the login has no {missing[0]!r}"
            )
        self.headers.params = {name: query[name][0] for name in names}
        for value in self.headers.params.values():
            self.ctx.learn_secret(value)

    # -- an "identifier first" login

    def _step_login(self) -> None:
        """Fill and submit each page's form in turn; a failure message on any ends the login."""
        steps = self.spec.login.steps
        for number, step in enumerate(steps):
            form = x.find_form(self.page, step.form, "input")
            if form is None:
                if number > 0:  # the portal did not go on: perhaps it refused the user name
                    self._refused(steps[number - 1])
                raise self._changed(
                    f"{step.path}.form: selector {step.form!r} found no form", selector=step.form
                )
            filled = self._select(form)
            if step.username:
                self._set(filled, step.username, self.ctx.username, f"{step.path}.username")
            if step.password:
                self._set(filled, step.password, self.ctx.password(), f"{step.path}.password")
            for name, value in step.static:
                self._set(filled, name, value, f"{step.path}.static.{name}", force=True)
            self._submit()
            self._refused(step)

    def _refused(self, step: StepSpec) -> None:
        """Raise WrongCredentials when the page shows the step's (or the login's) failure."""
        for probe in (step.failure, self.spec.login.failure):
            text = self._text(probe)
            if text is not None:
                raise WrongCredentials(
                    f"{self.ctx.portal}: the portal refused the user name or password",
                    portal_message=text or None,
                )

    # -- a login through an API

    def _api_login(self) -> None:
        """Send the login body; take the token from the answer (or a cookie), or raise why not."""
        api, ctx = self.spec.login.api, self.ctx
        assert api is not None
        if api.token is not None:
            self.headers.set(api.token.header, None)  # a new login starts without the old token
        values = {"username": ctx.username, "password": ctx.password()}
        if api.csrf is not None:
            values["csrf"] = self._read_csrf(api.csrf)
        for request in api.before:  # the user name checked on its own, a cookie set
            self._send_before(request, {k: v for k, v in values.items() if k != "password"})
        body = fill_body(api.body, values)
        url = urljoin(self.spec.start, api.url)
        response, answer = self._send_login(api, url, body)
        own = api.code is not None and api.code.url is not None  # a request of its own
        if api.code is not None and not own and api.code.when.find(answer):
            response, answer = self._api_code(api, url, body)
        token = self._token(api, answer)  # known as a secret before anything may show it
        self._judge(api, answer, response)
        if own:  # the password taken: now the code, if the portal wants one
            self._own_code(api, answer, values)
            token = self._token(api, answer)  # a cookie token may come with the code
        if api.token is not None:
            if not token:
                what = (
                    f"login.token.path: {api.token.path.expression!r} found nothing in the answer"
                    if api.token.path is not None
                    else f"login.token.cookie: the answer set no cookie {api.token.cookie!r}"
                )
                raise self._changed(what, url=url)
            self.headers.set(api.token.header, fill(api.token.format, {"token": token}))
        logger.info("%s: logged in through %s", ctx.portal, x.public_url(url))

    def _send_before(self, request: ApiRequest, values: dict[str, str]) -> Any:
        """Send one of `login.before` (or `login.code.before`); its JSON answer. The portal's
        words in it (or a 401/403) refuse the user name, any other HTTP error means that the
        description no longer fits."""
        url = urljoin(self.spec.start, request.url)
        accept = {"Accept": "application/json"}
        if request.body is None:
            response = self.browser.session.get(url, headers=accept)
        else:
            body = fill_body(request.body, values)
            send = {"json": body} if request.encoding == "json" else {"data": body}
            response = self.browser.session.post(url, headers=accept, **send)
        self._response = response
        answer = _json(response)
        found = request.failure.find(answer) if request.failure and answer is not None else None
        message = _message(found)
        if message or response.status_code in (401, 403):
            raise WrongCredentials(
                f"{self.ctx.portal}: the portal refused the user name ({request.path})",
                portal_message=message or None,
            )
        if response.status_code >= 400:
            raise self._changed(f"{request.path}.url: HTTP {response.status_code}", url=url)
        return answer

    def _send_login(self, api: JsonLogin, url: str, body: Any) -> tuple[requests.Response, Any]:
        """POST the login body; the answer and its JSON (None when it is not JSON)."""
        send = {"json": body} if api.encoding == "json" else {"data": body}
        response = self.browser.session.post(url, headers={"Accept": "application/json"}, **send)
        self._response = response
        return response, _json(response)

    def _judge(self, api: JsonLogin, answer: Any, response: requests.Response) -> None:
        """Raise what the answer says went wrong: the portal's words, or what was not found."""
        url, status = response.url, response.status_code
        failure = api.failure
        message = _message(failure.find(answer)) if failure and answer is not None else None
        if message or status in (401, 403):
            raise WrongCredentials(
                f"{self.ctx.portal}: the portal refused the user name or password",
                portal_message=message or None,
            )
        if status >= 400:
            raise self._changed(f"login.url: HTTP {status} for the login", url=url)
        if answer is None:
            raise self._changed("login.url: the answer is not JSON", url=url)
        if api.success is not None and not api.success.find(answer):
            what = f"login.success.path: {api.success.expression!r} found nothing in the answer"
            raise self._changed(what, url=url)

    def _token(self, api: JsonLogin, answer: Any) -> str:
        """The token the login answer carries ("" when none), told to the run as a secret."""
        spec, token = api.token, ""
        if spec is not None and spec.path is not None and answer is not None:
            found = spec.path.find(answer)
            if isinstance(found, str | int) and not isinstance(found, bool):
                token = str(found).strip()
        elif spec is not None and spec.cookie is not None:
            token = self._cookie(spec.cookie) or ""
        if token:
            self.ctx.learn_secret(token)
        return token

    def _read_csrf(self, csrf: CsrfSpec) -> str:
        """Open the CSRF page; read its token from a <meta> (sent from now on) or a cookie
        (read again at each request: portals renew it)."""
        page = urljoin(self.spec.start, csrf.page or self.spec.start)
        if csrf.path is not None:
            return self._json_csrf(csrf, page)
        self._open(page)
        if csrf.cookie is not None:
            name = csrf.cookie
            token = self._cookie(name)
            if not token:
                where = x.public_url(page)
                raise self._changed(f"login.csrf.cookie: {where} set no cookie {name!r}")
            if csrf.header is not None:
                self.headers.set(csrf.header, lambda: self._cookie(name))
            return token
        tag = self.page.find("meta", attrs={"name": csrf.meta})
        token = str(tag.get("content") or "").strip() if tag is not None else ""
        if not token:
            raise self._changed(f"login.csrf.meta: no <meta name={csrf.meta!r}> with a content")
        self.ctx.learn_secret(token)
        if csrf.header is not None:
            self.headers.set(csrf.header, token)
        return token

    def _json_csrf(self, csrf: CsrfSpec, page: str) -> str:
        """The CSRF token of a JSON answer (NextAuth's /api/auth/csrf: {"csrfToken": ...})."""
        assert csrf.path is not None
        response = self._open_json(page)
        found = csrf.path.find(_json(response))
        token = str(found).strip() if isinstance(found, str | int) else ""
        if not token:
            where = x.public_url(page)
            what = f"login.csrf.path: {csrf.path.expression!r} found nothing in the answer of"
            raise self._changed(f"{what} {where}", url=page)
        self.ctx.learn_secret(token)
        if csrf.header is not None:
            self.headers.set(csrf.header, token)
        return token

    def _cookie(self, name: str) -> str | None:
        """A cookie's value as a page's script reads it (URL-decoded), the last if several."""
        found = [c.value for c in self.browser.session.cookies if c.name == name and c.value]
        if not found:
            return None
        value = unquote(found[-1])
        self.ctx.learn_secret(value)
        return value
