"""Document rows of the index as stored and as read: IndexedDocument and its columns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from gmid.documents.fields import FIELDS as READ_FIELDS
from gmid.documents.fields import MAX_TEXT

COLUMNS = (
    "id, sha256, path, size, media_type, source, source_name, company, original_name, "
    f"message_id, source_ref, received_at, {', '.join(READ_FIELDS)}, xml_path, read_version"
)
_DATES = ("date", "due_date")


@dataclass(frozen=True)
class IndexedDocument:
    """One archived document as the index knows it."""

    id: int
    sha256: str
    path: str
    size: int
    media_type: str
    source: str
    source_name: str
    company: str
    original_name: str | None
    message_id: str | None
    source_ref: str | None
    received_at: datetime
    date: date | None
    number: str | None
    amount: str | None  # the gross total, as "1234.50"
    kind: str | None = None  # invoice, credit_note, receipt, other
    currency: str | None = None
    seller: str | None = None
    seller_vat_id: str | None = None
    iban: str | None = None
    due_date: date | None = None
    buyer: str | None = None
    net_total: str | None = None
    tax_total: str | None = None
    xml_path: str | None = None  # the e-invoice XML kept beside the file, archive-relative
    read_version: int = 0  # the reader that read it; 0: not read yet

    def to_dict(self) -> dict:
        """Return the document as JSON-friendly values (dates as ISO 8601 strings)."""
        data = dict(self.__dict__)  # plain values only: no need for asdict's deep copy
        data["received_at"] = self.received_at.isoformat()
        for key in _DATES:
            data[key] = data[key].isoformat() if data[key] else None
        return data


def row_to_document(row: tuple) -> IndexedDocument:
    """Build an IndexedDocument from a row selected with COLUMNS."""
    names = [c.strip() for c in COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["received_at"] = datetime.fromisoformat(values["received_at"])
    for key in _DATES:
        values[key] = date.fromisoformat(values[key]) if values[key] else None
    return IndexedDocument(**values)


def timestamp(moment: datetime) -> str:
    """Return an aware datetime as a fixed-width UTC string, so text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware one (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def text_value(value: Any) -> str | None:
    """A field's value as stored: dates ISO 8601, amounts as written by Decimal, else str."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def values(row: dict[str, Any]) -> tuple:
    """A document row's values in COLUMNS order (without id), as stored."""
    return (
        row["sha256"],
        row["path"],
        row["size"],
        row["media_type"],
        row["source"],
        row["source_name"],
        row["company"],
        row.get("original_name"),
        row.get("message_id"),
        row.get("source_ref"),
        timestamp(row["received_at"]),
        *(text_value(row.get(name)) for name in READ_FIELDS),
        row.get("xml_path"),
        row.get("read_version", 0),
    )


def fields_json(fields_from: dict[str, str] | None) -> str | None:
    return json.dumps(fields_from, sort_keys=True) if fields_from else None


def problems_json(problems: Any) -> str | None:
    return None if problems is None else json.dumps(list(problems))


def fts_values(doc: IndexedDocument, text: str | None) -> tuple:
    """The searched columns of a document: number, company, seller, amount and its text.

    The amount is there as stored ("1234.50") and as many write it ("1234,50").
    """
    amount = doc.amount or ""
    if amount:
        amount = f"{amount} {amount.replace('.', ',')}"
    words = " ".join(filter(None, [doc.original_name, doc.seller_vat_id, doc.iban, text]))
    return (
        doc.id,
        doc.number or "",
        doc.company,
        doc.seller or "",
        amount,
        words[:MAX_TEXT],
    )


def default_origin(source: str) -> str:
    """Where the fields of a document not read came from: its portal's list, or its mail."""
    return "portal" if source == "portal" else "mail"
