"""Where EN 16931 puts each field in CII (UN/CEFACT D16B, as Factur-X, ZUGFeRD 2 and XRechnung
use it) and in UBL 2.1 (Invoice and CreditNote): one XPath a field, from the EN 16931-3
syntax bindings.

read_cii and read_ubl take a parsed root element and give the fields of an EInvoice (without
syntax, source and problems) and the problems met reading them: a date or amount that does
not parse is a problem and the field stays None.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from gmid.documents.model import Address, Line, TaxBreakdown

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII_ROOT = f"{{{NS['rsm']}}}CrossIndustryInvoice"
UBL_INVOICE_ROOT = f"{{{NS['inv']}}}Invoice"
UBL_CREDIT_NOTE_ROOT = f"{{{NS['cn']}}}CreditNote"


_compiled = threading.local()  # one set of compiled XPaths a thread, as lxml asks


def xpath(expr: str) -> etree.XPath:
    """The compiled XPath of expr, with the namespaces above."""
    cache = _compiled.__dict__.setdefault("by_expr", {})
    found = cache.get(expr)
    if found is None:
        found = cache[expr] = etree.XPath(expr, namespaces=NS, smart_strings=False)
    return found


class _Fields:
    """Reads values below one element, noting each value that does not parse."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    @staticmethod
    def nodes(node: Any, expr: str) -> list[Any]:
        return xpath(expr)(node)

    def text(self, node: Any, expr: str) -> str | None:
        for found in self.nodes(node, expr):
            value = found if isinstance(found, str) else found.text
            if value and value.strip():
                return value.strip()
        return None

    def texts(self, node: Any, expr: str) -> str | None:
        """Every non-blank value found, one a line (payment terms may come in several parts)."""
        found = [v if isinstance(v, str) else v.text for v in self.nodes(node, expr)]
        return "\n".join(v.strip() for v in found if v and v.strip()) or None

    def amount(self, node: Any, expr: str, label: str) -> Decimal | None:
        value = self.text(node, expr)
        if value is None:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.problems.append(f"{label} is not a number: {value[:40]!r}")
            return None
        return number

    def day(self, node: Any, expr: str, label: str) -> date | None:
        """An ISO date (UBL) or a CII DateTimeString, whose format 102 is YYYYMMDD."""
        found = self.nodes(node, expr)
        if not found:
            return None
        element = found[0]
        value = (element.text or "").strip()
        cii_format = element.get("format")
        if cii_format not in (None, "102"):
            self.problems.append(f"{label} has date format {cii_format[:10]!r}, not 102")
            return None
        pattern, length = ("%Y-%m-%d", 10) if cii_format is None else ("%Y%m%d", 8)
        parsed = None
        if len(value) == length:
            with contextlib.suppress(ValueError):
                parsed = datetime.strptime(value, pattern).date()
        if parsed is None:
            self.problems.append(f"{label} is not a date: {value[:40]!r}")
        return parsed


def _address(f: _Fields, node: Any, lines: tuple[str, ...], city: str, post: str, country: str):
    if node is None:
        return None
    return Address(
        lines=tuple(v for v in (f.text(node, expr) for expr in lines) if v),
        city=f.text(node, city),
        postcode=f.text(node, post),
        country=f.text(node, country),
    )


def _first(f: _Fields, node: Any, expr: str) -> Any:
    found = f.nodes(node, expr)
    return found[0] if found else None


def _tax_in_currency(f: _Fields, nodes: list[Any], currency: str | None, label: str):
    """BT-110: of the tax totals (a second one may be in the accounting currency, BT-111),
    the one in the invoice currency, or without a currency."""
    for node in nodes:
        if node.get("currencyID") in (None, currency):
            return f.amount(node, "self::*", label)
    return None


