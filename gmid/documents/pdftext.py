"""Read a PDF invoice without XML: its text (pypdf), then date, number, gross total and more.

read_pdf(data, rules) never raises on a bad PDF: it gives an empty reading with a problem.
The text is pypdf's layout text (lines as printed, columns kept), which reads tables far better
than its plain text at about the same cost. A company's rules from the config (FieldRule, see
gmid/documents/rules.py) come first; the general rules (gmid/documents/textfields.py) read the
rest.

Bounded, since the PDF is an outsider's: at most MAX_PDF_BYTES in, MAX_PAGES pages read,
MAX_TEXT characters kept, no new page begun after TIME_BUDGET seconds, and pypdf's own limits
lowered for this reading (each stream at most MAX_STREAM bytes unpacked, a page's content at most
MAX_OPERATIONS tokens and MAX_FORMS forms), so a decompression bomb or a page of a million
operations ends with a problem, not with the memory or minutes of work.
pypdf is imported when the first PDF is read, not with this module (the daemon's idle size).
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from gmid.documents.ocr import OcrOptions, ocr_text
from gmid.documents.rules import FieldRule, apply_rules
from gmid.documents.textfields import read_fields, value_of
from gmid.documents.textlines import Hit

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 32 * 1024 * 1024
MAX_PAGES = 30
MAX_TEXT = 200_000
MAX_STREAM = 16 * 1024 * 1024
MAX_OPERATIONS = 250_000  # tokens of a content stream; invoices' pages have under 20,000
MAX_FORMS = 200  # form XObjects drawn per page
TIME_BUDGET = 10.0
NO_TEXT = (
    "no text: a scanned PDF (OCR is off; see docs/documents.md, 'Scanned PDFs', for what it needs)"
)
OCR_READ = "text read by OCR"
_MIN_TEXT = 20  # fewer letters and digits than this on every page read: a scan
_NOT_ALNUM = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class PdfReading:
    """What a PDF's text says, each field with the evidence for it."""

    text: str
    date: date | None
    number: str | None
    gross_total: Decimal | None
    currency: str | None
    seller_vat_id: str | None
    iban: str | None
    seller_name: str | None = None
    why: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    problems: tuple[str, ...] = ()


def empty(problem: str, text: str = "") -> PdfReading:
    return PdfReading(text, None, None, None, None, None, None, problems=(problem,))


def pdf_text(data: bytes) -> tuple[str, list[str]]:
    """The layout text of a PDF's first pages, bounded, and the problems met reading it."""
    import pypdf  # here, not at the top: only a daemon that reads PDFs pays for it
    from pypdf.errors import PyPdfError

    problems: list[str] = []
    if len(data) > MAX_PDF_BYTES:
        return "", [f"not read: larger than {MAX_PDF_BYTES // (1024 * 1024)} MB"]
    limits = {
        "zlib_maximum_output_length": MAX_STREAM,
        "lzw_maximum_output_length": MAX_STREAM,
        "run_length_maximum_output_length": MAX_STREAM,
        "array_based_stream_maximum_output_length": MAX_STREAM,
        "stream_decoding_work_maximum_length": 4 * MAX_STREAM,
        "stream_parsing_work_maximum_count": MAX_OPERATIONS,
        "xform_maximum_invocations_per_extraction": MAX_FORMS,
    }
    parts: list[str] = []
    size = 0
    started = time.monotonic()
    with pypdf.apply_configuration(**limits):
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            # Most "encrypted" invoices only forbid changes: their user password is empty.
            if reader.is_encrypted and not reader.decrypt(""):
                return "", ["not read: the PDF is protected by a password"]
            pages = reader.pages
            count = len(pages)
        except Exception as e:  # pypdf raises many kinds on a broken file
            return "", [f"not a readable PDF: {_reason(e, PyPdfError)}"]
        for n in range(min(count, MAX_PAGES)):
            if n and time.monotonic() - started > TIME_BUDGET:
                pages_read = f"{n} page" + ("s" if n > 1 else "")
                problems.append(f"stopped after {pages_read}: over {TIME_BUDGET:g}s")
                break
            try:
                page_text = pages[n].extract_text(extraction_mode="layout")
            except Exception as e:
                problems.append(f"page {n + 1} not read: {_reason(e, PyPdfError)}")
                continue
            parts.append(page_text)
            size += len(page_text)
            if size >= MAX_TEXT:
                problems.append(f"text cut at {MAX_TEXT} characters")
                break
        if count > MAX_PAGES:
            problems.append(f"only the first {MAX_PAGES} of {count} pages read")
    return "\n".join(parts)[:MAX_TEXT], problems


def _reason(e: Exception, pdf_error: type) -> str:
    kind = "" if isinstance(e, pdf_error) else f"{type(e).__name__}: "
    return (kind + str(e))[:200] or type(e).__name__


def read_pdf(
    data: bytes, rules: Sequence[FieldRule] = (), *, ocr: OcrOptions | None = None
) -> PdfReading:
    """Read a PDF's text and the invoice fields in it; never raises on a bad PDF.

    With ocr (the config's `ocr:`), a PDF without text is read by OCR (gmid/documents/ocr.py).
    """
    try:
        text, problems = pdf_text(data)
        if ocr is not None and is_scan(text) and not any(p.startswith("not ") for p in problems):
            text, more = ocr_text(data, ocr)
            problems += [*more, f"{OCR_READ} ({ocr.languages}): check the fields"]
    except Exception as e:  # a bug of ours or pypdf's must not stop the filing
        log.exception("reading a PDF's text failed")
        return empty(f"not read: {type(e).__name__}")
    return read_text(text, rules, problems)


def is_scan(text: str) -> bool:
    """Whether a PDF's text is (next to) nothing: a scan or a photo."""
    return len(_NOT_ALNUM.sub("", text[:10_000])) < _MIN_TEXT


def read_text(
    text: str, rules: Sequence[FieldRule] = (), problems: Sequence[str] = ()
) -> PdfReading:
    """The reading of a text already extracted (a PDF's, or one given by OCR)."""
    problems = list(problems)
    if is_scan(text):
        if any(p.startswith(OCR_READ) for p in problems):
            problems.append("no text, even by OCR")
        elif not any(p.startswith(("not ", "page ", "stopped ", "OCR ")) for p in problems):
            problems.append(NO_TEXT)
        return PdfReading(text, None, None, None, None, None, None, problems=tuple(problems))
    hits = hits_of(text, rules, problems)
    values = {name: value_of(name, hit) for name, hit in hits.items()}
    for name in ("date", "number", "gross_total"):
        if name not in hits:
            problems.append(f"no {name.replace('_', ' ')} found")
    return PdfReading(
        text=text,
        date=values.get("date"),
        number=values.get("number"),
        gross_total=values.get("gross_total"),
        currency=values.get("currency"),
        seller_vat_id=values.get("seller_vat_id"),
        iban=values.get("iban"),
        seller_name=values.get("seller_name"),
        why=MappingProxyType({name: hit.why for name, hit in hits.items()}),
        problems=tuple(problems),
    )


def hits_of(text: str, rules: Sequence[FieldRule], problems: list[str]) -> dict[str, Hit]:
    """Each field's hit: a company rule's where it found one, else the general rules'."""
    hits = read_fields(text)
    hits.update(apply_rules(text, rules, problems))
    return hits
