"""E-invoice reading cost: gmid.documents.read_einvoice against the bare libraries.

For every file of the corpus (tests/documents/corpus, or --corpus DIR with CII/, UBL/, FX/):

- ours: read_einvoice(data, name), as stored: safe parse, the fields, the XSD check, the sums
  and required fields; and the same without the XSD check (--no-schema column);
- bare, XML: lxml's default parser and the same fields' XPaths, compiled, values as strings;
- bare, PDF: pypdf's attachment list and the content of the invoice attachment (no XML read).

Figures are the median over --rounds of each file, in ms, and ours / bare.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

from lxml import etree
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import timed

from gmid.documents import read_einvoice
from gmid.documents.einvoice import INVOICE_ATTACHMENTS
from gmid.documents.syntax import NS

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "documents" / "corpus"

_T = "rsm:SupplyChainTradeTransaction"
_A = f"{_T}/ram:ApplicableHeaderTradeAgreement"
_S = f"{_T}/ram:ApplicableHeaderTradeSettlement"
_M = f"{_S}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_LINE = f"{_T}/ram:IncludedSupplyChainTradeLineItem"
CII_PATHS = [
    "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
    "rsm:ExchangedDocument/ram:ID",
    "rsm:ExchangedDocument/ram:TypeCode",
    "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
    f"{_A}/ram:BuyerReference",
    f"{_A}/ram:SellerTradeParty/ram:Name",
    f"{_A}/ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']",
    f"{_A}/ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']",
    *(
        f"{_A}/ram:SellerTradeParty/ram:PostalTradeAddress/{e}"
        for e in ("ram:LineOne", "ram:LineTwo", "ram:LineThree", "ram:CityName")
    ),
    f"{_A}/ram:SellerTradeParty/ram:PostalTradeAddress/ram:PostcodeCode",
    f"{_A}/ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID",
    f"{_A}/ram:BuyerTradeParty/ram:Name",
    f"{_S}/ram:InvoiceCurrencyCode",
    f"{_S}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
    f"{_S}/ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount"
    "/ram:IBANID",
    *(
        f"{_M}/ram:{e}"
        for e in (
            "LineTotalAmount",
            "AllowanceTotalAmount",
            "ChargeTotalAmount",
            "TaxBasisTotalAmount",
            "TaxTotalAmount",
            "GrandTotalAmount",
            "TotalPrepaidAmount",
            "RoundingAmount",
            "DuePayableAmount",
        )
    ),
    f"{_LINE}/ram:AssociatedDocumentLineDocument/ram:LineID",
    f"{_LINE}/ram:SpecifiedTradeProduct/ram:Name",
    f"{_LINE}/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity",
    f"{_LINE}/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/@unitCode",
    f"{_LINE}/ram:SpecifiedLineTradeSettlement"
    "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
]
_P = "cac:AccountingSupplierParty/cac:Party"
_LM = "cac:LegalMonetaryTotal"
UBL_PATHS = [
    "cbc:CustomizationID",
    "cbc:ID",
    "cbc:IssueDate",
    "cbc:InvoiceTypeCode|cbc:CreditNoteTypeCode",
    "cbc:DocumentCurrencyCode",
    "cbc:DueDate|cac:PaymentMeans/cbc:PaymentDueDate",
    "cbc:BuyerReference",
    f"{_P}/cac:PartyLegalEntity/cbc:RegistrationName",
    f"{_P}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
    f"{_P}/cac:PartyTaxScheme[not(cac:TaxScheme/cbc:ID='VAT')]/cbc:CompanyID",
    *(
        f"{_P}/cac:PostalAddress/{e}"
        for e in (
            "cbc:StreetName",
            "cbc:AdditionalStreetName",
            "cac:AddressLine/cbc:Line",
            "cbc:CityName",
            "cbc:PostalZone",
            "cac:Country/cbc:IdentificationCode",
        )
    ),
    "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
    "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID",
    "cac:TaxTotal/cbc:TaxAmount",
    *(
        f"{_LM}/cbc:{e}"
        for e in (
            "LineExtensionAmount",
            "AllowanceTotalAmount",
            "ChargeTotalAmount",
            "TaxExclusiveAmount",
            "TaxInclusiveAmount",
            "PrepaidAmount",
            "PayableRoundingAmount",
            "PayableAmount",
        )
    ),
    *(
        f"cac:InvoiceLine/{e}|cac:CreditNoteLine/{e}"
        for e in (
            "cbc:ID",
            "cac:Item/cbc:Name",
            "cbc:InvoicedQuantity",
            "cbc:CreditedQuantity",
            "cbc:LineExtensionAmount",
        )
    ),
]
CII_XPATHS = [etree.XPath(p, namespaces=NS) for p in CII_PATHS]
UBL_XPATHS = [etree.XPath(p, namespaces=NS) for p in UBL_PATHS]


def bare_xml(data: bytes) -> list:
    root = etree.fromstring(data)
    paths = CII_XPATHS if root.tag.endswith("CrossIndustryInvoice") else UBL_XPATHS
    return [[n if isinstance(n, str) else n.text for n in xp(root)] for xp in paths]


def bare_pdf(data: bytes) -> bytes | None:
    for attachment in PdfReader(io.BytesIO(data)).attachment_list:
        if attachment.name.lower() in INVOICE_ATTACHMENTS:
            return attachment.content
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    files = [p for sub in ("CII", "UBL", "FX") for p in sorted((args.corpus / sub).glob("*.*"))]
    files = [p for p in files if p.suffix in (".xml", ".pdf")]
    print(f"{'file':<64} {'KB':>6} {'ours':>8} {'no xsd':>8} {'bare':>8} {'ratio':>6}  (ms)")
    by_kind: dict[str, list[tuple[float, float, float]]] = {}
    for path in files:
        data = path.read_bytes()
        assert read_einvoice(data, path.name) is not None, path
        ours = timed(lambda d=data, n=path.name: read_einvoice(d, n), args.rounds)
        plain = timed(
            lambda d=data, n=path.name: read_einvoice(d, n, check_schema=False), args.rounds
        )
        bare_fn = bare_pdf if path.suffix == ".pdf" else bare_xml
        bare = timed(lambda d=data, f=bare_fn: f(d), args.rounds)
        kind = path.parent.name
        by_kind.setdefault(kind, []).append((ours, plain, bare))
        print(
            f"{kind + '/' + path.name:<64} {len(data) / 1024:>6.0f} {ours * 1e3:>8.2f} "
            f"{plain * 1e3:>8.2f} {bare * 1e3:>8.2f} {ours / bare:>6.1f}"
        )
    print()
    print(f"{'median per file':<64} {'n':>6} {'ours':>8} {'no xsd':>8} {'bare':>8} {'ratio':>6}")
    for kind, rows in by_kind.items():
        ours, plain, bare = (statistics.median(col) * 1e3 for col in zip(*rows, strict=True))
        print(
            f"{kind:<64} {len(rows):>6} {ours:>8.2f} {plain:>8.2f} {bare:>8.2f} {ours / bare:>6.1f}"
        )


if __name__ == "__main__":
    main()
