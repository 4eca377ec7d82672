"""Invoice fields from a PDF's text by the general rules: labels in German, French, English."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from gmid.documents.pdftext import read_text

GERMAN = """\
Muster GmbH · Hauptstr. 1 · 80333 München
                                                      Rechnung
Kunden AG
                                     Kundennummer:    K-4711
                                     Rechnungsnummer: R-2025-0042
                                     Rechnungsdatum:  3. April 2025
                                     Lieferdatum:     28.03.2025
Pos  Beschreibung                         Menge    Einzelpreis       Betrag
1    Beratung                                 8       106,51 €      852,10 €
                                         Gesamtbetrag netto           852,10 €
                                         Umsatzsteuer 19 %            161,90 €
                                         Gesamtbetrag brutto        1.014,00 €
Zahlbar bis 17.04.2025 auf IBAN DE02 1203 0000 0000 2020 51
Muster GmbH · USt-IdNr. DE 123 456 789
"""

FRENCH = """\
SARL Exemple — 12 rue de la Paix, 75002 Paris
Votre n° de TVA : FR 40 123 456 824
                                          Facture n° F2024-0107
                                          Date : 12 janvier 2024
Désignation                   Quantité     P.U. HT       Montant HT
Abonnement                        1       1 028,80 €      1 028,80 €
                                    Total HT            1 028,80 €
                                    TVA 20 %              205,76 €
                                    Total TTC           1 234,56 €
Échéance : 11 février 2024
N° TVA intracommunautaire : FR 60 421 938 861
IBAN : FR76 1010 7002 4500 6170 5231 739
"""

ENGLISH = """\
Example Inc.                                           INVOICE
                                              Invoice no.: INV-2026-311
                                              Date: Nov 3, 2026
                                              Due date: Dec 3, 2026
