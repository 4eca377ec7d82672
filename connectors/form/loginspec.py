"""The login side of a form description beyond one HTML form: steps, JSON logins, headers.

- `login.steps`: an "identifier first" login, the user name on one page and the password on
  the next, each with its form, inputs and failure message;
- `login.type: json`: a POST of a JSON (or form-encoded) body to an API, whose answer says
  whether it worked, perhaps with a token to send as a header afterwards, perhaps after a CSRF
  token was read from a page's `<meta>` or a cookie;
- `login.type: none`: no login at all (an API key in `headers:` is enough);
- `headers:`: fixed request headers, perhaps with a secret (an API key) in them.

Read here with the description's Checker, so that connectors/form/spec.py stays short; the
login itself is run by connectors/form/login.py. Paths into JSON answers are JMESPath.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions

from connectors.form.values import Checker, Probe
from gmid.errors import quoted

LOGIN_TYPES = ("form", "json", "none", "oauth2")
MEDIA = ("sms", "email", "app", "unknown")
PROMPTS = {
    "sms": "Enter the code the portal sent by SMS",
    "email": "Enter the code the portal sent by e-mail",
    "app": "Enter the code shown by your authenticator app",
    "unknown": "Enter the one-time code the portal asks for",
}
ENCODINGS = ("json", "form")
# A header name as an option path can carry it: HTTP's token characters, without the dot.
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+^_`|~-]+")
_SECRET_FORMS = "{env: VAR}, {file: PATH}, {command: ...} or {credential: NAME}"
# What the placeholders of a login body and of a header's format may be.
BODY_FIELDS = ("username", "password", "csrf")
HEADER_FIELDS = ("secret", "username", "password")
TOKEN_FIELDS = ("token",)


@dataclass(frozen=True)
class StepSpec:
    """One page of a login in steps: its form, which inputs get what, its failure message."""

    path: str  # "login.steps[0]", for messages
    form: str
    username: str | None = None  # the input that gets the user name in this step
    password: str | None = None
    static: tuple[tuple[str, str], ...] = ()
    failure: Probe | None = None


@dataclass(frozen=True)
class JsonPath:
    """A JMESPath into a JSON answer, with the option that gave it (for messages)."""

    option: str  # "login.failure.path"
    expression: str

    def find(self, data: Any) -> Any:
        """The value the path leads to in `data` (None when there is none)."""
        return jmespath.search(self.expression, data)


@dataclass(frozen=True)
class TokenSpec:
    """Where the login's token is (a path in the answer, or a cookie), and how it is sent."""

    header: str
    format: str = "{token}"
    path: JsonPath | None = None
    cookie: str | None = None


@dataclass(frozen=True)
class CsrfSpec:
    """The CSRF token an API wants in a header or in the body: from a page's <meta>, from a
    cookie, or from a JSON answer (`path`)."""

    header: str | None  # None: only `{csrf}` in the body carries it
    page: str | None = None  # None: `start`
    meta: str | None = None  # the <meta name=...> whose content it is
    cookie: str | None = None
    path: JsonPath | None = None  # where it is in the page's JSON answer


@dataclass(frozen=True)
class JsonLogin:
    """A login through an API: one request with a body made from a template."""

    url: str
    body: Any  # the template, parsed: placeholders are filled in its strings, then encoded
    encoding: str = "json"
    success: JsonPath | None = None  # must lead to something (not null, false or empty)
    failure: JsonPath | None = None  # the portal's message when it refused the login
    token: TokenSpec | None = None
    csrf: CsrfSpec | None = None
    code: Any = None  # codespec.ApiCode: the one-time code the API may ask for
    before: tuple[Any, ...] = ()  # requestspec.ApiRequest: requests sent before this one


@dataclass(frozen=True)
class HeaderSpec:
    """A request header the description fixes; `format` may hold a secret (an API key)."""

    name: str
    format: str  # "{...}" placeholders: secret, username, password
    secret: str | None = None  # the option path of its secret reference, read by the config


def read_steps(c: Checker, value: Any) -> tuple[StepSpec, ...]:
    """Read `login.steps`: a list of pages, together naming the user name and password inputs."""
    if not isinstance(value, list) or not value:
        example = "[{form: ..., username: ...}, {form: ..., password: ...}]"
        c.problem("login.steps", f"expected a list of login pages, e.g. {example}")
        return ()
    steps = []
    for i, item in enumerate(value):
        path = f"login.steps[{i}]"
        m = c.mapping(item, path, ("form", "username", "password", "static", "failure"))
        form = c.selector(m.get("form"), f"{path}.form")
        if "form" not in m and isinstance(item, Mapping):
            c.problem(f"{path}.form", "missing: the CSS selector of this page's form")
        step = StepSpec(
            path=path,
            form=form or "",
            username=c.text(m.get("username"), f"{path}.username"),
            password=c.text(m.get("password"), f"{path}.password"),
            static=c.pairs(m.get("static"), f"{path}.static"),
            failure=c.probe(m.get("failure"), f"{path}.failure"),
        )
        if form is not None:
            steps.append(step)
    for what in ("username", "password"):
        if not any(getattr(s, what) for s in steps) and len(steps) == len(value):
            c.problem(
                "login.steps",
                f"no step says which input takes the {what.replace('name', ' name')}, "
                f"e.g. `{what}: {'email' if what == 'username' else 'password'}`",
            )
    return tuple(steps)


