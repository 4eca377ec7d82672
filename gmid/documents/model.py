"""What an e-invoice says, by the meaning EN 16931 gives its fields (BT numbers in comments).

The same invoice read from CII, from UBL or from the CII inside a Factur-X PDF gives equal
values: amounts are Decimals (473 == 473.00), dates are dates, codes are the codes as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# BT-3 codes (UNTDID 1001) that EN 16931 treats as credit notes; all others are invoices.
CREDIT_NOTE_CODES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
)


@dataclass(frozen=True)
class Address:
    """A postal address (BG-5 for the seller, BG-8 for the buyer)."""

    lines: tuple[str, ...] = ()  # BT-35, BT-36, BT-162
    city: str | None = None  # BT-37
    postcode: str | None = None  # BT-38
    country: str | None = None  # BT-40, ISO 3166-1 alpha-2


@dataclass(frozen=True)
class Line:
    """One invoice line (BG-25)."""

    id: str | None = None  # BT-126
    name: str | None = None  # BT-153
    quantity: Decimal | None = None  # BT-129
    unit: str | None = None  # BT-130, UN/ECE Rec 20 code
    net_amount: Decimal | None = None  # BT-131
    price: Decimal | None = None  # BT-146, the item's net price
    vat_category: str | None = None  # BT-151, UNTDID 5305: S, Z, E, AE, K, ...
    vat_rate: Decimal | None = None  # BT-152, in per cent


@dataclass(frozen=True)
class TaxBreakdown:
    """The tax of one category and rate (BG-23)."""

    category: str | None = None  # BT-118, UNTDID 5305
    rate: Decimal | None = None  # BT-119, in per cent
    taxable: Decimal | None = None  # BT-116
    tax: Decimal | None = None  # BT-117
    exemption_reason: str | None = None  # BT-120


@dataclass(frozen=True)
class EInvoice:
    """An e-invoice as read, with the problems found in it (empty when it passed every check).

    syntax is "CII" or "UBL"; source is where the XML came from: "xml" for an XML file, else the
    name of the PDF attachment it was read from (factur-x.xml, xrechnung.xml, ...).
    """

    syntax: str
    source: str
    profile: str | None = None  # BT-24, specification identifier
    number: str | None = None  # BT-1
    issue_date: date | None = None  # BT-2
    type_code: str | None = None  # BT-3: 380 invoice, 381 credit note, ...
    currency: str | None = None  # BT-5
    due_date: date | None = None  # BT-9
    buyer_reference: str | None = None  # BT-10 (the Leitweg-ID for XRechnung)
    seller_name: str | None = None  # BT-27
    seller_vat_id: str | None = None  # BT-31
    seller_tax_number: str | None = None  # BT-32
    seller_address: Address | None = None  # BG-5
    buyer_name: str | None = None  # BT-44
    buyer_vat_id: str | None = None  # BT-48
    buyer_address: Address | None = None  # BG-8
    delivery_date: date | None = None  # BT-72
    period_start: date | None = None  # BT-73, the invoicing period
    period_end: date | None = None  # BT-74
    payment_terms: str | None = None  # BT-20
    payment_means: str | None = None  # BT-81, UNTDID 4461: 58 SEPA transfer, 59 direct debit
    iban: str | None = None  # BT-84, the first credit transfer account
    account_name: str | None = None  # BT-85
    bic: str | None = None  # BT-86
    line_total: Decimal | None = None  # BT-106, sum of the lines' net amounts
    allowance_total: Decimal | None = None  # BT-107
    charge_total: Decimal | None = None  # BT-108
    net_total: Decimal | None = None  # BT-109
    tax_total: Decimal | None = None  # BT-110, in the invoice currency
    gross_total: Decimal | None = None  # BT-112
    prepaid: Decimal | None = None  # BT-113
    rounding: Decimal | None = None  # BT-114
    amount_due: Decimal | None = None  # BT-115
    lines: tuple[Line, ...] = ()
    taxes: tuple[TaxBreakdown, ...] = ()  # BG-23, by category and rate
    problems: tuple[str, ...] = ()

    @property
    def is_credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_CODES
