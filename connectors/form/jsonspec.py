"""The `documents:` part of a form description for JSON lists (`type: json`), read and checked.

Paths into the portal's answers are JMESPath expressions (https://jmespath.org), compiled when
the description is read, so that a typo is reported with its option path at config time. The
runtime side is connectors/form/jsonlist.py.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from connectors.form.values import Checker, Value
from gmid.errors import quoted

FIELDS = ("id", "date", "number", "amount", "title")
FIELD_OPTIONS = {"date": ("formats",), "amount": ("decimal", "cents")}
KEYS = (
    "type",
    "pages",
    "rows",
    "fields",
    "download",
    "next",
    "page",
    "offset",
    "max_pages",
    "empty",
)


@dataclass(frozen=True)
class JsonListSpec:
    """What a JSON list has beyond an HTML one: the download's kind, the paging, the empty mark."""

    download_path: Value | None = None  # a link in the row
    download_url: str | None = None  # a URL made of the row's fields: "/invoices/{id}/pdf"
    download_base64: Value | None = None  # the document itself, base64 in the row
    next: Value | None = None  # the next page's URL in the answer, or a token (next_param)
    next_param: str | None = None
    page_param: str | None = None  # page numbers: ?page=1, 2, ... until a page is empty
    page_start: int = 1
    offset_param: str | None = None  # offsets: ?offset=0, 100, ... until a page is empty
    limit_param: str | None = None
    limit: int = 100
    empty: Value | None = None  # true (not null/false) in an answer that really lists nothing

    @property
    def download_option(self) -> str:
        """The option that says where a document comes from, for messages."""
        if self.download_url is not None:
            return "documents.download.url"
        if self.download_base64 is not None:
            return "documents.download.base64"
        return "documents.download.path"


@lru_cache(maxsize=256)
def compiled(expression: str) -> ParsedResult:
    """A JMESPath expression, compiled once."""
    return jmespath.compile(expression)


def search(expression: str, data: Any) -> Any:
    """What an expression gives in a JSON answer (None when it matches nothing)."""
    return compiled(expression).search(data)


def read_json_list(
    c: Checker, m: Mapping[str, Any]
) -> tuple[str | None, dict[str, Value], JsonListSpec | None]:
    """Read `rows`, `fields` and the JSON-only options of a `documents:` mapping."""
    rows = expression(c, m.get("rows"), "documents.rows")
    fields: dict[str, Value] = {}
    fields_given = c.mapping(m.get("fields"), "documents.fields", FIELDS)
    for name, spec in fields_given.items():
        found = json_value(c, spec, f"documents.fields.{name}", FIELD_OPTIONS.get(name, ()))
        if found is not None:
            fields[name] = found
    download = _download(c, m.get("download"), fields)
    paging = _paging(c, m)
    if download is None:
        return rows, fields, None
    return (
        rows,
        fields,
        JsonListSpec(**download, **paging, empty=json_value(c, m.get("empty"), "documents.empty")),
    )


def expression(c: Checker, value: Any, path: str) -> str | None:
    """Return a JMESPath expression that compiles."""
    text = c.text(value, path)
    if text is None:
        return None
    try:
        compiled(text)
    except JMESPathError as e:
        first = str(e).splitlines()[0].removeprefix("Invalid jmespath expression: ")
        c.problem(path, f"invalid JMESPath expression {quoted(text)}: {first}")
        return None
    return text


