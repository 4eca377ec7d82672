"""An e-invoice rendered for a reader: every corpus invoice (CII, UBL, Factur-X PDF) as HTML and as
text shows its number, seller, lines, VAT and totals; hostile values stay text.

The HTML is read back with real parsers (lxml's, and the standard library's tokenizer), as a
browser would see it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import lxml.html
import pytest

from gmid.documents import Address, EInvoice, Line, TaxBreakdown, read_einvoice
from gmid.documents.render import money, to_html, to_text

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(
    [
        *(CORPUS / "CII").glob("*.xml"),
        *(CORPUS / "UBL").glob("*.xml"),
        *(CORPUS / "FX").glob("*.pdf"),
    ]
)
# What a page may be made of: no script, no frame, no image, no link, no form.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "section", "footer", "h1", "h2",
    "div", "p", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "th", "td", "ul", "li",
}  # fmt: skip


def _invoice(path: Path) -> EInvoice:
    invoice = read_einvoice(path.read_bytes(), path.name)
    assert invoice is not None
    return invoice


class _Tags(HTMLParser):
    """Every start tag and attribute the standard library's tokenizer sees."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _page(text: str):
    """The page as a browser's parser builds it, with what the tokenizer saw of its tags."""
    tags = _Tags()
    tags.feed(text)
    tags.close()
    return lxml.html.document_fromstring(text), tags.tags


def _words(text: str) -> str:
    return " ".join(text.split())