Item                         Qty        Price          Amount
Hosting                        1     $1,000.00       $1,000.00
Subtotal                                             $1,000.00
Tax (8.875%)                                           $234.56
Total                                                $1,234.56
Amount due                                           $1,234.56
"""


def test_a_german_invoice():
    r = read_text(GERMAN)
    assert (r.number, r.date, r.gross_total, r.currency) == (
        "R-2025-0042",
        date(2025, 4, 3),
        Decimal("1014.00"),
        "EUR",
    )
    assert (r.seller_vat_id, r.iban) == ("DE123456789", "DE02120300000000202051")
    assert r.seller_name == "Muster GmbH"  # named twice; the buyer once
    assert r.why["number"] == 'after "Rechnungsnummer" on line 5'
    assert r.why["gross_total"] == 'after "Gesamtbetrag" on line 12'  # brutto over netto
    assert r.problems == ()


def test_a_french_invoice():
    r = read_text(FRENCH)
    assert (r.number, r.date, r.gross_total, r.currency) == (
        "F2024-0107",
        date(2024, 1, 12),
        Decimal("1234.56"),
        "EUR",
    )
    # "Votre n° de TVA" is the buyer's; the seller's stands further down.
    assert r.seller_vat_id == "FR60421938861"
    assert r.iban == "FR7610107002450061705231739"
    assert "Total TTC" in r.why["gross_total"] or "TTC" in r.why["gross_total"]


def test_an_english_invoice():
    r = read_text(ENGLISH)
    assert (r.number, r.date, r.gross_total, r.currency) == (
        "INV-2026-311",
        date(2026, 11, 3),
        Decimal("1234.56"),
        "USD",
    )
    assert r.why["date"] == 'after "Date" on line 3'  # not the due date


@pytest.mark.parametrize(
    ("line", "number"),
    [
        ("Rechnung Nr. 2025-17", "2025-17"),
        ("Rechnungsnummer: 4711", "4711"),
        ("Rechnungs-Nr.: RE/2025/0003", "RE/2025/0003"),
        ("Facture n° 2022089083", "2022089083"),
        ("N° de facture : FA-9912", "FA-9912"),
        ("Numéro de facture 000123", "000123"),
        ("Invoice no. 42183017", "42183017"),
        ("Invoice number: US-88-12", "US-88-12"),
        ("Invoice #  A1B2C3", "A1B2C3"),
        ("Factuurnummer: 993548900", "993548900"),
    ],
)
def test_number_labels(line, number):
    assert read_text(f"Lieferant GmbH\n{line}\nGesamtbetrag 10,00 EUR\n").number == number


def test_a_number_under_its_heading():
    text = (
        "Klant              Order              Factuur datum      Factuur         Vervaldatum\n"
        "SC0303006280999    SC000000444        8-9-2022           VF1005193039    22-9-2022\n"
        "Factuur totaal EUR 49,99\n"
    )
    r = read_text(text)
    assert (r.number, r.date, r.gross_total) == ("VF1005193039", date(2022, 9, 8), Decimal("49.99"))
    assert r.why["number"] == 'under "Factuur" (line 1), line 2'


def test_a_customer_number_is_no_invoice_number():
    text = "Rechnung\nKundennummer: 55512\nRechnungsnummer: 777\nSumme 5,00 EUR\n"
    assert read_text(text).number == "777"


@pytest.mark.parametrize(
    "label", ["Gesamtbetrag", "Rechnungsbetrag", "Total TTC", "Montant TTC", "Total", "Amount due"]
)
def test_gross_labels(label):
    text = f"Invoice no. 1\nNetto 100,00 €\nMwSt 19 % 19,00 €\n{label}   119,00 €\n"
    r = read_text(text)
    assert r.gross_total == Decimal("119.00")
    assert label.split()[-1] in r.why["gross_total"]


def test_several_totals_the_gross_one_wins():
    text = (
        "Rechnung Nr. 2025-5\n"
        "Summe netto       200,00 EUR\n"
        "Summe MwSt         38,00 EUR\n"
        "Summe            238,00 EUR\n"
        "Anzahlung        -50,00 EUR\n"
        "Zu zahlen        188,00 EUR\n"
    )
    assert read_text(text).gross_total == Decimal("238.00")


def test_no_text_is_a_scan():
    r = read_text("  \n \n")
    assert r.number is None and r.gross_total is None
    assert r.problems == (
        "no text: a scanned PDF (OCR is off; see docs/documents.md, 'Scanned PDFs', "
        "for what it needs)",
    )


def test_what_was_not_found_is_a_problem():
    r = read_text("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n")
    assert r.problems == ("no date found", "no number found", "no gross total found")


def test_a_total_beside_its_label_beats_a_column_headed_gross():
    text = (
        "INVOICE NUMBER   INV-7\n"
        "Description            Qty        Net          Gross\n"
        "Ticket                   1    €100.00        €119.00\n"
        "Workshop                 2    €200.00        €238.00\n"
        "Invoice total                   paid         €357.00\n"
        "Amount paid                                  €357.00\n"
    )
    r = read_text(text)
    assert (r.number, r.gross_total) == ("INV-7", Decimal("357.00"))
    assert r.why["gross_total"] == 'after "Invoice total" on line 5'


def test_a_number_printed_in_groups_of_digits():
    r = read_text("Telekom Deutschland GmbH\nRechnungsnummer   4711 0815 1234\nSumme 5,00 €\n")
    assert r.number == "4711 0815 1234"


def test_net_a_payer_is_the_gross():
    text = "Facture n° F-88\nTotal HT 100,00 €\nTVA 20 % 20,00 €\nNet à payer 120,00 €\n"
    assert read_text(text).gross_total == Decimal("120.00")


def test_the_name_under_a_buyer_heading_is_not_the_seller():
    text = (
        "Rechnung an\nKunden AG\nHauptstr. 5, 20095 Hamburg\n\n"
        "Rechnungsnummer 1234\nGesamtbetrag 10,00 €\n"
        "Beispiel GmbH · Amtsgericht Musterstadt HRB 1\n"
    )
    r = read_text(text)
    assert r.seller_name == "Beispiel GmbH"
    assert r.why["seller_name"] == "company name on line 7"


@pytest.mark.parametrize(
    "text",
    [
        "Total 1,00 " * 18_000,  # one endless line of labels and amounts
        "Rechnung " + "Nr. " * 50_000,
        "Total 1,00 Total 2,00 Total 3,00\n" * 6_000,  # thousands of lines, each a total
        "Muster GmbH Kunde AG\n" * 10_000,
        "a" * 200_000,
    ],
    ids=["one-line-of-totals", "one-line-of-nr", "lines-of-totals", "names", "one-word"],
)
def test_a_hostile_text_is_read_in_bounded_time(text):
    started = time.monotonic()
    read_text(text[:200_000])
    assert time.monotonic() - started < 10  # quadratic work would take minutes
