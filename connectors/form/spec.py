"""The form connector's portal description, read from `options` into frozen dataclasses.

Reading collects every problem with its option path (`documents.fields.date.formats[0]`), so
that the config loader can name the file, the line and the option, all at once. Each part has a
`type` (`form`, `json` or `none` logins; `html` lists today) so that new kinds fit beside them
without changing what is already written in users' files. The values inside the sections
(texts, selectors, probes...) are read by connectors/form/values.py; the login's steps, JSON
logins and `headers:` by connectors/form/loginspec.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectors.form import loginspec as ls
from connectors.form.approval import ApprovalSpec, read_approval
from connectors.form.beforespec import BeforeStep, is_form_download, read_extras
from connectors.form.detailspec import DetailSpec, read_detail
from connectors.form.jsonspec import KEYS as JSON_KEYS
from connectors.form.jsonspec import JsonListSpec, read_json_list
from connectors.form.oauthspec import KEYS as OAUTH_KEYS
from connectors.form.oauthspec import OAuthSpec, read_oauth
from connectors.form.periods import PeriodSpec
from connectors.form.requestspec import read_before
from connectors.form.values import Checker, Probe, Value
from connectors.form.widgets import WidgetSpec, read_widget
from gmid.errors import quoted

MEDIA = ls.MEDIA
FIELDS = ("id", "date", "number", "amount", "title")
# Values of an option that are planned but not there yet, with what to say: none at present.
_PLANNED: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class LoginSpec:
    """The login form (or its pages, or an API) and how its outcome is recognised."""

    success: Probe | None = None  # None: a page without the login form counts as logged in
    type: str = "form"
    form: str | None = None  # None: the first form with a password input
    username: str | None = None  # None: the text input before the password input
    password: str | None = None  # None: the password input
    static: tuple[tuple[str, str], ...] = ()
    failure: Probe | None = None
    steps: tuple[ls.StepSpec, ...] = ()  # an "identifier first" login: one form per page
    api: ls.JsonLogin | None = None  # `type: json`
    oauth: OAuthSpec | None = None  # `type: oauth2`: the form is the identity provider's
    session_params: tuple[str, ...] = ()  # the session is in the address: these parameters


@dataclass(frozen=True)
class CodeSpec:
    """The one-time code step that may follow the login."""

    when: Probe
    form: str | None = None
    field: str | None = None
    static: tuple[tuple[str, str], ...] = ()
    medium: str = "unknown"
    prompt: Probe | None = None  # where the portal says where it sent the code
    failure: Probe | None = None
    attempts: int = 3


@dataclass(frozen=True)
class CaptchaSpec:
    """A captcha image in the login form and the input that takes its answer."""

    image: str
    field: str
    failure: Probe | None = None
    attempts: int = 3


@dataclass(frozen=True)
class ListSpec:
    """The pages that list documents, and how a row becomes a document."""

    pages: tuple[str, ...]
    rows: str
    download: Value
    fields: Mapping[str, Value] = field(default_factory=dict)
    next: Value | None = None
    max_pages: int = 50
    type: str = "html"
    empty: Probe | None = None  # what the portal shows when it really has no documents
    json: JsonListSpec | None = None  # type json: the download, paging and empty mark of JSON lists
    periods: PeriodSpec | None = None  # `{year}`/`{month}` in the pages: the last N of them
    before: tuple[BeforeStep, ...] = ()  # requests after the login, before the list
    download_form: str | None = None  # the row's form that hands out its document (a POST)
    detail: DetailSpec | None = None  # the page each row links to, where its download is


@dataclass(frozen=True)
class FormSpec:
    """A whole portal description."""

    start: str
    login: LoginSpec
    documents: ListSpec
    code: CodeSpec | None = None
    captcha: CaptchaSpec | None = None
    widget: WidgetSpec = field(default_factory=WidgetSpec)  # reCAPTCHA & co., found by default
    headers: tuple[ls.HeaderSpec, ...] = ()  # sent with every request to the portal
    approval: ApprovalSpec | None = None  # a login confirmed in the portal's app


def read_spec(options: Mapping[str, Any]) -> tuple[FormSpec | None, list[tuple[str, str]]]:
    """Read a description; return it (None if unusable) and its problems as (path, message)."""
    c = Checker(_PLANNED)
    keys = ("start", "login", "code", "captcha", "captcha_widget", "documents", "headers")
    m = c.mapping(options, "", (*keys, "approval"))
    for key in ("start", "documents"):
        if key not in m and isinstance(options, Mapping):
            c.problem(key, _MISSING[key])
    start = c.url(m.get("start"), "start")
    login = _login(c, m.get("login"))
    code = _code(c, m["code"]) if "code" in m else None
    captcha = _captcha(c, m["captcha"]) if "captcha" in m else None
    widget = read_widget(c, m.get("captcha_widget"))
    documents = _documents(c, m["documents"]) if "documents" in m else None
    headers = ls.read_headers(c, m.get("headers"))
    approval = read_approval(c, m.get("approval"))
    for key in ("code", "captcha", "approval"):
        if key in m and login is not None and login.type not in ("form", "oauth2"):
            hint = " (an API login's code step is `login.code`)" if key == "code" else ""
            kind = login.type
            c.problem(key, f"only after an HTML login form, not with login.type {kind}{hint}")
    if "captcha" in m and login is not None and login.steps:
        c.problem("captcha", "only in a single login form, not with login.steps")
    if c.problems or start is None or login is None or documents is None:
        return None, c.problems
    return FormSpec(start, login, documents, code, captcha, widget, headers, approval), []


_MISSING = {
    "start": "missing: the URL of the login page, e.g. https://portal.example/login",
    "documents": "missing: the list pages, `rows:` and `download:`",
    "documents.pages": "missing: the list page(s), e.g. [/invoices]",
    "documents.rows": "missing: the CSS selector of a document's row, e.g. 'table tbody tr'",
    "documents.rows:json": "missing: the JMESPath to the list of documents, e.g. 'invoices'",
    "documents.download:json": "missing: where a document comes from, e.g. {path: links.pdf}",
    "documents.download": "missing: the download link in a row, e.g. {selector: 'a.pdf'}",
    "captcha.image": "missing: the CSS selector of the captcha image",
    "captcha.field": "missing: the name of the input that takes the captcha's answer",
}


def _login(c: Checker, value: Any) -> LoginSpec | None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind in ("json", "none"):
        return _other_login(c, value, kind)
    keys = ("type", "form", "fields", "static", "success", "failure", "steps", "session_params")
    m = c.mapping(value, "login", (*keys, *OAUTH_KEYS) if kind == "oauth2" else keys)
    c.choice(m.get("type"), "login.type", ls.LOGIN_TYPES)
    oauth = read_oauth(c, m) if kind == "oauth2" else None
    fields = c.mapping(m.get("fields"), "login.fields", ("username", "password"))
    steps = ls.read_steps(c, m["steps"]) if "steps" in m else ()
    for key in ("form", "fields", "static"):
        if steps and key in m:
            c.problem(f"login.{key}", "give it in each of `steps:` instead")
    return LoginSpec(
        success=c.probe(m.get("success"), "login.success"),
        form=c.selector(m.get("form"), "login.form"),
        username=c.text(fields.get("username"), "login.fields.username"),
        password=c.text(fields.get("password"), "login.fields.password"),
        static=c.pairs(m.get("static"), "login.static"),
        failure=c.probe(m.get("failure"), "login.failure"),
        steps=steps,
        type="oauth2" if oauth is not None else "form",
        oauth=oauth,
        session_params=ls.read_session_params(c, m.get("session_params")),
    )


def _other_login(c: Checker, value: Mapping, kind: str) -> LoginSpec | None:
    """A login through an API (`type: json`), or none at all (`type: none`)."""
    if kind == "none":
        c.mapping(value, "login", ("type",))
        return LoginSpec(type="none")
    keys = ("type", "url", "body", "encoding", "success", "failure", "token", "csrf", "code")
    m = c.mapping(value, "login", (*keys, "before"))
    api = ls.read_json_login(c, m, read_before(c, m.get("before")))
    return LoginSpec(type="json", api=api) if api is not None else None


def _code(c: Checker, value: Any) -> CodeSpec | None:
    keys = ("when", "form", "field", "static", "medium", "prompt", "failure", "attempts")
    m = c.mapping(value, "code", keys)
    form = c.selector(m.get("form"), "code.form")
    when = c.probe(m.get("when"), "code.when")
    if when is None and form is not None:
        when = Probe("code.form", selector=form)  # the code form itself says the step came
    elif when is None and value is not None:
        c.problem("code", "give `when:` (or `form:`), how the code page is recognised")
    spec = CodeSpec(
        when=when or Probe("code"),
        form=form,
        field=c.text(m.get("field"), "code.field"),
        static=c.pairs(m.get("static"), "code.static"),
        medium=c.choice(m.get("medium"), "code.medium", MEDIA) or "unknown",
        prompt=c.probe(m.get("prompt"), "code.prompt", selector_only=True),
        failure=c.probe(m.get("failure"), "code.failure"),
        attempts=c.integer(m.get("attempts"), "code.attempts", 3, 1, 10),
    )
    return spec if when is not None else None


def _captcha(c: Checker, value: Any) -> CaptchaSpec | None:
    m = c.mapping(value, "captcha", ("image", "field", "failure", "attempts"))
    image = c.selector(m.get("image"), "captcha.image")
    answer = c.text(m.get("field"), "captcha.field")
    for key in ("image", "field"):
        if key not in m and value is not None:
            c.problem(f"captcha.{key}", _MISSING[f"captcha.{key}"])
    spec = CaptchaSpec(
        image=image or "",
        field=answer or "",
        failure=c.probe(m.get("failure"), "captcha.failure"),
        attempts=c.integer(m.get("attempts"), "captcha.attempts", 3, 1, 10),
    )
    return spec if image is not None and answer is not None else None


def _documents(c: Checker, value: Any) -> ListSpec | None:
    if isinstance(value, Mapping) and value.get("type") == "json":
        return _json_documents(c, value)
    keys = ("type", "pages", "rows", "fields", "download", "next", "max_pages", "empty", "detail")
    m = c.mapping(value, "documents", (*keys, "periods", "before"))
    c.choice(m.get("type"), "documents.type", ("html", "json"))
    pages = _pages(c, m)
    rows = c.selector(m.get("rows"), "documents.rows")
    extras = read_extras(c, m, pages)  # periods, steps before the list, a download form
    detail, m = _detail(c, m, "html")
    if is_form_download(m.get("download")):
        download = Value("documents.download.form", selector=extras["download_form"])
    else:
        download = c.value(m.get("download"), "documents.download", default_attribute="href")
    if detail is not None:
        download = detail.link
    for key in ("pages", "rows", "download"):
        if key not in m and value is not None and not (key == "download" and "detail" in m):
            c.problem(f"documents.{key}", _MISSING[f"documents.{key}"])
    fields: dict[str, Value] = {}
    for name, spec in c.mapping(m.get("fields"), "documents.fields", FIELDS).items():
        extra = {"date": ("formats",), "amount": ("decimal",)}.get(name, ())
        read = c.value(spec, f"documents.fields.{name}", extra=extra)
        if read is not None:
            fields[name] = read
    spec = ListSpec(
        pages=tuple(pages),
        rows=rows or "",
        download=download or Value("documents.download"),
        fields=fields,
        next=c.value(m.get("next"), "documents.next", default_attribute="href"),
        max_pages=c.integer(m.get("max_pages"), "documents.max_pages", 50, 1, 10000),
        empty=c.probe(m.get("empty"), "documents.empty"),
        **extras,
        detail=detail,
    )
    return spec if pages and rows is not None and download is not None else None


def _detail(c: Checker, m: Mapping[str, Any], kind: str) -> tuple[DetailSpec | None, Mapping]:
    """Read `documents.detail`; the list's `download` is then the row's link to that page."""
    if "detail" not in m:
        return None, m
    if "download" in m:
        c.problem(
            "documents.download",
            "give it in documents.detail.download: with a detail page, the row's link to that "
            "page is documents.detail.link",
        )
    detail = read_detail(c, m["detail"], kind)
    rest = {k: v for k, v in m.items() if k != "download"}
    if detail is None or kind != "json":
        return detail, rest  # an HTML list reads detail.link as it reads a download link
    return detail, {**rest, "download": detail.json_download()}


def _pages(c: Checker, m: Mapping[str, Any]) -> list[str]:
    pages = c.text_list(m.get("pages"), "documents.pages")
    for i, page in enumerate(pages):
        if urlsplit(page).scheme not in ("", "http", "https"):
            where = f"documents.pages[{i}]" if isinstance(m["pages"], list) else "documents.pages"
            c.problem(where, f"expected a web address (https://... or /path), got {quoted(page)}")
    return pages


def _json_documents(c: Checker, value: Mapping[str, Any]) -> ListSpec | None:
    """A JSON list (type: json): rows and fields are JMESPath expressions (jsonspec.py)."""
    m = c.mapping(value, "documents", (*JSON_KEYS, "periods", "before", "detail"))
    pages = _pages(c, m)
    detail, m = _detail(c, m, "json")
    rows, fields, json = read_json_list(c, m)
    extras = read_extras(c, m, pages, html=False)  # periods and steps before the list
    if detail is not None and json is not None:  # a row without it names the detail's option
        json = dataclasses.replace(json, download_path=detail.link)
    for key in ("pages", "rows", "download"):
        if key not in m and not (key == "download" and "detail" in m):
            c.problem(
                f"documents.{key}",
                _MISSING.get(f"documents.{key}:json", _MISSING[f"documents.{key}"]),
            )
    spec = ListSpec(
        pages=tuple(pages),
        rows=rows or "",
        download=Value("documents.download"),
        fields=fields,
        max_pages=c.integer(m.get("max_pages"), "documents.max_pages", 50, 1, 10000),
        type="json",
        json=json,
        **extras,
        detail=detail,
    )
    return spec if pages and rows is not None and json is not None else None
