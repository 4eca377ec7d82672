"""Reading JSON lists (`documents.type: json`): answers, rows, paging and downloads.

The form connector logs in as for an HTML list, then hands its list over to a JsonList reader,
which opens the list's URLs with the connector's browser (so with its session cookies, and
under the runner's page cap), reads the rows out of each JSON answer with the description's
JMESPath expressions, and follows its one kind of paging: a next URL or token in the answer,
page numbers, or offsets. Each loop ends: a URL or token seen before, an empty page, a page
that lists nothing new, or documents.max_pages.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import string
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urldefrag, urlencode, urljoin, urlsplit, urlunsplit

from connectors.base import RemoteDocument
from connectors.form import extract as x
from connectors.form import trace
from connectors.form.jsonspec import search
from connectors.form.values import Value
from gmid.errors import DownloadRejected, PortalChanged, SessionExpired

if TYPE_CHECKING:
    import requests

    from connectors.base import PortalContext
    from connectors.form.spec import ListSpec

logger = logging.getLogger(__name__)

ACCEPT = {"Accept": "application/json, text/plain;q=0.5, */*;q=0.1"}
_NOT_JSON = object()
MAX_ROWS = 10000  # rows read from one answer; the answer's size is capped by runs.max_page


class JsonRecord:
    """One element of a JSON list, whose values are read by JMESPath expressions."""

    def __init__(self, data: Any):
        self.data = data

    def raw(self, value: Value) -> str | None:
        """Return the text of what the Value's expression finds in the element."""
        found = search(value.expr, self.data) if value.expr else self.data
        return scalar(found, value.decimal)


def scalar(found: Any, decimal: str = ".") -> str | None:
    """A JSON value as text: numbers as written (with the Value's decimal mark, so that the
    amount reader keeps it), an amount object {value, currency} as its value."""
    if isinstance(found, Mapping):
        inner = next((found[k] for k in ("value", "amount") if k in found), None)
        return None if isinstance(inner, Mapping) else scalar(inner, decimal)
    if isinstance(found, bool) or found is None or isinstance(found, list):
        return None
    if isinstance(found, int | float):
        try:
            text = format(Decimal(repr(found)), "f")
        except InvalidOperation:  # inf, nan
            return None
        return text.replace(".", decimal)
    return str(found)


