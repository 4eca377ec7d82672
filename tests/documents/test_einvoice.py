"""E-invoices read exactly: the same invoice as CII, UBL and Factur-X PDF reads the same; the
checks find tampered sums and missing fields; hostile and broken files give problems, not
exceptions; other documents give None.

The corpus is the copy in tests/documents/corpus/ (README.md there says what it holds).
"""

from __future__ import annotations

import io
import time
from dataclasses import fields
from datetime import date
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader, PdfWriter

from gmid.documents import Address, EInvoice, Line, TaxBreakdown, read_einvoice
from gmid.documents import einvoice as einvoice_module

CORPUS = Path(__file__).parent / "corpus"
STEMS = sorted(p.name.removesuffix(".cii.xml") for p in (CORPUS / "CII").glob("*.cii.xml"))
PDF_STEMS = sorted(p.stem for p in (CORPUS / "FX").glob("*.pdf"))
UBL_ONLY = sorted(p.name for p in (CORPUS / "UBL").glob("*.xml") if not p.name.endswith(".ubl.xml"))
BROKEN_ON_PURPOSE = "not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel"
# The XRECHNUNG_* PDFs carry the 2018 edition of the invoice, the XML files the 2024 one:
# everything but these dates (and the payment terms, which name dates) is the same
# (corpus/README.md).
OTHER_EDITION = ("issue_date", "due_date", "delivery_date", "payment_terms")


def _cii(stem: str) -> bytes:
    return (CORPUS / "CII" / f"{stem}.cii.xml").read_bytes()


def _ubl(stem: str) -> bytes:
    return (CORPUS / "UBL" / f"{stem}.ubl.xml").read_bytes()


def _pdf(stem: str) -> bytes:
    return (CORPUS / "FX" / f"{stem}.pdf").read_bytes()


def _read(data: bytes, name: str) -> EInvoice:
    invoice = read_einvoice(data, name)
    assert invoice is not None, name
    return invoice


def _content(invoice: EInvoice, leave_out: tuple[str, ...] = ()) -> dict:
    """What the invoice says: every field but where it came from and what was found wrong."""
    skip = {"syntax", "source", "profile", "problems", *leave_out}
    return {f.name: getattr(invoice, f.name) for f in fields(invoice) if f.name not in skip}


