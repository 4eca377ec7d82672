"""Detail pages (`documents.detail`): a list row links to a page, HTML or JSON, where the
download link and more values are, perhaps for several documents.

A detail page costs a request, so it is opened only for what is new: the runner tells through
`ctx.known` which ids it has filed.

- Without `detail.rows` the page is one document, known by the list row's id: a known id is
  yielded as the list has it (the runner skips it), a new one after its page was read.
- With `detail.rows` each element of the page is a document, known as "ROW/DOCUMENT" (the list
  row's id, then the page's own id of it): the page is opened when nothing under the row's id
  was filed yet, and not again once something was.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bs4 import BeautifulSoup

from connectors.base import RemoteDocument
from connectors.form import extract as x
from connectors.form import trace
from connectors.form.html import charset, parse_html
from connectors.form.jsonlist import JsonRecord
from connectors.form.jsonspec import search
from connectors.form.spec import ListSpec
from gmid.errors import DownloadRejected, PortalChanged, SessionExpired

if TYPE_CHECKING:
    import requests

    from connectors.base import PortalContext

_NOT_JSON = object()


class Details:
    """The documents behind a list's rows, read from their detail pages.

    `fetch` opens a detail page (portal changed when it is gone) and returns the response;
    `login_shown` tells whether an HTML page is the login form; `changed` saves the current
    answer and returns the PortalChanged that names it.
    """

    def __init__(
        self,
        spec: ListSpec,
        ctx: PortalContext,
        fetch: Callable[[str, str], requests.Response],
        login_shown: Callable[[BeautifulSoup], bool],
        changed: Callable[..., PortalChanged],
    ):
        assert spec.detail is not None
        self.detail, self.ctx = spec.detail, ctx
        self._fetch, self._login_shown, self._changed = fetch, login_shown, changed
        # what a detail page reads, as a list of its own would
        self._page_spec = ListSpec(
            pages=(), rows="", download=self.detail.download, fields=self.detail.fields
        )
        self._unread: set[str] = set()  # ids yielded without opening their page (known ones)
        # `download: {base64}`: the last document yielded, its file as its page gave it (the
        # runner downloads each before it asks for the next: one file is held at a time)
        self._inline: tuple[str, str] | None = None

    def expand(self, row: RemoteDocument) -> Iterator[RemoteDocument]:
        """Yield the documents behind a list row (whose url is its detail page)."""
        if self.detail.rows is None:
            if self.ctx.known(row.id):
                self._unread.add(row.id)
                yield row  # filed before: the runner skips it, the page is not opened
                return
            base, records = self._read(row)
            yield self._document(records[0], base, row)
            return
        if self.ctx.known(f"{row.id}/"):
            return  # its documents were filed: the page is not opened again
        base, records = self._read(row)
        for record in records:  # none: nothing to file yet (asked again next run)
            yield self._document(record, base, row)

    def resolve(self, doc: RemoteDocument) -> RemoteDocument:
        """A document to download: one yielded as known whose file the runner lacks after
        all is read from its page now."""
        if doc.id not in self._unread:
            return doc
        self._unread.discard(doc.id)
        base, records = self._read(doc)
        return self._document(records[0], base, doc)

    def _read(self, row: RemoteDocument) -> tuple[str, list[Any]]:
        """Open a row's detail page; return its final URL and its documents' records."""
        url, records = self._records(row)
        option = "documents.detail.rows" if self.detail.rows else "documents.detail"
        expr = self.detail.rows or "(the page)"
        trace.rows(self.ctx, option, expr, records, self._page_spec, url)
        return url, records

    def _records(self, row: RemoteDocument) -> tuple[str, list[Any]]:
        detail, url = self.detail, row.url
        # not its address: a detail page's (pretix's order pages) may hold the key to it
        label = row.number or row.title or (row.id if row.id != url else "a row")
        self.ctx.progress(f"reading the page of {label}")
        response = self._fetch(url, detail.type)
        if detail.type == "json":
            return response.url, self._json_records(response)
        page = parse_html(response.content, encoding=charset(response.headers.get("Content-Type")))
        if self._login_shown(page):
            raise SessionExpired(f"{self.ctx.portal}: {x.public_url(url)} shows the login form")
        if detail.rows is None:
            return response.url, [x.HtmlRecord(page)]
        return response.url, x.html_rows(page, detail.rows)

    def _json_records(self, response: requests.Response) -> list[Any]:
        detail = self.detail
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError):
            data = _NOT_JSON
        if response.status_code in (401, 403) or (
            data is _NOT_JSON
            and self._login_shown(
                parse_html(response.content, encoding=charset(response.headers.get("Content-Type")))
            )
        ):
            raise SessionExpired(f"{self.ctx.portal}: {x.public_url(response.url)} asks to log in")
        if data is _NOT_JSON:
            kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
            raise self._changed(
                f"documents.detail.type: the detail page is {kind}, not JSON",
                url=response.url,
            )
        if detail.rows is None:
            return [JsonRecord(data)]
        rows = search(detail.rows, data)
        if not isinstance(rows, list):
            kind = "nothing" if rows is None else f"a {type(rows).__name__}, not a list"
            raise self._changed(
                f"documents.detail.rows: path {detail.rows!r} matched {kind}", url=response.url
            )
        return [JsonRecord(row) for row in rows]

    def inline(self, doc: RemoteDocument) -> bytes | None:
        """The file of a document that came base64 in its detail page (None: a link)."""
        if not self.detail.base64:
            return None
        if self._inline is None or self._inline[0] != doc.id:
            self._unread.add(doc.id)
            self.resolve(doc)  # its page is read again
        held, self._inline = self._inline, None
        content = held[1] if held is not None and held[0] == doc.id else ""
        if content.startswith("data:"):
            content = content.partition(",")[2]
        try:
            return base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise DownloadRejected(
                f"{self.ctx.portal}: documents.detail.download.base64: the value for "
                f"{doc.id!r} is not base64"
            ) from None

    def _inline_document(self, record: Any, base: str, row: RemoteDocument) -> RemoteDocument:
        """A document whose file is in its (JSON) detail page: kept until it is downloaded."""
        content = x.read(record, self.detail.download)
        if not content:
            raise x.MissingValue(self.detail.download)
        found = x.to_document(record, self._page_spec, base, base)
        self._inline = (row.id, content)
        return dataclasses.replace(
            row,
            date=found.date or row.date,
            number=found.number or row.number,
            amount=found.amount or row.amount,
            title=found.title or row.title,
        )

    def _document(self, record: Any, base: str, row: RemoteDocument) -> RemoteDocument:
        """The document a detail page (or one of its rows) gives, with the list row's values
        where the page has none."""
        try:
            if self.detail.base64:
                return self._inline_document(record, base, row)
            found = x.to_document(record, self._page_spec, base)
        except x.MissingValue as e:
            raise self._changed(
                str(e), selector=e.value.selector or e.value.expr, url=base
            ) from None
        return dataclasses.replace(
            row,
            id=row.id if self.detail.rows is None else f"{row.id}/{found.id}",
            url=found.url,
            date=found.date or row.date,
            number=found.number or row.number,
            amount=found.amount or row.amount,
            title=found.title or row.title,
        )