# The document totals (BG-22): field, BT, element under CII's
# SpecifiedTradeSettlementHeaderMonetarySummation, element under UBL's LegalMonetaryTotal.
# The tax total (BT-110) is read apart: it may come twice, once in the accounting currency.
TOTALS = (
    ("line_total", "BT-106", "ram:LineTotalAmount", "cbc:LineExtensionAmount"),
    ("allowance_total", "BT-107", "ram:AllowanceTotalAmount", "cbc:AllowanceTotalAmount"),
    ("charge_total", "BT-108", "ram:ChargeTotalAmount", "cbc:ChargeTotalAmount"),
    ("net_total", "BT-109", "ram:TaxBasisTotalAmount", "cbc:TaxExclusiveAmount"),
    ("gross_total", "BT-112", "ram:GrandTotalAmount", "cbc:TaxInclusiveAmount"),
    ("prepaid", "BT-113", "ram:TotalPrepaidAmount", "cbc:PrepaidAmount"),
    ("rounding", "BT-114", "ram:RoundingAmount", "cbc:PayableRoundingAmount"),
    ("amount_due", "BT-115", "ram:DuePayableAmount", "cbc:PayableAmount"),
)


def _totals(f: _Fields, sums: Any, syntax: str) -> dict[str, Any]:
    column = 2 if syntax == "CII" else 3
    return {
        row[0]: f.amount(sums, row[column], f"{row[0].replace('_', ' ')} ({row[1]})")
        for row in TOTALS
    }


# A line's BT-126 ID, BT-153 name, BT-129 quantity with BT-130 unit, BT-131 net amount,
# BT-146 net price, BT-151 VAT category and BT-152 VAT rate.
_CII_LINE_TAX = "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
_CII_LINE = (
    "ram:AssociatedDocumentLineDocument/ram:LineID",
    "ram:SpecifiedTradeProduct/ram:Name",
    "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity",
    "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation"
    "/ram:LineTotalAmount",
    "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
    f"{_CII_LINE_TAX}/ram:CategoryCode",
    f"{_CII_LINE_TAX}/ram:RateApplicablePercent",
)
_UBL_LINE = (
    "cbc:ID",
    "cac:Item/cbc:Name",
    "cbc:InvoicedQuantity",
    "cbc:LineExtensionAmount",
    "cac:Price/cbc:PriceAmount",
    "cac:Item/cac:ClassifiedTaxCategory/cbc:ID",
    "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",
)
_UBL_CREDIT_NOTE_LINE = (*_UBL_LINE[:2], "cbc:CreditedQuantity", *_UBL_LINE[3:])


def _line(f: _Fields, item: Any, paths: tuple[str, ...]) -> Line:
    line_id, name, quantity_path, net, price, category, rate = paths
    quantity = _first(f, item, quantity_path)
    return Line(
        id=f.text(item, line_id),
        name=f.text(item, name),
        quantity=None
        if quantity is None
        else f.amount(quantity, "self::*", "line quantity (BT-129)"),
        unit=None if quantity is None else quantity.get("unitCode"),
        net_amount=f.amount(item, net, "line net amount (BT-131)"),
        price=f.amount(item, price, "line net price (BT-146)"),
        vat_category=f.text(item, category),
        vat_rate=f.amount(item, rate, "line VAT rate (BT-152)"),
    )


# A VAT breakdown's (BG-23) BT-118 category, BT-119 rate, BT-116 taxable amount, BT-117 tax
# and BT-120 exemption reason, below CII's ApplicableTradeTax or UBL's TaxSubtotal.
_CII_TAX = (
    "ram:CategoryCode",
    "ram:RateApplicablePercent",
    "ram:BasisAmount",
    "ram:CalculatedAmount",
    "ram:ExemptionReason",
)
_UBL_TAX = (
    "cac:TaxCategory/cbc:ID",
    "cac:TaxCategory/cbc:Percent",
    "cbc:TaxableAmount",
    "cbc:TaxAmount",
    "cac:TaxCategory/cbc:TaxExemptionReason",
)


def _taxes(f: _Fields, nodes: list[Any], paths: tuple[str, ...]) -> tuple[TaxBreakdown, ...]:
    """The VAT breakdown, by category and rate: the syntaxes need not list it in one order."""
    category, rate, taxable, tax, reason = paths
    found = [
        TaxBreakdown(
            category=f.text(node, category),
            rate=f.amount(node, rate, "VAT rate (BT-119)"),
            taxable=f.amount(node, taxable, "VAT taxable amount (BT-116)"),
            tax=f.amount(node, tax, "VAT amount (BT-117)"),
            exemption_reason=f.text(node, reason),
        )
        for node in nodes
    ]
    return tuple(sorted(found, key=lambda t: (t.category or "", t.rate or Decimal(-1))))


