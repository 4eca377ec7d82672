"""`documents.detail:` of a form description, read and checked: the page a list row links to,
where the download link (and more values) are; perhaps several documents on one page.

The runtime side is connectors/form/detail.py. With a detail page, the list row's link to it
stands in for the list's `download:` (a list that links straight to its files needs no
detail page), so that everything before the detail page works as for any list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.form.jsonspec import FIELD_OPTIONS, expression, json_value
from connectors.form.values import Checker, Value

FIELDS = ("id", "date", "number", "amount", "title")
KEYS = ("type", "link", "rows", "fields", "download")


@dataclass(frozen=True)
class DetailSpec:
    """The detail page: how a list row links to it, and what is read there."""

    link: Value  # in the list row (a selector, or a path in a JSON row)
    download: Value  # on the detail page, or in each of its `rows`
    type: str = "html"  # what the detail page is: html or json
    rows: str | None = None  # each document on the page (None: the page is one document)
    fields: Mapping[str, Value] = field(default_factory=dict)
    base64: bool = False  # `download: {base64: {path}}`: the file itself, in the JSON answer

    def json_download(self) -> dict[str, Any]:
        """A JSON list's `download:` option that reads this link in a row."""
        link = self.link
        return {"path": link.expr, **({"regex": link.regex} if link.regex else {})}


def read_detail(c: Checker, value: Any, list_type: str) -> DetailSpec | None:
    """Read `documents.detail`; None (and problems) when it is unusable."""
    m = c.mapping(value, "documents.detail", KEYS)
    kind = c.choice(m.get("type"), "documents.detail.type", ("html", "json")) or list_type
    for key, what in (
        ("link", "the link to the detail page in a list row"),
        ("download", "the download link on the detail page"),
    ):
        if key not in m and isinstance(value, Mapping):
            c.problem(f"documents.detail.{key}", f"missing: {what}")
    link = _value(c, m.get("link"), "documents.detail.link", list_type)
    download, base64 = _download(c, m.get("download"), kind)
    rows = None
    if "rows" in m:
        path = "documents.detail.rows"
        rows = expression(c, m["rows"], path) if kind == "json" else c.selector(m["rows"], path)
    fields: dict[str, Value] = {}
    for name, spec in c.mapping(m.get("fields"), "documents.detail.fields", FIELDS).items():
        read = _value(c, spec, f"documents.detail.fields.{name}", kind, name)
        if read is not None:
            fields[name] = read
    if base64 and "rows" in m:
        c.problem(
            "documents.detail.download.base64",
            "only for a detail page of one document (without detail.rows)",
        )
    if "id" in fields and "rows" not in m:
        c.problem(
            "documents.detail.fields.id",
            "only with detail.rows: a detail page of one document is known by the list row's "
            "id (documents.fields.id), which is read without opening the page",
        )
    if link is None or download is None or ("rows" in m and rows is None):
        return None
    return DetailSpec(
        link=link, download=download, type=kind, rows=rows, fields=fields, base64=base64
    )


def _download(c: Checker, value: Any, kind: str) -> tuple[Value | None, bool]:
    """The detail page's download: a link, or (JSON pages) `{base64: {path}}`, the file in it."""
    path = "documents.detail.download"
    if not (isinstance(value, Mapping) and "base64" in value):
        return _value(c, value, path, kind), False
    if kind != "json":
        c.problem(f"{path}.base64", "only in a JSON detail page (detail.type: json)")
        return None, False
    m = c.mapping(value, path, ("base64",))
    return _value(c, m.get("base64"), f"{path}.base64", "json"), True


def _value(c: Checker, value: Any, path: str, kind: str, name: str = "") -> Value | None:
    """A value read by a selector (HTML pages) or a JMESPath (JSON answers)."""
    if value is None:
        return None
    if kind == "json":
        return json_value(c, value, path, FIELD_OPTIONS.get(name, ()))
    extra = {"date": ("formats",), "amount": ("decimal",)}.get(name, ())
    links = path.endswith((".link", ".download"))
    return c.value(value, path, extra=extra, default_attribute="href" if links else None)
