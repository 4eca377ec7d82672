"""What a document says, best known first: its e-invoice XML, its text, a portal's list, its mail.

understand(data, media_type, known, known_from) reads one document and gives a Reading: the
fields (by the names the index keeps), where each came from, the e-invoice check (None when
there is no e-invoice), the kind, and the text kept for search. merge() combines what two ways
of the same invoice knew: for each field the better origin wins, whatever order they came in.

Never raises on bad input: a document that cannot be read gives what its source knew.
"""

from __future__ import annotations

import email
import email.policy
import gc
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from gmid.documents.einvoice import read_einvoice
from gmid.documents.fields import FIELDS, MAX_TEXT, ORIGINS
from gmid.documents.model import EInvoice

logger = logging.getLogger(__name__)

BIG = 1_000_000  # bytes: after reading a document this big, its reader's garbage is collected

_RECEIPT = re.compile(r"\b(quittung|kassenbon|kassenbeleg|receipt|reçu|ticket de caisse)\b", re.I)
_CREDIT = re.compile(r"\b(gutschrift|credit note|avoir|stornorechnung)\b", re.I)
_INVOICE = re.compile(r"\b(rechnung|invoice|facture)\b", re.I)
_TAGS = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Reading:
    """What is known of one document, and from where."""

    fields: dict[str, Any] = field(default_factory=dict)  # name -> str | date | Decimal
    origins: dict[str, str] = field(default_factory=dict)  # name -> one of ORIGINS
    problems: tuple[str, ...] | None = None  # the e-invoice check; None: no e-invoice
    text: str | None = None
    xml: bool = False  # an e-invoice XML file (not a PDF carrying one)

    def get(self, name: str) -> Any:
        return self.fields.get(name)

    def rank(self, name: str) -> int:
        """How good this reading's value of a field is: 0 best, len(ORIGINS) unknown."""
        origin = self.origins.get(name)
        return ORIGINS.index(origin) if name in self.fields and origin in ORIGINS else len(ORIGINS)


def understand(
    data: bytes,
    media_type: str,
    known: Mapping[str, Any] | None = None,
    known_from: str = "mail",
    rules: Sequence[Any] = (),
    ocr: Any = None,
) -> Reading:
    """Read a document; what it says wins over `known` (what its source said, from known_from:
    "portal" for a portal's list, "mail" for what the mail says). rules: the company's
    `extract:` rules for its PDF's text (gmid/documents/rules.py); ocr: the config's `ocr:`
    (gmid/documents/ocr.py), for a scanned PDF, None to leave it unread."""
    base = Reading(
        {k: v for k, v in (known or {}).items() if k in FIELDS and v not in (None, "")},
        {k: known_from for k, v in (known or {}).items() if k in FIELDS and v not in (None, "")},
    )
    try:
        read = _read(data, media_type, rules, ocr)
    except Exception:  # a reader's bug must not stop the filing: file with what is known
        logger.exception("could not read a document of type %s", media_type)
        return base
    finally:
        if len(data) > BIG:
            # pypdf's reader keeps a copy of the file in reference cycles: freed now, not
            # when the collector next runs (20 big mails at once would hold 20 copies).
            gc.collect(1)
    reading = merge(base, read)
    if reading.get("kind") in (None, "other") and reading.get("number"):
        # a document with an invoice number its text did not call an invoice
        reading.fields["kind"] = "invoice"
        reading.origins["kind"] = reading.origins["number"]
    return reading


def _read(data: bytes, media_type: str, rules: Sequence[Any] = (), ocr: Any = None) -> Reading:
    if media_type == "message/rfc822":
        return _mail_reading(data, rules)
    is_pdf = media_type == "application/pdf" or data[:1024].find(b"%PDF-") >= 0
    is_xml = not is_pdf and (media_type.endswith("xml") or data.lstrip()[:1] == b"<")
    invoice = read_einvoice(data, media_type) if is_pdf or is_xml else None
    from_text = _pdf_reading(data, rules, ocr) if is_pdf else Reading()
    if invoice is None:
        return from_text
    from_xml = _einvoice_reading(invoice, xml=is_xml)
    return merge(from_text, from_xml)


def _einvoice_reading(inv: EInvoice, *, xml: bool) -> Reading:
    fields: dict[str, Any] = {
        "date": inv.issue_date,
        "number": inv.number,
        "amount": inv.gross_total,
        "currency": inv.currency,
        "kind": ("credit_note" if inv.is_credit_note else "invoice") if inv.number else None,
        "seller": inv.seller_name,
        "seller_vat_id": _vat_id(inv.seller_vat_id),
        "iban": _iban(inv.iban),
        "due_date": inv.due_date,
        "buyer": inv.buyer_name,
        "net_total": inv.net_total,
        "tax_total": inv.tax_total,
    }
    fields = {k: v for k, v in fields.items() if v not in (None, "")}
    address = inv.seller_address
    words = [inv.seller_name, inv.buyer_name, inv.seller_tax_number, inv.buyer_reference]
    words += [line.name for line in inv.lines]
    if address:
        words += [*address.lines, address.postcode, address.city]
    text = "\n".join(w for w in words if w)[:MAX_TEXT]
    return Reading(fields, dict.fromkeys(fields, "einvoice"), inv.problems, text or None, xml)