def _party(f: _Fields, node: Any, vat_id: str, address: str, parts: tuple) -> dict[str, Any]:
    """A buyer's VAT ID (BT-48) and address (BG-8)."""
    return {
        "buyer_vat_id": f.text(node, vat_id),
        "buyer_address": _address(f, _first(f, node, address), *parts),
    }


# --- CII -------------------------------------------------------------------------------------

_CII_ADDRESS = (
    ("ram:LineOne", "ram:LineTwo", "ram:LineThree"),
    "ram:CityName",
    "ram:PostcodeCode",
    "ram:CountryID",
)


def read_cii(root: Any) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    f = _Fields(problems)
    doc = "rsm:ExchangedDocument"
    trade = _first(f, root, "rsm:SupplyChainTradeTransaction")
    agreement = (
        _first(f, trade, "ram:ApplicableHeaderTradeAgreement") if trade is not None else None
    )
    settlement = (
        _first(f, trade, "ram:ApplicableHeaderTradeSettlement") if trade is not None else None
    )
    seller = "ram:SellerTradeParty"
    fields: dict[str, Any] = {
        "profile": f.text(
            root,
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        ),
        "number": f.text(root, f"{doc}/ram:ID"),
        "issue_date": f.day(
            root, f"{doc}/ram:IssueDateTime/udt:DateTimeString", "issue date (BT-2)"
        ),
        "type_code": f.text(root, f"{doc}/ram:TypeCode"),
    }
    if agreement is not None:
        fields |= {
            "buyer_reference": f.text(agreement, "ram:BuyerReference"),
            "seller_name": f.text(agreement, f"{seller}/ram:Name"),
            "seller_vat_id": f.text(
                agreement, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"
            ),
            "seller_tax_number": f.text(
                agreement, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']"
            ),
            "seller_address": _address(
                f, _first(f, agreement, f"{seller}/ram:PostalTradeAddress"), *_CII_ADDRESS
            ),
            "buyer_name": f.text(agreement, "ram:BuyerTradeParty/ram:Name"),
            **_party(
                f,
                agreement,
                "ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']",
                "ram:BuyerTradeParty/ram:PostalTradeAddress",
                _CII_ADDRESS,
            ),
        }
    if settlement is not None:
        fields |= _cii_settlement(f, settlement)
    if trade is not None:
        fields["delivery_date"] = f.day(
            trade,
            "ram:ApplicableHeaderTradeDelivery/ram:ActualDeliverySupplyChainEvent"
            "/ram:OccurrenceDateTime/udt:DateTimeString",
            "delivery date (BT-72)",
        )
        fields["lines"] = tuple(
            _line(f, item, _CII_LINE)
            for item in f.nodes(trade, "ram:IncludedSupplyChainTradeLineItem")
        )
    return fields, problems


