"""The form connector's portal description, read from `options` into frozen dataclasses.

Reading collects every problem with its option path (`documents.fields.date.formats[0]`), so
that the config loader can name the file, the line and the option, all at once. Each part has a
`type` (only `form` logins and `html` lists exist today) so that JSON logins and JSON lists can
be added beside them without changing what is already written in users' files.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import soupsieve

from connectors._widgets import WidgetSpec, read_widget
from gmid.confreader import suggest

MEDIA = ("sms", "email", "app", "unknown")
FIELDS = ("id", "date", "number", "amount", "title")
_PLANNED = {
    "login.type": {"json": "JSON logins are planned, not supported yet"},
    "documents.type": {"json": "JSON lists are planned, not supported yet"},
}


@dataclass(frozen=True)
class Probe:
    """How a page is recognised: a CSS selector that matches, a regex found in its URL, or both."""

    path: str  # the option, for messages: "login.success"
    selector: str | None = None
    url: str | None = None

    def describe(self) -> str:
        """Say what was looked for, as the user wrote it."""
        parts = [f"selector {self.selector!r}"] if self.selector else []
        parts += [f"url {self.url!r}"] if self.url else []
        return " and ".join(parts)


@dataclass(frozen=True)
class Value:
    """Where one value of a record is read, and how it is cleaned up."""

    path: str
    selector: str | None = None  # relative to the row; None: the row itself
    attribute: str | None = None  # read this attribute instead of the text
    regex: str | None = None  # keep its first group
    formats: tuple[str, ...] = ()  # dates
    decimal: str = "."  # amounts


@dataclass(frozen=True)
class LoginSpec:
    """The login form and how its outcome is recognised."""

    success: Probe | None = None  # None: a page without the login form counts as logged in
    type: str = "form"
    form: str | None = None  # None: the first form with a password input
    username: str | None = None  # None: the text input before the password input
    password: str | None = None  # None: the password input
    static: tuple[tuple[str, str], ...] = ()
    failure: Probe | None = None


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


@dataclass(frozen=True)
class FormSpec:
    """A whole portal description."""

    start: str
    login: LoginSpec
    documents: ListSpec
    code: CodeSpec | None = None
    captcha: CaptchaSpec | None = None
    widget: WidgetSpec = field(default_factory=WidgetSpec)  # reCAPTCHA & co., found by default


def read_spec(options: Mapping[str, Any]) -> tuple[FormSpec | None, list[tuple[str, str]]]:
    """Read a description; return it (None if unusable) and its problems as (path, message)."""
    c = _Checker()
    keys = ("start", "login", "code", "captcha", "captcha_widget", "documents")
    m = c.mapping(options, "", keys)
    for key in ("start", "documents"):
        if key not in m and isinstance(options, Mapping):
            c.problem(key, _MISSING[key])
    start = c.url(m.get("start"), "start")
    login = _login(c, m.get("login"))
    code = _code(c, m["code"]) if "code" in m else None
    captcha = _captcha(c, m["captcha"]) if "captcha" in m else None
    widget = read_widget(c, m.get("captcha_widget"))
    documents = _documents(c, m["documents"]) if "documents" in m else None
    if c.problems or start is None or login is None or documents is None:
        return None, c.problems
    return FormSpec(start, login, documents, code, captcha, widget), []


_MISSING = {
    "start": "missing: the URL of the login page, e.g. https://portal.example/login",
    "documents": "missing: the list pages, `rows:` and `download:`",
    "documents.pages": "missing: the list page(s), e.g. [/invoices]",
    "documents.rows": "missing: the CSS selector of a document's row, e.g. 'table tbody tr'",
    "documents.download": "missing: the download link in a row, e.g. {selector: 'a.pdf'}",
    "captcha.image": "missing: the CSS selector of the captcha image",
    "captcha.field": "missing: the name of the input that takes the captcha's answer",
}


def _login(c: _Checker, value: Any) -> LoginSpec:
    keys = ("type", "form", "fields", "static", "success", "failure")
    m = c.mapping(value, "login", keys)
    c.choice(m.get("type"), "login.type", ("form",))
    fields = c.mapping(m.get("fields"), "login.fields", ("username", "password"))
    return LoginSpec(
        success=c.probe(m.get("success"), "login.success"),
        form=c.selector(m.get("form"), "login.form"),
        username=c.text(fields.get("username"), "login.fields.username"),
        password=c.text(fields.get("password"), "login.fields.password"),
        static=c.pairs(m.get("static"), "login.static"),
        failure=c.probe(m.get("failure"), "login.failure"),
    )


def _code(c: _Checker, value: Any) -> CodeSpec | None:
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


def _captcha(c: _Checker, value: Any) -> CaptchaSpec | None:
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


def _documents(c: _Checker, value: Any) -> ListSpec | None:
    keys = ("type", "pages", "rows", "fields", "download", "next", "max_pages", "empty")
    m = c.mapping(value, "documents", keys)
    c.choice(m.get("type"), "documents.type", ("html",))
    pages = c.text_list(m.get("pages"), "documents.pages")
    for i, page in enumerate(pages):
        if urlsplit(page).scheme not in ("", "http", "https"):
            where = f"documents.pages[{i}]" if isinstance(m["pages"], list) else "documents.pages"
            c.problem(where, f"expected a web address (https://... or /path), got {page!r}")
    rows = c.selector(m.get("rows"), "documents.rows")
    download = c.value(m.get("download"), "documents.download", default_attribute="href")
    for key in ("pages", "rows", "download"):
        if key not in m and value is not None:
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
    )
    return spec if pages and rows is not None and download is not None else None


class _Checker:
    """Reads plain YAML values (dicts, lists, scalars), recording problems by option path."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, message: str) -> None:
        """Record a problem."""
        self.problems.append((path, message))

    def mapping(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
        """Return a mapping's known keys (none if absent); unknown keys are problems."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping of options, got {_kind(value)}")
            return {}
        found = {}
        for key, item in value.items():
            if key in keys:
                found[key] = item
            else:
                self.problem(_join(path, str(key)), "unknown option" + suggest(str(key), keys))
        return found

    def text(self, value: Any, path: str) -> str | None:
        """Return a text value; numbers are taken as written, true/false must be quoted."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            hint = " (quote it)" if isinstance(value, bool) else ""
            self.problem(path, f"expected a text value, got {_kind(value)}{hint}")
            return None
        if isinstance(value, str) and not value.strip():
            self.problem(path, "expected a text value, got an empty one")
            return None
        return str(value)

    def text_list(self, value: Any, path: str) -> list[str]:
        """Return a list of texts; a single text counts as a list of one."""
        items = value if isinstance(value, list) else [] if value is None else [value]
        many = isinstance(value, list)
        texts = [self.text(v, f"{path}[{i}]" if many else path) for i, v in enumerate(items)]
        return [t for t in texts if t is not None]

    def pairs(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        """Return a mapping of form field names to texts."""
        if value is not None and not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping of field names to values, got {_kind(value)}")
            return ()
        found = ((str(k), self.text(v, _join(path, str(k)))) for k, v in (value or {}).items())
        return tuple((k, v) for k, v in found if v is not None)

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str | None:
        """Return one of `choices`."""
        text = self.text(value, path)
        if text is not None and text not in choices:
            planned = _PLANNED.get(path, {}).get(text)
            self.problem(path, planned or f"unknown value {text!r}" + suggest(text, choices))
            return None
        return text

    def integer(self, value: Any, path: str, default: int, low: int, high: int) -> int:
        """Return a whole number between `low` and `high`."""
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(path, f"expected a whole number from {low} to {high}, got {value!r}")
            return default
        return value

    def url(self, value: Any, path: str) -> str | None:
        """Return an absolute http(s) URL."""
        text = self.text(value, path)
        parts = urlsplit(text) if text is not None else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            self.problem(path, f"expected an absolute URL (https://...), got {text!r}")
            return None
        return text

    def selector(self, value: Any, path: str) -> str | None:
        """Return a CSS selector that soupsieve can compile."""
        text = self.text(value, path)
        if text is None:
            return None
        try:
            soupsieve.compile(text)
        except soupsieve.SelectorSyntaxError as e:
            self.problem(path, f"invalid CSS selector {text!r}: {str(e).splitlines()[0]}")
            return None
        return text

    def regex(self, value: Any, path: str, group: bool = False) -> str | None:
        """Return a regular expression that compiles (with a group if `group`)."""
        text = self.text(value, path)
        if text is None:
            return None
        try:
            compiled = re.compile(text)
        except re.error as e:
            self.problem(path, f"invalid regular expression {text!r}: {e}")
            return None
        if group and compiled.groups == 0:
            example = r"'Nr\. (\d+)'"
            self.problem(path, f"needs a group ( ) around the part to keep, e.g. {example}")
            return None
        return text

    def date_format(self, value: Any, path: str) -> str | None:
        """Return a strptime format with a year in it."""
        text = self.text(value, path)
        if text is None:
            return None
        try:
            sample = datetime.date(2024, 12, 31)
            datetime.datetime.strptime(sample.strftime(text), text)
        except ValueError as e:
            self.problem(path, f"invalid date format {text!r}: {e}")
            return None
        if not re.search(r"%[Yy]", text):
            self.problem(path, f"date format {text!r} has no year (%Y or %y)")
            return None
        return text

    def probe(self, value: Any, path: str, selector_only: bool = False) -> Probe | None:
        """Return a Probe from {selector, url} (a bare text is a selector)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = {"selector": value}
        m = self.mapping(value, path, ("selector",) if selector_only else ("selector", "url"))
        probe = Probe(
            path,
            self.selector(m.get("selector"), f"{path}.selector"),
            self.regex(m.get("url"), f"{path}.url"),
        )
        if not m and isinstance(value, Mapping):
            self.problem(path, "give `selector:`" + ("" if selector_only else " or `url:`"))
        return probe if probe.selector or probe.url else None

    def value(
        self,
        value: Any,
        path: str,
        extra: tuple[str, ...] = (),
        default_attribute: str | None = None,
    ) -> Value | None:
        """Return a Value from {selector, attribute, regex, ...} (a bare text is a selector)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = {"selector": value}
        m = self.mapping(value, path, ("selector", "attribute", "regex", *extra))
        raw = m.get("formats")
        if isinstance(raw, list):
            formats = [self.date_format(f, f"{path}.formats[{i}]") for i, f in enumerate(raw)]
        else:  # one format written without a list
            formats = [self.date_format(raw, f"{path}.formats")]
        decimal = self.choice(m.get("decimal"), f"{path}.decimal", (".", ","))
        return Value(
            path,
            selector=self.selector(m.get("selector"), f"{path}.selector"),
            attribute=self.text(m.get("attribute"), f"{path}.attribute") or default_attribute,
            regex=self.regex(m.get("regex"), f"{path}.regex", group=True),
            formats=tuple(f for f in formats if f is not None),
            decimal=decimal or ".",
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    """Describe a plain YAML value for "expected X, got Y" messages."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"true/false {value!r}"
    if isinstance(value, int | float):
        return f"a number {value!r}"
    return "nothing" if value is None else f"text {value!r}"
