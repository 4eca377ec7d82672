"""`login.code` of an API login (`login.type: json`): the one-time code the portal asks for.

Two shapes, as real APIs have them:
- the code goes in the login's own body, sent again with one more field (`field:`);
- the code goes to a request of its own (`url:`, with a `body:` template holding `{code}`),
  often after requests that show whether a code is wanted at all (`before:`, such as
  NextAuth's session answer), with values read from that answer (`capture: {otp_id: otpId}`)
  and sent back as `{otp_id}`.

Read here with the description's Checker; run by connectors/form/apicode.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.form import loginspec as ls
from connectors.form.values import Checker
from gmid.errors import quoted

KEYS = ("when", "field", "medium", "failure", "attempts")
OWN_KEYS = ("url", "body", "encoding", "before", "capture")  # the code's own request
FIELDS = ("code", "username", "csrf")  # what a code request's url and body may hold
MAX_CAPTURES = 5
_NAME = re.compile(r"[a-z][a-z0-9_]{0,29}")


@dataclass(frozen=True)
class ApiCode:
    """The one-time code an API login may ask for: in the login body sent again (`field`), or
    in a request of its own (`url`)."""

    when: ls.JsonPath  # leads to something when the answer asks for a code
    field: str | None = None  # the login body's key that carries the code
    medium: str = "unknown"
    failure: ls.JsonPath | None = None  # the portal's words when it refused a code
    attempts: int = 3
    url: str | None = None  # the code's own request; `{code}` and captured values filled in
    body: Any = None  # its template (None: a GET)
    encoding: str = "json"
    before: tuple[Any, ...] = ()  # requestspec.ApiRequest: sent after the login, before `when`
    capture: tuple[tuple[str, ls.JsonPath], ...] = ()  # {name} values read where `when` looks


def read_api_code(c: Checker, value: Any, body: Any) -> ApiCode | None:
    """Read `login.code` of an API login; `body` is the login's body template."""
    if value is None:
        return None
    m = c.mapping(value, "login.code", (*KEYS, *OWN_KEYS))
    when = ls.path_option(c, m.get("when"), "login.code.when")
    if "when" not in m:
        c.problem("login.code.when", "missing: the path that shows the answer asks for a code")
    common = {
        "medium": c.choice(m.get("medium"), "login.code.medium", ls.MEDIA) or "unknown",
        "failure": ls.path_option(c, m.get("failure"), "login.code.failure"),
        "attempts": c.integer(m.get("attempts"), "login.code.attempts", 3, 1, 10),
    }
    if "url" in m:
        own = _own_request(c, m)
        return ApiCode(when=when, **common, **own) if when and own else None
    for key in OWN_KEYS:
        if key in m:
            c.problem(f"login.code.{key}", "only with `login.code.url`, the code's own request")
    field = c.text(m.get("field"), "login.code.field")
    if "field" not in m:
        c.problem(
            "login.code.field",
            "missing: the body's key the code is sent in (or `url:` and `body:` for a request "
            "of its own)",
        )
    if body is not None and not isinstance(body, Mapping):
        c.problem("login.code", "the login body must be a mapping for the code to be added")
    if when is None or field is None:
        return None
    return ApiCode(when=when, field=field, **common)


def _own_request(c: Checker, m: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parts of a code sent in a request of its own: its url, body, the requests before
    it and the values captured."""
    from connectors.form.requestspec import read_before  # it reads with loginspec too

    if "field" in m:
        c.problem("login.code.field", "with `url:`, the code goes where {code} is in `body:`")
    url = c.text(m.get("url"), "login.code.url")
    if url is not None and urlsplit(url).scheme not in ("", "http", "https"):
        c.problem("login.code.url", f"expected a web address (https://... or /path), got {url!r}")
        url = None
    capture = _capture(c, m.get("capture"))
    fields = (*FIELDS, *(name for name, _ in capture))
    encoding = c.choice(m.get("encoding"), "login.code.encoding", ls.ENCODINGS) or "json"
    body = _body(c, m.get("body"), encoding, fields)
    strings = [("login.code.url", url or ""), *ls.body_strings(body or {}, "login.code.body")]
    if url is not None and not ls.check_format(c, url, "login.code.url", fields):
        url = None
    if url is not None and not any("{code}" in text for _, text in strings):
        c.problem("login.code.body", 'the code is not sent: put "{code}" in a field (or the url)')
        url = None
    before = read_before(c, m.get("before"), "login.code.before")
    if url is None or (body is None and "body" in m):
        return None
    return {"url": url, "body": body, "encoding": encoding, "before": before, "capture": capture}


def _capture(c: Checker, value: Any) -> tuple[tuple[str, ls.JsonPath], ...]:
    """`capture: {name: path}`: values read from the answer `when` looks at, sent as {name}."""
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value or len(value) > MAX_CAPTURES:
        wanted = f"expected a mapping of 1 to {MAX_CAPTURES} names to paths, e.g. {{otp_id: otpId}}"
        c.problem("login.code.capture", wanted)
        return ()
    found = []
    for name, path in value.items():
        option = f"login.code.capture.{name}"
        if not _NAME.fullmatch(str(name)) or name in (*FIELDS, "password"):
            c.problem(option, f"{quoted(str(name))}: expected a new name of small letters and _")
            continue
        expression = ls.json_path(c, path, option)
        if expression is not None:
            found.append((str(name), expression))
    return tuple(found)


def _body(c: Checker, value: Any, encoding: str, fields: tuple[str, ...]) -> Any:
    """The code request's body template; its strings' placeholders checked."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        c.problem("login.code.body", "expected a mapping of the fields to send")
        return None
    if encoding == "form" and any(isinstance(v, Mapping | list) for v in value.values()):
        c.problem("login.code.body", "a form-encoded body has flat fields only (encoding: form)")
        return None
    strings = ls.body_strings(value, "login.code.body")
    return value if all(ls.check_format(c, t, p, fields) for p, t in strings) else None