def _cii_settlement(f: _Fields, settlement: Any) -> dict[str, Any]:
    currency = f.text(settlement, "ram:InvoiceCurrencyCode")
    means = "ram:SpecifiedTradeSettlementPaymentMeans"
    account = f"{means}/ram:PayeePartyCreditorFinancialAccount"
    period = "ram:BillingSpecifiedPeriod"
    sums = _first(f, settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    fields: dict[str, Any] = {
        "currency": currency,
        "due_date": f.day(
            settlement,
            "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
            "due date (BT-9)",
        ),
        "iban": f.text(settlement, f"{account}/ram:IBANID")
        or f.text(settlement, f"{account}/ram:ProprietaryID"),
        "account_name": f.text(settlement, f"{account}/ram:AccountName"),
        "bic": f.text(
            settlement, f"{means}/ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID"
        ),
        "payment_means": f.text(settlement, f"{means}/ram:TypeCode"),
        "payment_terms": f.texts(settlement, "ram:SpecifiedTradePaymentTerms/ram:Description"),
        "period_start": f.day(
            settlement, f"{period}/ram:StartDateTime/udt:DateTimeString", "period start (BT-73)"
        ),
        "period_end": f.day(
            settlement, f"{period}/ram:EndDateTime/udt:DateTimeString", "period end (BT-74)"
        ),
        "taxes": _taxes(f, f.nodes(settlement, "ram:ApplicableTradeTax"), _CII_TAX),
    }
    if sums is not None:
        fields |= _totals(f, sums, "CII")
        fields["tax_total"] = _tax_in_currency(
            f, f.nodes(sums, "ram:TaxTotalAmount"), currency, "tax total (BT-110)"
        )
    return fields


# --- UBL -------------------------------------------------------------------------------------

_UBL_ADDRESS = (
    ("cbc:StreetName", "cbc:AdditionalStreetName", "cac:AddressLine/cbc:Line"),
    "cbc:CityName",
    "cbc:PostalZone",
    "cac:Country/cbc:IdentificationCode",
)


def read_ubl(root: Any) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    f = _Fields(problems)
    credit_note = root.tag == UBL_CREDIT_NOTE_ROOT
    currency = f.text(root, "cbc:DocumentCurrencyCode")
    seller = "cac:AccountingSupplierParty/cac:Party"
    account = "cac:PaymentMeans/cac:PayeeFinancialAccount"
    # BT-27 is the legal name; the trading name (BT-28, PartyName) stands in where it is absent.
    fields: dict[str, Any] = {
        "profile": f.text(root, "cbc:CustomizationID"),
        "number": f.text(root, "cbc:ID"),
        "issue_date": f.day(root, "cbc:IssueDate", "issue date (BT-2)"),
        "type_code": f.text(
            root, "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode"
        ),
        "currency": currency,
        # An Invoice has its due date at the top, a CreditNote in its payment means.
        "due_date": f.day(
            root,
            "cac:PaymentMeans/cbc:PaymentDueDate" if credit_note else "cbc:DueDate",
            "due date (BT-9)",
        ),
        "buyer_reference": f.text(root, "cbc:BuyerReference"),
        "seller_name": f.text(root, f"{seller}/cac:PartyLegalEntity/cbc:RegistrationName")
        or f.text(root, f"{seller}/cac:PartyName/cbc:Name"),
        "seller_vat_id": f.text(
            root, f"{seller}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID"
        ),
        "seller_tax_number": f.text(
            root, f"{seller}/cac:PartyTaxScheme[not(cac:TaxScheme/cbc:ID='VAT')]/cbc:CompanyID"
        ),
        "seller_address": _address(
            f, _first(f, root, f"{seller}/cac:PostalAddress"), *_UBL_ADDRESS
        ),
        "buyer_name": f.text(
            root, "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"
        )
        or f.text(root, "cac:AccountingCustomerParty/cac:Party/cac:PartyName/cbc:Name"),
        **_party(
            f,
            root,
            "cac:AccountingCustomerParty/cac:Party"
            "/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
            "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress",
            _UBL_ADDRESS,
        ),
        "delivery_date": f.day(
            root, "cac:Delivery/cbc:ActualDeliveryDate", "delivery date (BT-72)"
        ),
        "period_start": f.day(root, "cac:InvoicePeriod/cbc:StartDate", "period start (BT-73)"),
        "period_end": f.day(root, "cac:InvoicePeriod/cbc:EndDate", "period end (BT-74)"),
        "payment_terms": f.texts(root, "cac:PaymentTerms/cbc:Note"),
        "payment_means": f.text(root, "cac:PaymentMeans/cbc:PaymentMeansCode"),
        "iban": f.text(root, f"{account}/cbc:ID"),
        "account_name": f.text(root, f"{account}/cbc:Name"),
        "bic": f.text(root, f"{account}/cac:FinancialInstitutionBranch/cbc:ID"),
        "taxes": _taxes(f, f.nodes(root, "cac:TaxTotal/cac:TaxSubtotal"), _UBL_TAX),
        "tax_total": _tax_in_currency(
            f, f.nodes(root, "cac:TaxTotal/cbc:TaxAmount"), currency, "tax total (BT-110)"
        ),
    }
    sums = _first(f, root, "cac:LegalMonetaryTotal")
    if sums is not None:
        fields |= _totals(f, sums, "UBL")
    line, paths = (
        ("cac:CreditNoteLine", _UBL_CREDIT_NOTE_LINE)
        if credit_note
        else ("cac:InvoiceLine", _UBL_LINE)
    )
    fields["lines"] = tuple(_line(f, item, paths) for item in f.nodes(root, line))
    return fields, problems