def _pdf_with(attachments: list[tuple[str, bytes]], base: str = "EN16931_Einfach") -> bytes:
    """A PDF of the pages of a corpus PDF with these attachments, in this order."""
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_pdf(base))).pages:
        writer.add_page(page)
    for name, data in attachments:
        writer.add_attachment(name, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _attachment(stem: str) -> bytes:
    reader = PdfReader(io.BytesIO(_pdf(stem)))
    return next(a.content for a in reader.attachment_list if a.name.endswith(".xml"))


# --- the corpus -----------------------------------------------------------------------------------


def test_the_corpus_copy_is_there():
    assert len(STEMS) >= 20 and len(PDF_STEMS) >= 5
    assert (CORPUS / "LICENSE").exists() and (CORPUS / "SOURCE.md").exists()


@pytest.mark.parametrize("stem", [s for s in STEMS if s != BROKEN_ON_PURPOSE])
def test_cii_and_ubl_read_the_same(stem):
    cii, ubl = _read(_cii(stem), "a.cii.xml"), _read(_ubl(stem), "a.ubl.xml")
    assert (cii.syntax, ubl.syntax) == ("CII", "UBL")
    assert _content(cii) == _content(ubl)
    assert cii.number and cii.issue_date and cii.gross_total is not None and cii.lines


@pytest.mark.parametrize("stem", PDF_STEMS)
def test_the_pdf_reads_as_its_cii(stem):
    pdf, cii = _read(_pdf(stem), f"{stem}.pdf"), _read(_cii(stem), "a.xml")
    leave_out = OTHER_EDITION if stem.startswith("XRECHNUNG") else ()
    assert pdf.syntax == "CII"
    assert pdf.source == ("xrechnung.xml" if stem.startswith("XRECHNUNG") else "factur-x.xml")
    assert _content(pdf, leave_out) == _content(cii, leave_out)
    assert pdf.problems == ()


@pytest.mark.parametrize(
    "path",
    [*sorted((CORPUS / "CII").glob("*.xml")), *sorted((CORPUS / "UBL").glob("*.xml"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_the_corpus_passes_every_check(path):
    invoice = _read(path.read_bytes(), path.name)
    if path.name == f"{BROKEN_ON_PURPOSE}.ubl.xml":
        # Broken on purpose: its lines add up to 2000 and its net plus tax to 250.
        assert [p for p in invoice.problems if p.startswith("sums:")] == [
            "sums: the lines' net amounts (BT-131) add up to 2000, "
            "not the sum of lines (BT-106) 200",
            "sums: net total (BT-109) 200 plus tax total (BT-110) 50 is 250, "
            "not the gross total (BT-112) 205",
        ]
    else:
        assert invoice.problems == ()


def _facturx_fields(data: bytes) -> dict:
    """What factur-x's own EN 16931 parser reads, in our fields' terms."""
    parsed = facturx.parse_ubl_cii_xml(etree.fromstring(data), check_xsd=False)
    amount = {name: parsed.get(bt) for name, bt in TOTALS.items()}
    return {
        "number": parsed.get("BT-1"),
        "issue_date": parsed.get("BT-2"),
        "type_code": parsed.get("BT-3"),
        "currency": parsed.get("BT-5"),
        "due_date": parsed.get("BT-9"),
        "buyer_reference": parsed.get("BT-10"),
        "seller_name": parsed.get("BG-4", {}).get("name"),
        "seller_vat_id": parsed.get("BG-4", {}).get("vat_identifier"),
        "buyer_name": parsed.get("BG-7", {}).get("name"),
        **{name: None if value is None else Decimal(value) for name, value in amount.items()},
        "lines": [Decimal(line["BT-131"]) for line in parsed.get("BG-25", [])],
    }


TOTALS = {
    "line_total": "BT-106",
    "net_total": "BT-109",
    "tax_total": "BT-110",
    "gross_total": "BT-112",
    "amount_due": "BT-115",
}


@pytest.mark.parametrize(
    "path",
    [*sorted((CORPUS / "CII").glob("*.xml")), *sorted((CORPUS / "UBL").glob("*.xml"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_factur_x_s_own_parser_reads_the_same(path):
    """An independent reading: factur-x maps EN 16931 to CII and UBL by a table of its own."""
    data = path.read_bytes()
    ours = _read(data, path.name)
    theirs = _facturx_fields(data)
    assert {
        **{name: getattr(ours, name) for name in theirs if name != "lines"},
        "lines": [line.net_amount for line in ours.lines],
    } == theirs


# --- known values, as the files write them --------------------------------------------------------


def test_known_values_of_a_cii_invoice_with_two_vat_rates():
    invoice = _read(_cii("EN16931_Einfach"), "EN16931_Einfach.cii.xml")
    assert invoice == EInvoice(
        syntax="CII",
        source="xml",
        profile="urn:cen.eu:en16931:2017",
        number="471102",
        issue_date=date(2018, 3, 5),
        type_code="380",
        currency="EUR",
        due_date=None,
        buyer_reference=None,
        seller_name="Lieferant GmbH",
        seller_vat_id="DE123456789",
        seller_tax_number="201/113/40209",
        seller_address=Address(
            lines=("Lieferantenstraße 20",), city="München", postcode="80333", country="DE"
        ),
        buyer_name="Kunden AG Mitte",
        buyer_address=Address(
            lines=("Kundenstraße 15",), city="Frankfurt", postcode="69876", country="DE"
        ),
        delivery_date=date(2018, 3, 5),
        payment_terms="Zahlbar innerhalb 30 Tagen netto bis 04.04.2018, "
        "3% Skonto innerhalb 10 Tagen bis 15.03.2018",
        iban=None,
        line_total=Decimal("473.00"),
        allowance_total=Decimal("0.00"),
        charge_total=Decimal("0.00"),
        net_total=Decimal("473.00"),
        tax_total=Decimal("56.87"),
        gross_total=Decimal("529.87"),
        prepaid=Decimal("0.00"),
        amount_due=Decimal("529.87"),
        lines=(
            Line(
                "1",
                "Trennblätter A4",
                Decimal("20.0000"),
                "H87",
                Decimal("198.00"),
                Decimal("9.9000"),
                "S",
                Decimal("19.00"),
            ),
            Line(
                "2",
                "Joghurt Banane",
                Decimal("50.0000"),
                "H87",
                Decimal("275.00"),
                Decimal("5.5000"),
                "S",
                Decimal("7.00"),
            ),
        ),
        taxes=(
            TaxBreakdown("S", Decimal("7.00"), Decimal("275.00"), Decimal("19.25")),
            TaxBreakdown("S", Decimal("19.00"), Decimal("198.00"), Decimal("37.62")),
        ),
    )
    assert not invoice.is_credit_note


def test_known_values_of_a_ubl_credit_note():
    invoice = _read((CORPUS / "UBL" / "ubl-tc434-creditnote1.xml").read_bytes(), "text/xml")
    assert (invoice.syntax, invoice.type_code, invoice.is_credit_note) == ("UBL", "381", True)
    assert invoice.number == "018304 / 28865"
    assert invoice.issue_date == date(2019, 9, 23)
    assert invoice.buyer_reference == "018304 / 28865"
    assert invoice.seller_name == "My Supplier Company"  # BT-27, the legal name
    assert invoice.seller_vat_id == "BE0000000196"
    assert invoice.seller_address == Address(("De Grote Meir 22",), "ANTWERPEN", "2000", "BE")
    assert invoice.buyer_name == "My Customer Company"
    assert invoice.iban == "BE91000000143476"
    assert invoice.bic == "BPOTBEB1"
    assert invoice.buyer_vat_id == "BE0000000295"
    assert invoice.buyer_address == Address(
        ("Boulevard Sint Michel 53",), "BRUXELLES", "1000", "BE"
    )
    assert (invoice.period_start, invoice.period_end) == (date(2019, 2, 1), date(2019, 2, 28))
    assert invoice.taxes == (
        TaxBreakdown(
            "E", Decimal("0.00"), Decimal("100.11"), Decimal("0.00"), "Taxes are not applicable"
        ),
    )
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total, invoice.amount_due) == (
        Decimal("100.11"),
        Decimal("0.00"),
        Decimal("100.11"),
        Decimal("100.11"),
    )
    assert invoice.lines == (
        Line(
            "1",
            "Exonération du versement du PP",
            Decimal("1.00"),
            "C62",
            Decimal("100.11"),
            Decimal("100.11"),
            "E",
            Decimal("0.00"),
        ),
    )


def test_known_values_of_an_xrechnung_pdf():
    invoice = _read(_pdf("XRECHNUNG_Einfach"), "application/pdf")
    assert invoice.source == "xrechnung.xml"
    assert invoice.profile == (
        "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.1"
    )
    assert invoice.number == "471102"
    assert invoice.issue_date == date(2018, 3, 5)
    assert invoice.buyer_reference == "04011000-12345-34"  # the Leitweg-ID
    assert invoice.iban == "DE02120300000000202051"
    assert (invoice.seller_vat_id, invoice.seller_tax_number) == ("DE123456789", "201/113/40209")
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        Decimal("473.00"),
        Decimal("56.87"),
        Decimal("529.87"),
    )
    assert [line.name for line in invoice.lines] == ["Trennblätter A4", "Joghurt Banane"]
    assert invoice.problems == ()


def test_a_correction_and_a_self_billed_credit_keep_their_type_and_signs():
    correction = _read(_pdf("EN16931_Rechnungskorrektur"), "x.pdf")
    assert correction.type_code == "384" and correction.gross_total == Decimal("-8.79")
    credit = _read(_pdf("EN16931_Gutschrift"), "x.pdf")
    assert credit.type_code == "389" and not credit.is_credit_note


# --- the checks -----------------------------------------------------------------------------------


def test_a_tampered_gross_total_is_read_and_named():
    data = _cii("EN16931_Einfach").replace(
        b"<ram:GrandTotalAmount>529.87<", b"<ram:GrandTotalAmount>539.87<"
    )
    invoice = _read(data, "x.xml")
    assert invoice.number == "471102" and invoice.gross_total == Decimal("539.87")
    assert invoice.problems == (
        "sums: net total (BT-109) 473.00 plus tax total (BT-110) 56.87 is 529.87, "
        "not the gross total (BT-112) 539.87",
        "sums: gross total (BT-112) 539.87 less prepaid (BT-113) 0.00 plus rounding (BT-114) 0 "
        "is 539.87, not the amount due (BT-115) 529.87",
    )


def test_a_tampered_line_is_named():
    data = _ubl("EN16931_Einfach").replace(
        b'<cbc:LineExtensionAmount currencyID="EUR">198<',
        b'<cbc:LineExtensionAmount currencyID="EUR">198.02<',
    )
    invoice = _read(data, "x.xml")
    assert invoice.problems == (
        "sums: the lines' net amounts (BT-131) add up to 473.02, not the sum of lines (BT-106) 473",
    )


def test_a_tampered_net_total_is_named():
    data = _cii("EN16931_Einfach").replace(
        b"<ram:TaxBasisTotalAmount>473.00<", b"<ram:TaxBasisTotalAmount>483.00<"
    )
    assert _read(data, "x.xml").problems == (
        "sums: sum of lines (BT-106) 473.00 less allowances (BT-107) 0.00 plus charges (BT-108) "
        "0.00 is 473.00, not the net total (BT-109) 483.00",
        "sums: net total (BT-109) 483.00 plus tax total (BT-110) 56.87 is 539.87, "
        "not the gross total (BT-112) 529.87",
    )


def test_a_cent_of_rounding_is_no_problem():
    data = _cii("EN16931_Einfach").replace(
        b"<ram:GrandTotalAmount>529.87<", b"<ram:GrandTotalAmount>529.88<"
    )
    assert not [p for p in _read(data, "x.xml").problems if "BT-109" in p]


def test_missing_fields_are_named():
    data = (
        _cii("EN16931_Einfach")
        .replace(b"<ram:Name>Lieferant GmbH</ram:Name>", b"")
        .replace(b'<ram:ID schemeID="VA">DE123456789</ram:ID>', b"")
        .replace(b'<ram:ID schemeID="FC">201/113/40209</ram:ID>', b"")
    )
    invoice = _read(data, "x.xml")
    assert "missing: seller name (BT-27)" in invoice.problems
    assert "missing: seller VAT ID (BT-31) or tax number (BT-32)" in invoice.problems
    assert invoice.gross_total == Decimal("529.87")


def test_a_value_that_does_not_parse_is_a_problem():
    data = (
        _cii("EN16931_Einfach")
        .replace(b"<ram:GrandTotalAmount>529.87<", b"<ram:GrandTotalAmount>529,87<")
        .replace(b'format="102">20180305<', b'format="102">2018-03-05<', 1)
    )
    invoice = _read(data, "x.xml")
    assert invoice.gross_total is None and invoice.issue_date is None
    assert "gross total (BT-112) is not a number: '529,87'" in invoice.problems
    assert "issue date (BT-2) is not a date: '2018-03-05'" in invoice.problems
    assert "missing: gross total (BT-112)" in invoice.problems


def test_the_schema_check_finds_an_unknown_element():
    data = _cii("EN16931_Einfach").replace(
        b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:TypeCode>380</ram:TypeCode><ram:Bogus/>"
    )
    invoice = _read(data, "x.xml")
    assert invoice.number == "471102"
    assert invoice.problems and invoice.problems[0].startswith(
        "schema: not valid against the Factur-X en16931 XSD: line "
    )
    assert "Bogus" in invoice.problems[0]
    assert read_einvoice(data, "x.xml", check_schema=False).problems == ()


def test_the_ubl_schema_check():
    data = _ubl("EN16931_Einfach").replace(b"<cbc:ID>471102</cbc:ID>", b"<cbc:Bogus/>")
    invoice = _read(data, "x.xml")
    assert invoice.problems[0].startswith("schema: not valid against the UBL 2.1 XSD")
    assert "missing: invoice number (BT-1)" in invoice.problems


# --- the attachment a PDF carries -----------------------------------------------------------------


def test_the_invoice_attachment_is_picked_by_name_not_place():
    invoice_xml = _attachment("EN16931_Einfach")
    # A delivery note that a reader of the first XML attachment would take for the invoice.
    note = invoice_xml.replace(b"<ram:ID>471102</ram:ID>", b"<ram:ID>LS-0815</ram:ID>", 1)
    pdf = _pdf_with([("delivery-note.xml", note), ("factur-x.xml", invoice_xml)])
    names = [a.name for a in PdfReader(io.BytesIO(pdf)).attachment_list]
    assert names == ["delivery-note.xml", "factur-x.xml"]
    invoice = _read(pdf, "scan.pdf")
    assert (invoice.source, invoice.number) == ("factur-x.xml", "471102")


@pytest.mark.parametrize("name", ["ZUGFeRD-invoice.xml", "zugferd-invoice.xml", "xrechnung.xml"])
def test_every_standard_attachment_name_is_read(name):
    pdf = _pdf_with([("readme.txt", b"hello"), (name, _attachment("EN16931_Einfach"))])
    invoice = _read(pdf, "x.pdf")
    assert (invoice.source, invoice.number, invoice.problems) == (name, "471102", ())


def test_a_pdf_with_a_second_attachment_from_the_corpus():
    invoice = _read(_pdf("EN16931_Betriebskostenabrechnung"), "x.pdf")
    assert invoice.source == "factur-x.xml" and invoice.number == "471102"


# --- what is no invoice, or a hostile one ---------------------------------------------------------

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rsm:CrossIndustryInvoice
  xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
 <rsm:ExchangedDocument><ram:ID>&lol9;</ram:ID></rsm:ExchangedDocument>
</rsm:CrossIndustryInvoice>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:ID>&xxe;</cbc:ID>
</Invoice>
"""
DTD_REFUSED = "refused: the XML declares a DTD (entities); e-invoices have none"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("data", "syntax"), [(BOMB, "CII"), (XXE, "UBL")], ids=["bomb", "xxe"])
def test_entities_are_refused_quickly(data, syntax):
    started = time.monotonic()
    invoice = _read(data, "x.xml")
    assert time.monotonic() - started < 2
    assert invoice == EInvoice(syntax=syntax, source="xml", problems=(DTD_REFUSED,))


@pytest.mark.timeout(20)
def test_a_bomb_inside_a_pdf_is_refused():
    invoice = _read(_pdf_with([("factur-x.xml", BOMB)]), "x.pdf")
    assert invoice.problems == (DTD_REFUSED,) and invoice.source == "factur-x.xml"


def test_a_truncated_invoice_is_a_problem():
    data = _cii("EN16931_Einfach")
    invoice = _read(data[: len(data) // 2], "x.xml")
    assert invoice.syntax == "CII" and invoice.number is None
    assert len(invoice.problems) == 1
    assert invoice.problems[0].startswith("not well-formed XML: ")
    ubl = _read(_ubl("EN16931_Einfach")[:1500], "x.xml")
    assert ubl.syntax == "UBL" and ubl.problems[0].startswith("not well-formed XML: ")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_a_truncated_pdf_gives_no_exception(cut):
    data = _pdf("EN16931_Einfach")
    invoice = read_einvoice(data[: int(len(data) * cut)], "x.pdf")
    assert invoice is None or invoice.number == "471102" or invoice.problems


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n" + b"[" * 100_000 + b"\ntrailer << /Root 1 0 R >>\n%%EOF",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Names 1 0 R /Kids [1 0 R] >> endobj\n"
        b"trailer << /Root 1 0 R /Size 2 >>\n%%EOF",
        b"%PDF-1.4\n" + bytes(range(256)) * 200,
    ],
    ids=["deep-nesting", "self-reference", "noise"],
)
def test_a_hostile_pdf_gives_none_quickly(data):
    started = time.monotonic()
    assert read_einvoice(data, "x.pdf") is None
    assert time.monotonic() - started < 10


def test_what_is_no_invoice_gives_none():
    assert read_einvoice(b"<?xml version='1.0'?><note><to>Anna</to></note>", "a.xml") is None
    assert read_einvoice(b"<note><to>Anna", "a.xml") is None  # broken, and no invoice
    assert read_einvoice(b"Rechnung 4711\n", "text/plain") is None
    assert read_einvoice(b"", "") is None
    assert read_einvoice(_pdf_with([]), "application/pdf") is None
    delivery_note = b"<DespatchAdvice><ID>LS-0815</ID></DespatchAdvice>"
    assert read_einvoice(_pdf_with([("delivery-note.xml", delivery_note)]), "x.pdf") is None


def test_a_named_attachment_that_is_no_invoice_is_a_problem():
    invoice = _read(_pdf_with([("factur-x.xml", b"<DespatchAdvice/>")]), "x.pdf")
    assert invoice.problems == ("not read: root element 'DespatchAdvice'",)


def test_input_over_the_caps_is_not_parsed(monkeypatch):
    monkeypatch.setattr(einvoice_module, "MAX_XML_BYTES", 1000)
    monkeypatch.setattr(einvoice_module, "MAX_PDF_BYTES", 1000)
    data = _cii("EN16931_Einfach")
    invoice = _read(data, "x.xml")
    assert invoice.problems == (f"refused: the XML is {len(data)} bytes, over the 1000 bytes read",)
    assert read_einvoice(_pdf("EN16931_Einfach"), "x.pdf") is None
