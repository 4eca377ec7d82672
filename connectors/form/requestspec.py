"""`login.before`: the requests an API login makes before its own (`login.type: json`).

Some login APIs want a request or two before the one with the password: the e-mail address
checked on its own ("identifier first", as an API), a visit that sets a cookie. Each is a GET
(without `body`) or a POST of a body made from a template, as the login's; its answer may
refuse the user name with the portal's own words (`failure`). Run by connectors/form/login.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.form import loginspec as ls
from connectors.form.values import Checker
from gmid.errors import quoted

MAX_REQUESTS = 5
# The password goes in the login's own body only: a request before it never carries it.
FIELDS = ("username", "csrf")


@dataclass(frozen=True)
class ApiRequest:
    """One request before an API login: a GET, or a POST of a body template."""

    path: str  # "login.before[0]", for messages
    url: str
    body: Any = None  # None: a GET
    encoding: str = "json"
    failure: ls.JsonPath | None = None  # the portal's words when it refuses the user name


def read_before(c: Checker, value: Any, option: str = "login.before") -> tuple[ApiRequest, ...]:
    """Read `login.before` (or `login.code.before`): a list of {url, body, encoding, failure}."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value or len(value) > MAX_REQUESTS:
        example = '[{url: /api/check-email, body: {email: "{username}"}}]'
        wanted = f"expected a list of 1 to {MAX_REQUESTS} requests, e.g. {example}"
        c.problem(option, wanted)
        return ()
    found = []
    for i, item in enumerate(value):
        path = f"{option}[{i}]"
        m = c.mapping(item, path, ("url", "body", "encoding", "failure"))
        url = c.text(m.get("url"), f"{path}.url")
        if "url" not in m and isinstance(item, Mapping):
            c.problem(f"{path}.url", "missing: the address of the request, e.g. /api/check")
        if url is not None and urlsplit(url).scheme not in ("", "http", "https"):
            wanted = f"expected a web address (https://... or /path), got {quoted(url)}"
            c.problem(f"{path}.url", wanted)
            url = None
        encoding = c.choice(m.get("encoding"), f"{path}.encoding", ls.ENCODINGS) or "json"
        body = _body(c, m.get("body"), encoding, f"{path}.body")
        failure = ls.path_option(c, m.get("failure"), f"{path}.failure")
        if url is not None and (body is not None or "body" not in m):
            found.append(ApiRequest(path, url, body, encoding, failure))
    return tuple(found)


def _body(c: Checker, value: Any, encoding: str, path: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        c.problem(path, "expected a mapping of the fields to send")
        return None
    if encoding == "form" and any(isinstance(v, Mapping | list) for v in value.values()):
        c.problem(path, "a form-encoded body has flat fields only (encoding: form)")
        return None
    strings = ls.body_strings(value, path)
    if any("{password}" in text for _, text in strings):
        c.problem(path, "the password goes in the login's own body (login.body), not before it")
        return None
    ok = all(ls.check_format(c, text, where, FIELDS) for where, text in strings)
    return value if ok else None
