"""The names of what a reading gives, where a value came from, and the reader's version.

Kept apart from the readers (lxml, pypdf) so the index can use them without loading those:
the daemon looks at start whether anything is unread, and stays small while idle.
"""

from __future__ import annotations

# The fields a reading gives, in the order details() lists them; the index keeps them as text.
FIELDS = (
    "date",
    "number",
    "amount",
    "currency",
    "kind",
    "seller",
    "seller_vat_id",
    "iban",
    "due_date",
    "buyer",
    "net_total",
    "tax_total",
)
ORIGINS = ("einvoice", "text", "portal", "mail")  # best first
MAX_TEXT = 200_000  # characters kept of a document's text, for search
# Reader versions: a document read by an older one is read again by `gmid reindex`.
# 1: e-invoices; 2: and PDF text (gmid/documents/pdftext.py).
READER_VERSION = 2