def read_session_params(c: Checker, value: Any) -> tuple[str, ...]:
    """Read `login.session_params`: the query parameters that carry the session (a text is a
    list of one)."""
    names = tuple(c.text_list(value, "login.session_params"))
    if value == []:
        c.problem("login.session_params", "expected parameter names, e.g. [id, idt]")
    return names


def read_json_login(c: Checker, m: Mapping[str, Any], before: tuple = ()) -> JsonLogin | None:
    """Read a `login:` of `type: json` (its keys already checked); `before` is its
    `login.before` (read by connectors/form/requestspec.py)."""
    from connectors.form.codespec import read_api_code  # it reads with this module's parts

    url = c.text(m.get("url"), "login.url")
    if "url" not in m:
        c.problem("login.url", "missing: the address the login is sent to, e.g. /api/login")
    elif url is not None and urlsplit(url).scheme not in ("", "http", "https"):
        c.problem("login.url", f"expected a web address (https://... or /path), got {quoted(url)}")
        url = None
    encoding = c.choice(m.get("encoding"), "login.encoding", ENCODINGS) or "json"
    body = _body(c, m.get("body"), encoding)
    if body is None and "body" not in m:
        c.problem("login.body", 'missing: e.g. {"email": "{username}", "password": "{password}"}')
    token = read_token(c, m.get("token"))
    code = m.get("code")
    code_body = code.get("body") if isinstance(code, Mapping) else None  # may hold {csrf}
    bodies = [body or {}, *(r.body or {} for r in before), code_body or {}]
    in_body = any("{csrf}" in t for b in bodies for _, t in body_strings(b))
    csrf = _csrf(c, m.get("csrf"), in_body)
    if in_body and "csrf" not in m:
        c.problem("login.body", "{csrf} needs `login.csrf:`, where the token is read")
    login = JsonLogin(
        url=url or "",
        body=body,
        encoding=encoding,
        success=path_option(c, m.get("success"), "login.success"),
        failure=path_option(c, m.get("failure"), "login.failure"),
        token=token,
        csrf=csrf,
        code=read_api_code(c, code, body),
        before=before,
    )
    return login if url is not None and body is not None else None