class JsonList:
    """The documents of a JSON list, read through a logged-in form connector's browser.

    `open` opens a URL (asking for JSON) and returns the response, portal changed if it is
    gone; `login_shown` tells whether the answer is the login page; `changed` saves the answer
    and returns the PortalChanged that names it.
    """

    def __init__(
        self,
        spec: ListSpec,
        ctx: PortalContext,
        open: Callable[[str], requests.Response],
        login_shown: Callable[[], bool],
        changed: Callable[..., PortalChanged],
    ):
        assert spec.json is not None
        self.spec, self.json, self.ctx = spec, spec.json, ctx
        self._open, self._login_shown, self._changed = open, login_shown, changed
        self._inline: dict[str, str] = {}  # the current page's base64 documents, by id

    # -- what the connector calls

    def session_valid(self, url: str) -> bool:
        """Tell whether the list answers with its rows (not a login page, nor an error in JSON)
        with the saved cookies."""
        try:
            _, data = self.answer(url)
        except (SessionExpired, PortalChanged):
            return False
        return isinstance(search(self.spec.rows, data), list)

    def documents(
        self, url: str, seen: set[str], may_be_empty: bool = False
    ) -> Iterator[RemoteDocument]:
        """Yield the new documents of one list and the pages its paging leads to
        (`may_be_empty`: one period of several, whose first answer may list nothing)."""
        for page_url, rows in self.pages(url, may_be_empty):
            docs = [self.document(record, page_url) for record in rows]
            new = [doc for doc in docs if doc.id not in seen]
            if not new:  # a portal that ignores the page parameter would else be read again
                return
            for doc in new:
                seen.add(doc.id)
                yield doc

    def document(self, record: JsonRecord, page_url: str) -> RemoteDocument:
        """Make a RemoteDocument of a row; portal changed when a value it needs is missing."""
        j = self.json
        try:
            if j.download_path is not None:
                url = x.link(record, j.download_path, page_url)
            elif j.download_url is not None:
                url = self._made_url(record, page_url)
            else:
                url = None  # the document's bytes are in the row: known by its id
            doc = x.to_document(record, self.spec, page_url, url or page_url)
            if j.download_base64 is not None:
                content = x.read(record, j.download_base64)
                if content is None:
                    raise x.MissingValue(j.download_base64)
                url = f"{urldefrag(page_url).url}#{quote(doc.id, safe='')}"
                doc = dataclasses.replace(doc, url=url)
                self._inline[doc.id] = content
        except x.MissingValue as e:
            raise self._changed(str(e), selector=e.value.expr) from None
        return doc

    def inline(self, doc: RemoteDocument) -> bytes | None:
        """The bytes of a document that came base64 in its row (None: a link to fetch).

        The current page's contents are kept; a document of a page read before is found again
        in that page's answer, so that no more than one answer is ever held.
        """
        if self.json.download_base64 is None:
            return None
        content = self._inline.get(doc.id)
        if content is None:
            page_url = urldefrag(doc.url).url
            self._inline.clear()
            _, data = self.answer(page_url)
            rows = search(self.spec.rows, data)
            for row in rows if isinstance(rows, list) else []:
                self.document(JsonRecord(row), page_url)
            content = self._inline.get(doc.id)
        if content is None:
            raise DownloadRejected(
                f"{self.ctx.portal}: documents.download.base64: {doc.id!r} is no longer in "
                f"the answer of {x.public_url(doc.url)}"
            )
        if content.startswith("data:") and "," in content:
            content = content.partition(",")[2]
        try:
            return base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise DownloadRejected(
                f"{self.ctx.portal}: documents.download.base64: the value for {doc.id!r} is "
                "not base64"
            ) from None

    # -- answers and pages

    def answer(self, url: str) -> tuple[str, Any]:
        """Open a list URL and return (its final URL, its JSON answer).

        An answer that is not JSON is the login page of an ended session when it shows the
        login form (or says 401/403), else a portal that changed.
        """
        self.ctx.progress(f"reading {x.page_url(url)}")
        response = self._open(url)
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, or nested beyond reason
            data = _NOT_JSON
        if response.status_code in (401, 403) or (data is _NOT_JSON and self._login_shown()):
            raise SessionExpired(f"{self.ctx.portal}: {x.public_url(url)} asks to log in again")
        if data is _NOT_JSON:
            kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
            raise self._changed(
                f"documents.pages: the answer is {kind}, not JSON; documents.type json needs "
                "the address of the portal's JSON list (see the browser's network tab)"
            )
        return response.url, data

    def pages(
        self, start: str, may_be_empty: bool = False
    ) -> Iterator[tuple[str, list[JsonRecord]]]:
        """Yield (answer URL, rows) of a list, page after page as its paging says."""
        spec, j = self.spec, self.json
        url, visited, offset = start, {urldefrag(start).url}, 0
        for number in range(spec.max_pages):
            self._inline.clear()
            page_url, data = self.answer(self._paged(url, number, offset))
            rows = self._rows(data, first=number == 0, may_be_empty=may_be_empty)
            if not rows:
                return
            if len(rows) > MAX_ROWS:
                logger.warning("%s: read the first %d rows of an answer", self.ctx.portal, MAX_ROWS)
                rows = rows[:MAX_ROWS]
            yield page_url, [JsonRecord(row) for row in rows]
            offset += len(rows)  # what the portal gave, should it give less than the limit
            if j.next is None:
                if j.page_param is None and j.offset_param is None:
                    return
                continue
            token = x.read(JsonRecord(data), j.next)
            trace.matched(self.ctx, "documents.next", j.next.expr, [token] if token else [])
            if token is None:
                return
            if j.next_param is not None:
                url = _with_params(start, {j.next_param: token})
            else:
                url = urldefrag(urljoin(page_url, token)).url
            if url in visited or urlsplit(url).scheme not in ("http", "https"):
                return  # a next URL or token seen before: the list loops
            visited.add(url)
        logger.warning("%s: stopped after documents.max_pages pages", self.ctx.portal)

    def _rows(self, data: Any, first: bool, may_be_empty: bool = False) -> list[Any]:
        """The rows of an answer; on the first page, nothing there is a portal changed unless
        the description's `empty` says the list is really empty."""
        spec = self.spec
        rows = search(spec.rows, data)
        trace.rows(self.ctx, "documents.rows", spec.rows, rows, spec, wrap=JsonRecord)
        if isinstance(rows, list) and (rows or not first or may_be_empty):
            return rows
        if rows is None and not first:
            return []  # the last page of some portals has no list at all
        if not isinstance(rows, list):
            kind = "nothing" if rows is None else f"a {type(rows).__name__}, not a list"
            raise self._changed(f"documents.rows: path {spec.rows!r} matched {kind}")
        empty = self.json.empty
        found = search(empty.expr or "@", data) if empty is not None else None
        if found is not None and found is not False:
            return []
        raise self._changed(
            f"documents.rows: path {spec.rows!r} gave an empty list; if the portal really lists "
            "no documents, set documents.empty to a path that only such an answer has, e.g. "
            "{path: 'total == `0`'}"
        )

    def _paged(self, url: str, number: int, offset: int) -> str:
        """The URL of the answer `number` (from 0) for page-number and offset paging; offsets
        advance by the rows read so far."""
        j = self.json
        if j.page_param is not None:
            return _with_params(url, {j.page_param: str(j.page_start + number)})
        if j.offset_param is not None:
            params = {j.offset_param: str(offset)}
            if j.limit_param is not None:
                params[j.limit_param] = str(j.limit)
            return _with_params(url, params)
        return url

    def _made_url(self, record: JsonRecord, page_url: str) -> str:
        """The download URL of `download.url`, its placeholders the row's fields, URL-quoted."""
        template = self.json.download_url
        assert template is not None
        values = {}
        needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        for name, value in self.spec.fields.items():
            text = x.read(record, value)
            if text is None and name in needed:
                raise x.MissingValue(value, "matched nothing (documents.download.url needs it)")
            values[name] = quote(text or "", safe="")
        url = urljoin(page_url, template.format_map(values))
        if urlsplit(url).scheme not in ("http", "https"):
            raise x.MissingValue(Value("documents.download.url"), "gave no web address")
        return url


def _with_params(url: str, params: Mapping[str, str]) -> str:
    """The URL with these query parameters set (replacing the same names)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))
