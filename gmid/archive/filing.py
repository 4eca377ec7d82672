"""Reading documents before they are filed, and knowing the same invoice when it comes again.

A document is read (gmid/documents/understand.py) in a worker thread, within READ_TIMEOUT; one
not read in time is filed with what its source said, and read again by `gmid reindex`. The same
invoice in other bytes (a portal's PDF and the mailed Factur-X; two descriptions of one portal)
is known by its number and date, its gross total, and its seller (VAT ID, else name, else the
company it was filed for).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from gmid.archive.naming import printable
from gmid.archive.rows import IndexedDocument

if TYPE_CHECKING:
    from gmid.archive.index import Index
    from gmid.documents.understand import Reading

logger = logging.getLogger(__name__)

READ_TIMEOUT = 30.0  # seconds a batch waits for its documents to be read
READERS = 2  # threads reading documents (CPU-bound: the machine's cores)
UNKNOWN_COMPANY = "unknown"
MAX_COMPANY_NAME = 80
PDF = "application/pdf"


class CompanyLike(Protocol):
    name: str
    vat_ids: tuple[str, ...]
    ibans: tuple[str, ...]


class Reader:
    """Reads documents in its own threads, each batch within READ_TIMEOUT."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="gmid-read")
            return self._pool

    def read_all(
        self,
        items: Sequence[tuple],
        timeout: float = READ_TIMEOUT,
        meanwhile: Callable[[], None] | None = None,
    ) -> list[Reading | None]:
        """Read each (data, media type, known fields, where they came from[, the company's
        rules, OCR options]); None for one not read within the time left of timeout.
        meanwhile runs in this thread while the readers read (the files' fsyncs)."""
        from gmid.documents.understand import understand  # lxml, pypdf: loaded when first used

        pool = self._executor() if items else None
        futures: list[Future] = [pool.submit(understand, *item) for item in items if pool]
        deadline = time.monotonic() + timeout
        if meanwhile is not None:
            meanwhile()
        readings: list[Reading | None] = []
        for future in futures:
            try:
                readings.append(future.result(max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                logger.warning("a document was not read within %.0f s: filed unread", timeout)
                readings.append(None)
        return readings

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def known_fields(date: Any, number: str | None, amount: str | None) -> dict[str, Any]:
    """What a source said of a document, as understand() takes it."""
    fields: dict[str, Any] = {"date": date, "number": number}
    if amount:
        with contextlib.suppress(InvalidOperation):
            fields["amount"] = Decimal(amount)
    return {k: v for k, v in fields.items() if v not in (None, "")}


def _norm(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]", "", (text or "").casefold())


def company_for(reading: Reading, companies: Iterable[CompanyLike]) -> tuple[str, str] | None:
    """The company of a document its source did not name, and the origin of what said so:
    the seller's VAT ID or IBAN listed in `companies:`, else a company whose name begins the
    seller's, else a new company named after the seller. None without a seller."""
    from gmid.documents.understand import normal_iban, normal_vat_id

    origin = reading.origins.get("seller_vat_id") or reading.origins.get("seller") or "text"
    vat_id, iban = reading.get("seller_vat_id"), reading.get("iban")
    companies = list(companies)
    for company in companies:
        if vat_id and vat_id in {normal_vat_id(v) for v in company.vat_ids}:
            return company.name, origin
        if iban and iban in {normal_iban(i) for i in company.ibans}:
            return company.name, reading.origins.get("iban", origin)
    seller = printable(str(reading.get("seller") or ""))
    if not seller:
        return None
    origin = reading.origins.get("seller", origin)
    for company in companies:
        if _norm(company.name) and _norm(seller).startswith(_norm(company.name)):
            return company.name, origin
    return seller[:MAX_COMPANY_NAME].strip(), origin


def _amount(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def same_invoice(
    index: Index, reading: Reading, company: str, media_type: str = ""
) -> IndexedDocument | None:
    """The document already filed that is this invoice in other bytes, if any: the same
    number, date and gross total, and the same seller: its VAT ID where both have one, else
    the same company or one seller's name within the other's (names read from a PDF's text
    may carry a word more). A PDF is taken for an XML-only invoice filed before (it takes the
    XML's place: merging.pdf_for_xml); other files (an image, a page) are not."""
    number, day = reading.get("number"), reading.get("date")
    gross = _amount(reading.get("amount"))
    if not number or not day or gross is None:
        return None
    vat_id, seller = reading.get("seller_vat_id"), _norm(reading.get("seller"))
    for doc in index.dated(day):
        if _norm(doc.number) != _norm(str(number)) or _amount(doc.amount) != gross:
            continue
        if doc.media_type.endswith("xml") and not (media_type.endswith("xml") or media_type == PDF):
            continue
        if vat_id and doc.seller_vat_id:
            same = vat_id == doc.seller_vat_id
        else:  # filed for the same company, or one seller's name within the other's
            theirs = _norm(doc.seller)
            same = _norm(company) == _norm(doc.company) or bool(
                seller and theirs and (seller in theirs or theirs in seller)
            )
        if same:
            return doc
    return None


def better(reading: Reading, doc: IndexedDocument, fields_from: dict[str, str]) -> dict[str, Any]:
    """The fields of a filed document that this reading knows better (from a better origin)."""
    from gmid.documents.fields import ORIGINS

    fallback = "portal" if doc.source == "portal" else "mail"
    changes: dict[str, Any] = {}
    values = doc.to_dict()
    for name, value in reading.fields.items():
        have = fields_from.get(name, fallback) if values.get(name) is not None else None
        rank = ORIGINS.index(have) if have in ORIGINS else len(ORIGINS)
        if reading.rank(name) < rank:  # a better source: its value, or the same value confirmed
            changes[name] = value
    return changes