def read_headers(c: Checker, value: Any) -> tuple[HeaderSpec, ...]:
    """Read `headers:`: {Name: text} or {Name: {format: "Token {secret}", secret: {env: X}}}."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        c.problem("headers", "expected a mapping of header names to values")
        return ()
    headers = []
    for name, item in value.items():
        path = f"headers.{name}"
        if not _HEADER_NAME.fullmatch(str(name)):
            c.problem(path, f"{quoted(str(name))} is not a header name (letters, digits, '-')")
            continue
        if not isinstance(item, Mapping):
            text = c.text(item, path)
            if text is not None and check_format(c, text, path, ()):
                headers.append(HeaderSpec(str(name), text))
            continue
        m = c.mapping(item, path, ("format", "secret"))
        fmt = c.text(m.get("format"), f"{path}.format")
        secret = m.get("secret")
        if "format" not in m:
            c.problem(f"{path}.format", 'missing: the header\'s value, e.g. "Token {secret}"')
        if secret is not None and not isinstance(secret, str | Mapping):
            c.problem(f"{path}.secret", f"expected a secret: {_SECRET_FORMS}")
        fields = HEADER_FIELDS if secret is not None else HEADER_FIELDS[1:]
        if fmt is not None and check_format(c, fmt, f"{path}.format", fields):
            if secret is not None and "{secret}" not in fmt:
                c.problem(f"{path}.format", "the secret is not used: put {secret} in it")
            headers.append(HeaderSpec(str(name), fmt, f"{path}.secret" if secret else None))
    return tuple(headers)


def secret_options(options: Mapping[str, Any]) -> list[str]:
    """The option paths of a description that hold secret references (headers' `secret:`)."""
    headers = options.get("headers") if isinstance(options, Mapping) else None
    if not isinstance(headers, Mapping):
        return []
    return [
        f"headers.{name}.secret"
        for name, item in headers.items()
        if isinstance(item, Mapping) and item.get("secret") is not None
    ]


def fill(template: str, values: Mapping[str, str]) -> str:
    """Put values in a checked format's placeholders (`{{` stands for a brace)."""
    return template.format_map(values)


def fill_body(body: Any, values: Mapping[str, str]) -> Any:
    """The body template with its strings' placeholders filled; the structure is kept, so that
    encoding it (JSON, or a form) escapes the values, whatever characters a password has."""
    if isinstance(body, str):
        return fill(body, values)
    if isinstance(body, Mapping):
        return {str(k): fill_body(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [fill_body(v, values) for v in body]
    return body


# -- the parts


def _body(c: Checker, value: Any, encoding: str) -> Any:
    """The body template: a mapping (YAML or a JSON text); its strings' placeholders checked."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            c.problem("login.body", f"expected a mapping or a JSON object: {e}")
            return None
    if not isinstance(value, Mapping):
        c.problem("login.body", "expected a mapping of the fields to send")
        return None
    if encoding == "form" and any(isinstance(v, Mapping | list) for v in value.values()):
        c.problem("login.body", "a form-encoded body has flat fields only (encoding: form)")
        return None
    ok = all(check_format(c, text, path, BODY_FIELDS) for path, text in body_strings(value))
    if ok and not any("{password}" in text for _, text in body_strings(value)):
        c.problem("login.body", 'the password is not sent: put "{password}" in a field')
    return value if ok else None


def body_strings(value: Any, path: str = "login.body") -> list[tuple[str, str]]:
    """The body's string values with their option paths."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in body_strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in body_strings(v, f"{path}[{i}]")]
    return []


def check_format(c: Checker, text: str, path: str, fields: tuple[str, ...]) -> bool:
    """Check a text's `{placeholders}`: only `fields`, bare (`{{` for a brace)."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        c.problem(path, f"{quoted(text)}: {e} (write {{{{ and }}}} for braces)")
        return False
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in fields or spec or conversion:
            known = ", ".join(f"{{{f}}}" for f in fields) or "none"
            c.problem(path, f"unknown placeholder {{{name}}} (known: {known}; {{{{ for a brace)")
            return False
    return True


def json_path(c: Checker, value: Any, option: str) -> JsonPath | None:
    text = c.text(value, option)
    if text is None:
        return None
    try:
        jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as e:
        c.problem(option, f"invalid JSON path {quoted(text)}: {str(e).splitlines()[0]}")
        return None
    return JsonPath(option, text)


def path_option(c: Checker, value: Any, option: str) -> JsonPath | None:
    """`{path: ...}` (a bare text is short for it)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"path": value}
    m = c.mapping(value, option, ("path",))
    if "path" not in m and isinstance(value, Mapping):
        c.problem(f"{option}.path", "missing: a JSON path into the answer, e.g. error.message")
    return json_path(c, m.get("path"), f"{option}.path")


def read_token(c: Checker, value: Any, default_format: str = "{token}") -> TokenSpec | None:
    """Read `login.token`: where the login's token is, and how it is sent."""
    if value is None:
        return None
    m = c.mapping(value, "login.token", ("path", "cookie", "header", "format"))
    path = json_path(c, m.get("path"), "login.token.path")
    cookie = c.text(m.get("cookie"), "login.token.cookie")
    header = _header_name(c, m.get("header"), "login.token.header") or "Authorization"
    fmt = c.text(m.get("format"), "login.token.format") or default_format
    if not check_format(c, fmt, "login.token.format", TOKEN_FIELDS):
        return None
    if ("path" in m) == ("cookie" in m) and isinstance(value, Mapping):
        c.problem("login.token", "give one of `path:` (in the answer) or `cookie:`")
        return None
    if "{token}" not in fmt:
        c.problem("login.token.format", "the token is not used: put {token} in it")
        return None
    return TokenSpec(header, fmt, path, cookie) if path or cookie else None


def _csrf(c: Checker, value: Any, in_body: bool) -> CsrfSpec | None:
    if value is None:
        return None
    m = c.mapping(value, "login.csrf", ("page", "meta", "cookie", "path", "header"))
    page = c.text(m.get("page"), "login.csrf.page")
    meta = c.text(m.get("meta"), "login.csrf.meta")
    cookie = c.text(m.get("cookie"), "login.csrf.cookie")
    path = json_path(c, m.get("path"), "login.csrf.path")
    header = _header_name(c, m.get("header"), "login.csrf.header")
    if sum(k in m for k in ("meta", "cookie", "path")) != 1 and isinstance(value, Mapping):
        c.problem(
            "login.csrf",
            "give one of `meta:` (a page's <meta name=...>), `cookie:` or `path:` (in a JSON "
            "answer)",
        )
        return None
    if page is not None and urlsplit(page).scheme not in ("", "http", "https"):
        c.problem("login.csrf.page", f"expected a web address, got {quoted(page)}")
        return None
    if "header" not in m and not in_body and isinstance(value, Mapping):
        c.problem(
            "login.csrf.header",
            'missing: the header the API reads it from (or "{csrf}" in the body)',
        )
    if (header is None and not in_body) or (meta is None and cookie is None and path is None):
        return None
    return CsrfSpec(header, page, meta, cookie, path)


def _header_name(c: Checker, value: Any, option: str) -> str | None:
    text = c.text(value, option)
    if text is not None and not _HEADER_NAME.fullmatch(text):
        c.problem(option, f"{quoted(text)} is not a header name (letters, digits, '-')")
        return None
    return text