def _assert_self_contained(text: str) -> None:
    doc, tags = _page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert {tag for tag, _ in tags} <= ALLOWED_TAGS
    attributes = {name for _, attrs in tags for name, _ in attrs}
    assert attributes <= {"lang", "charset", "http-equiv", "content", "name", "class"}
    assert "url(" not in "".join(doc.xpath("//style/text()"))
    csp = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
    assert csp and "default-src 'none'" in csp[0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_invoice_renders_what_a_reader_needs(path):
    invoice = _invoice(path)
    page = to_html(invoice)
    _assert_self_contained(page)
    doc, _ = _page(page)
    seen = _words(doc.text_content())
    text = to_text(invoice)
    wide = to_text(invoice, width=200)

    assert invoice.number in doc.findtext(".//h1")
    assert invoice.number in text.splitlines()[0]
    for shown in (seen, _words(text)):
        assert _words(invoice.seller_name) in shown
        assert money(invoice.gross_total, invoice.currency) in shown
        assert money(invoice.amount_due, invoice.currency) in shown
        assert invoice.issue_date.isoformat() in shown
    for line in invoice.lines:
        assert _words(line.name) in seen and _words(line.name) in _words(wide)
        assert all(word in text for word in line.name.split())
        assert money(line.net_amount) in seen and money(line.net_amount) in text
    for tax in invoice.taxes:
        assert money(tax.tax) in seen and money(tax.tax) in text
    if invoice.iban:
        compact = invoice.iban.replace(" ", "")
        assert compact in seen.replace(" ", "") and compact in text.replace(" ", "")
    for problem in invoice.problems:
        assert problem in seen and problem in _words(text)


@pytest.mark.parametrize("width", [40, 60, 80, 132])
def test_text_keeps_to_its_width(width):
    for path in FILES:
        for row in to_text(_invoice(path), width).splitlines():
            assert len(row) <= width, (path.name, row)


def test_a_known_invoice_reads_as_on_paper():
    text = to_text(_invoice(CORPUS / "FX" / "XRECHNUNG_Einfach.pdf"))
    assert text.startswith("Invoice 471102\n")
    assert "  Lieferant GmbH\n  Lieferantenstraße 20\n  80333 München\n" in text
    assert "VAT ID DE123456789" in text
    assert re.search(r"1 +Trennblätter A4 +20 pcs +9\.90 +19 % +198\.00\n", text)
    assert "Standard rate 7 %: 19.25 on 275.00" in text
    assert re.search(r"Gross total +529\.87 EUR", text)
    assert "IBAN            DE02 1203 0000 0000 2020 51" in text
    assert "SEPA credit transfer" in text
    assert "passed every check" in text


def test_a_credit_note_says_so_and_shows_its_exemption():
    invoice = _invoice(CORPUS / "UBL" / "ubl-tc434-creditnote1.xml")
    text = to_text(invoice)
    assert text.startswith("Credit note 018304 / 28865\n")
    assert "Exempt (Taxes are not applicable)" in text
    assert "2019-02-01 to 2019-02-28" in text
    doc, _ = _page(to_html(invoice))
    assert doc.findtext(".//title").startswith("Credit note 018304 / 28865")


def test_a_failing_invoice_lists_its_problems():
    path = (
        CORPUS / "UBL" / "not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml"
    )
    invoice = _invoice(path)
    doc, _ = _page(to_html(invoice))
    problems = doc.xpath("//section[contains(@class, 'check')]//li/text()")
    assert len(problems) == len(invoice.problems) >= 2
    assert any("add up to 2000" in p for p in problems)
    assert "passed every check" not in to_text(invoice)


# --- hostile values -------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(2)>'
CELL = "</td></tr></table><script>alert(3)</script>"
TERMINAL = "Evil\x1b]0;owned\x07\x1b[31m GmbH\x9b2J"
REVERSED = "DE02\u202e15 0202"


def _hostile() -> EInvoice:
    return EInvoice(
        syntax="CII",
        source="factur-x.xml",
        number=f"R-1{ATTRIBUTE}",
        seller_name=SCRIPT,
        seller_address=Address(lines=(CELL,), city="<b>x", postcode="&amp;", country='"DE'),
        buyer_name=TERMINAL,
        currency="EUR<style>",
        iban=REVERSED,
        payment_terms="</dd><iframe src=//evil.example>",
        lines=(Line(id="1<", name=CELL, net_amount=Decimal("10"), unit="<u>"),),
        taxes=(TaxBreakdown(category="<S>", rate=Decimal(19), exemption_reason=SCRIPT),),
        gross_total=Decimal("11.90"),
        problems=(f"sums: {SCRIPT}",),
    )


def test_hostile_values_are_text_in_html():
    page = to_html(_hostile())
    _assert_self_contained(page)
    doc, _ = _page(page)
    assert not doc.xpath("//script | //img | //iframe | //b | //u | //*[@onerror] | //*[@src]")
    seen = doc.text_content()
    for value in (SCRIPT, ATTRIBUTE, CELL, "<b>x", "&amp;", "</dd><iframe src=//evil.example>"):
        assert value in seen
    assert doc.findtext(".//title").startswith(f"Invoice R-1{ATTRIBUTE}")
    assert "\x1b" not in page and "\u202e" not in page and "\x9b" not in page


def test_hostile_values_cannot_drive_a_terminal():
    text = to_text(_hostile())
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)
    assert "Evil\ufffd]0;owned\ufffd\ufffd[31m GmbH\ufffd2J" in text
    assert SCRIPT in text  # text is text: nothing to escape


def test_a_hostile_invoice_read_from_xml_renders_escaped():
    xml = (CORPUS / "CII" / "EN16931_Einfach.cii.xml").read_bytes()
    xml = xml.replace(
        b"<ram:Name>Lieferant GmbH</ram:Name>",
        b"<ram:Name>&lt;script&gt;x()&lt;/script&gt;</ram:Name>",
    )
    invoice = read_einvoice(xml, "x.xml")
    assert invoice.seller_name == "<script>x()</script>"
    doc, _ = _page(to_html(invoice))
    assert not doc.xpath("//script")
    assert "<script>x()</script>" in doc.text_content()


def test_absurd_amounts_are_shown_as_written():
    invoice = replace(_hostile(), gross_total=Decimal("1E+999999"), amount_due=Decimal("1E-999999"))
    text = to_text(invoice) + to_html(invoice)
    # written out, 1E+999999 would be a million digits
    assert "1E+999999 EUR" in text and len(text) < 20_000