def json_value(c: Checker, value: Any, path: str, extra: tuple[str, ...] = ()) -> Value | None:
    """Return a Value from {path, regex, ...} (a bare text is a path)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"path": value}
    m = c.mapping(value, path, ("path", "regex", *extra))
    if "path" not in m and isinstance(value, Mapping):
        c.problem(f"{path}.path", "missing: where the value is in the row, e.g. `path: total`")
    read = c.value({k: v for k, v in m.items() if k not in ("path", "cents")}, path, extra=extra)
    cents = m.get("cents", False)
    if not isinstance(cents, bool):
        c.problem(f"{path}.cents", f"expected true or false, got {quoted(cents)}")
        cents = False
    found = expression(c, m.get("path"), f"{path}.path")
    if read is None or found is None:
        return None
    return Value(
        path, regex=read.regex, formats=read.formats, decimal=read.decimal, expr=found, cents=cents
    )


def _download(c: Checker, value: Any, fields: Mapping[str, Value]) -> dict[str, Any] | None:
    """Read `download:`: {path}, {url: template} or {base64: {path}}; exactly one of them."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"path": value}
    m = c.mapping(value, "documents.download", ("path", "regex", "url", "base64"))
    kinds = [k for k in ("path", "url", "base64") if k in m]
    if len(kinds) != 1:
        c.problem(
            "documents.download",
            "give one of `path:` (a link in the row), `url:` (made of the row's fields, "
            "'/invoices/{id}/pdf') or `base64: {path: ...}` (the document in the row)",
        )
        return None
    if "url" in m:
        return {"download_url": _template(c, m["url"], fields)}
    if "base64" in m:
        if "id" not in fields:
            c.problem(
                "documents.download.base64",
                "needs documents.fields.id: a document in the answer has no address to know it by",
            )
        return {"download_base64": json_value(c, m["base64"], "documents.download.base64")}
    link = {k: v for k, v in m.items() if k in ("path", "regex")}
    return {"download_path": json_value(c, link, "documents.download")}


def _template(c: Checker, value: Any, fields: Mapping[str, Value]) -> str | None:
    """A download URL whose {placeholders} are fields of the row."""
    text = c.text(value, "documents.download.url")
    if text is None:
        return None
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as e:
        c.problem("documents.download.url", f"invalid placeholder in {quoted(text)}: {e}")
        return None
    if urlsplit(text).scheme not in ("", "http", "https"):
        c.problem("documents.download.url", f"expected a web address, got {quoted(text)}")
        return None
    for name in names:
        if name not in fields:
            known = ", ".join(f"{{{f}}}" for f in fields) or "none: add them under fields:"
            c.problem(
                "documents.download.url",
                f"{{{name}}} is not one of the row's fields ({known})",
            )
            return None
    return text


def _paging(c: Checker, m: Mapping[str, Any]) -> dict[str, Any]:
    """Read the one kind of paging given: `next:`, `page:` or `offset:`."""
    given = [k for k in ("next", "page", "offset") if m.get(k) is not None]
    if len(given) > 1:
        c.problem(f"documents.{given[1]}", f"give only one of `{'`, `'.join(given)}`")
        return {}
    if "next" in given:
        nxt = {"path": m["next"]} if isinstance(m["next"], str) else m["next"]
        nxt = c.mapping(nxt, "documents.next", ("path", "regex", "param"))
        param = c.text(nxt.get("param"), "documents.next.param")
        read = {k: v for k, v in nxt.items() if k != "param"}
        return {"next": json_value(c, read, "documents.next"), "next_param": param}
    if "page" in given:
        page = c.mapping(m["page"], "documents.page", ("param", "start"))
        if "param" not in page:
            c.problem("documents.page.param", "missing: the page number's parameter, e.g. page")
        return {
            "page_param": c.text(page.get("param"), "documents.page.param"),
            "page_start": c.integer(page.get("start"), "documents.page.start", 1, 0, 1000000),
        }
    if "offset" in given:
        offset = c.mapping(m["offset"], "documents.offset", ("param", "limit_param", "limit"))
        if "param" not in offset:
            c.problem("documents.offset.param", "missing: the offset's parameter, e.g. offset")
        return {
            "offset_param": c.text(offset.get("param"), "documents.offset.param"),
            "limit_param": c.text(offset.get("limit_param"), "documents.offset.limit_param"),
            "limit": c.integer(offset.get("limit"), "documents.offset.limit", 100, 1, 10000),
        }
    return {}
