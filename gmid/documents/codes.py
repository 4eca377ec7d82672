"""The words for the codes an e-invoice is written in (UNTDID 1001, 4461, 5305; UN/ECE Rec 20).

A code without a word here is shown as written, "code 999": nothing is guessed.
"""

from __future__ import annotations

import re
from decimal import Decimal

# UNTDID 1001, the document types EN 16931 uses (BT-3).
DOCUMENT_TYPES = {
    "326": "Partial invoice",
    "380": "Invoice",
    "381": "Credit note",
    "383": "Debit note",
    "384": "Corrected invoice",
    "386": "Prepayment invoice",
    "389": "Self-billed invoice",
    "261": "Self-billed credit note",
    "393": "Factored invoice",
    "394": "Lease invoice",
    "395": "Consignment invoice",
    "575": "Insurer's invoice",
    "623": "Forwarder's invoice",
    "751": "Invoice information",
    "780": "Freight invoice",
    "81": "Credit note (goods or services)",
    "83": "Credit note (financial adjustment)",
    "262": "Consolidated credit note",
    "296": "Credit note for price variation",
    "396": "Factored credit note",
    "532": "Forwarder's credit note",
    "875": "Partial construction invoice",
    "876": "Partial final construction invoice",
    "877": "Final construction invoice",
}

# UNTDID 5305 as EN 16931 uses it (BT-118, BT-151).
VAT_CATEGORIES = {
    "S": "Standard rate",
    "Z": "Zero rated",
    "E": "Exempt",
    "AE": "Reverse charge",
    "K": "Intra-community supply",
    "G": "Export outside the EU",
    "O": "Not subject to VAT",
    "L": "Canary Islands (IGIC)",
    "M": "Ceuta and Melilla (IPSI)",
}

# UNTDID 4461, the payment means met on invoices (BT-81).
PAYMENT_MEANS = {
    "1": "not defined",
    "10": "cash",
    "20": "cheque",
    "30": "credit transfer",
    "31": "debit transfer",
    "42": "payment to bank account",
    "48": "bank card",
    "49": "direct debit",
    "54": "credit card",
    "55": "debit card",
    "57": "standing agreement",
    "58": "SEPA credit transfer",
    "59": "SEPA direct debit",
    "68": "online payment service",
    "97": "clearing between partners",
    "ZZZ": "mutually defined",
}

# UN/ECE Recommendation 20 (and 21, the X codes), the units met on invoices (BT-130).
UNITS = {
    "C62": "",  # "one": a count without a unit
    "H87": "pcs",
    "XPP": "pcs",
    "EA": "each",
    "SET": "set",
    "LS": "lump sum",
    "HUR": "h",
    "MIN": "min",
    "DAY": "days",
    "WEE": "weeks",
    "MON": "months",
    "ANN": "years",
    "KGM": "kg",
    "GRM": "g",
    "TNE": "t",
    "MTR": "m",
    "KMT": "km",
    "MTK": "m²",
    "MTQ": "m³",
    "LTR": "l",
    "KWH": "kWh",
    "P1": "%",
    "E48": "service units",
}

# C0 and C1 controls but tab and newline, and the bidirectional embeddings, overrides, isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(value: object) -> str:
    """A value of the invoice as safe text: no control character (a terminal's escape
    sequences), no bidirectional override (an IBAN shown turned around): U+FFFD instead."""
    return _UNSAFE.sub("\ufffd", str(value))


def document_type(code: str | None, credit_note: bool) -> str:
    """ "Invoice", "Credit note", ...; an unknown code is named."""
    if code in DOCUMENT_TYPES:
        return DOCUMENT_TYPES[code]
    base = "Credit note" if credit_note else "Invoice"
    return f"{base} (type {clean(code)})" if code else base


def vat_category(code: str | None) -> str:
    """The VAT category's name, "Standard rate"; an unknown code as written."""
    if not code:
        return "VAT"
    return VAT_CATEGORIES.get(code, f"category {clean(code)}")


def vat(code: str | None, rate: Decimal | None) -> str:
    """A line's VAT as a reader writes it: "19 %", "exempt", "reverse charge"."""
    if rate is not None and (rate or code in (None, "S")):
        text = f"{rate.normalize():f}" if abs(rate.adjusted()) < 30 else str(rate)
        return f"{text} %"
    if code is None:
        return ""
    return VAT_CATEGORIES.get(code, clean(code)).lower()


def payment_means(code: str) -> str:
    """How the invoice is to be paid, "SEPA credit transfer"; an unknown code is named."""
    return PAYMENT_MEANS.get(code, f"code {clean(code)}")


def unit(code: str | None) -> str:
    """A quantity's unit as a short word, "pcs", "kWh"; an unknown code as written."""
    if not code:
        return ""
    return UNITS.get(code, clean(code))


def country(code: str) -> str:
    """An ISO 3166-1 country code as written ("DE"): its name is the reader's language's."""
    return clean(code)


def iban(value: str) -> str:
    """An IBAN in groups of four, as printed on paper: DE02 1203 0000 0000 2020 51."""
    compact = re.sub(r"\s+", "", value)
    if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{1,30}", compact):
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return clean(value)