def _pdf_reading(data: bytes, rules: Sequence[Any] = (), ocr: Any = None) -> Reading:
    """What the PDF's text says (gmid/documents/pdftext.py)."""
    from gmid.documents.pdftext import read_pdf

    return _text_reading(read_pdf(data, tuple(rules), ocr=ocr))


def _mail_reading(raw: bytes, rules: Sequence[Any] = ()) -> Reading:
    """What a mail kept whole says (a receipt in its text): its body read as a PDF's text is,
    its date left to the mail's Date header; its seller, where the text names none, is who
    sent it (the From's name, else its domain)."""
    from gmid.documents.pdftext import read_text

    text, sender = _mail_text(raw)
    if not text:
        return Reading({"kind": "other"}, {"kind": "mail"})
    reading = _text_reading(read_text(text, tuple(rules)))
    reading.fields.pop("date", None)  # the mail's own: a mail kept whole is known by it
    reading.origins.pop("date", None)
    reading.fields.setdefault("kind", "other")
    reading.origins.setdefault("kind", "text")
    if sender and "seller" not in reading.fields:
        reading.fields["seller"], reading.origins["seller"] = sender, "mail"
    return reading


def _text_reading(pdf: Any) -> Reading:
    """A Reading of what pdftext read in a text (a PdfReading)."""
    fields: dict[str, Any] = {
        "date": pdf.date,
        "number": pdf.number,
        "amount": pdf.gross_total,
        "currency": pdf.currency,
        "seller": pdf.seller_name,
        "seller_vat_id": _vat_id(pdf.seller_vat_id),
        "iban": _iban(pdf.iban),
    }
    fields = {k: v for k, v in fields.items() if v not in (None, "")}
    kind = kind_of_text(pdf.text, has_number="number" in fields)
    if kind:
        fields["kind"] = kind
    return Reading(fields, dict.fromkeys(fields, "text"), None, pdf.text[:MAX_TEXT] or None)


def kind_of_text(text: str, *, has_number: bool) -> str | None:
    """invoice, credit_note, receipt or other, by the words a document's text uses."""
    head = text[:5000]
    if _CREDIT.search(head):
        return "credit_note"
    if _RECEIPT.search(head):
        return "receipt"
    if has_number or _INVOICE.search(head):
        return "invoice"
    return "other" if text.strip() else None


def merge(first: Reading, second: Reading) -> Reading:
    """What two readings of one document (or of the same invoice) know together: for each
    field the better origin's value; of two equally good, the first's. The check and the text
    come from the one with an e-invoice, else the first that has them."""
    fields, origins = dict(first.fields), dict(first.origins)
    for name, value in second.fields.items():
        if second.rank(name) < first.rank(name):
            fields[name], origins[name] = value, second.origins[name]
    problems = first.problems if first.problems is not None else second.problems
    if second.problems is not None and "einvoice" in second.origins.values():
        problems = second.problems if first.problems is None else first.problems
    text = "\n".join(t for t in (first.text, second.text) if t)[:MAX_TEXT] or None
    return Reading(fields, origins, problems, text, first.xml or second.xml)


def stored_value(value: Any) -> str | None:
    """A field as the index keeps it: dates ISO 8601, amounts as plain decimals."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    return str(value)


def _vat_id(value: str | None) -> str | None:
    return re.sub(r"[\s.-]", "", value).upper() or None if value else None


def _iban(value: str | None) -> str | None:
    return re.sub(r"\s", "", value).upper() or None if value else None


normal_vat_id = _vat_id
normal_iban = _iban


def _mail_text(raw: bytes) -> tuple[str | None, str | None]:
    """The text of a mail kept whole (its subject and plain body, else its HTML without tags,
    bounded) and who sent it (the From's name, else its domain)."""
    try:
        message = email.message_from_bytes(raw[:4_000_000], policy=email.policy.default)
        sender = _sender(message)
        body = message.get_body(preferencelist=("plain", "html"))
        subject = str(message.get("subject", ""))
        if body is None:
            return subject or None, sender
        content = body.get_content()
        if body.get_content_subtype() == "html":
            content = _TAGS.sub(" ", content)
        return f"{subject}\n{content}"[:MAX_TEXT], sender
    except Exception:  # a broken mail: no text, still filed
        return None, None


def _sender(message: Any) -> str | None:
    """The From's display name, else its address's domain (without "www.", "mail." ...)."""
    addresses = getattr(message.get("from"), "addresses", ())
    if not addresses:
        return None
    name = (addresses[0].display_name or "").strip()
    if name:
        return name[:80]
    domain = addresses[0].domain.lower()
    return re.sub(r"^(www|mail|email|e-mail|noreply|no-reply|shop)\.", "", domain)[:80] or None


def einvoice_xml(data: bytes, media_type: str) -> bytes | None:
    """The e-invoice XML of a document that is one: an XML file itself, a PDF's attachment."""
    if not (media_type == "application/pdf" or b"%PDF-" in data[:1024]):
        return data
    from gmid.documents.einvoice import invoice_attachment

    try:
        found = invoice_attachment(data)
        return found[1].content if found else None
    except Exception:  # read once already; a PDF that now fails keeps no XML beside
        return None
