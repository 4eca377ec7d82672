"""The values invoices write, as gmid reads them from a line of text: each format by itself."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from gmid.documents.textvalues import (
    find_amounts,
    find_dates,
    find_ibans,
    find_vat_ids,
    iban_valid,
)


@pytest.mark.parametrize(
    ("line", "dayfirst", "expected"),
    [
        ("Rechnungsdatum: 3. April 2025", True, date(2025, 4, 3)),
        ("Date : 12 janvier 2024", True, date(2024, 1, 12)),
        ("le 1er mars 2024", True, date(2024, 3, 1)),
        ("Date: Nov 3, 2026", False, date(2026, 11, 3)),
        ("Invoice Date: August 3 , 2014", False, date(2014, 8, 3)),
        ("Datum 03.04.2025", True, date(2025, 4, 3)),
        ("Datum 03.04.2025", False, date(2025, 4, 3)),  # dots: always day first
        ("issued 2025-04-03", False, date(2025, 4, 3)),
        ("Date : 03/04/2025", True, date(2025, 4, 3)),  # de / fr
        ("Date: 03/04/2025", False, date(2025, 3, 4)),  # en (US)
        ("Date: 03/20/2023", True, date(2023, 3, 20)),  # no 20th month: month first
        ("Zahlungsziel 21.05.14", True, date(2014, 5, 21)),
        ("19 april 2014", True, date(2014, 4, 19)),
    ],
)
def test_dates_in_every_written_form(line, dayfirst, expected):
    assert [f.value for f in find_dates(line, dayfirst)] == [expected]


def test_no_date_in_periods_or_numbers():
    assert find_dates("Zeitraum 01.05.14-31.05.14") == []
    assert find_dates("Nr. 01.234.567.8-2018-1") == []
    assert find_dates("31.02.2025") == []  # no such day


@pytest.mark.parametrize(
    ("line", "value", "currency"),
    [
        ("Gesamtbetrag 1.014,00 €", Decimal("1014.00"), "EUR"),
        ("Total TTC : 1 234,56 €", Decimal("1234.56"), "EUR"),
        ("Total TTC : 1\u202f234,56 €", Decimal("1234.56"), "EUR"),  # narrow no-break space
        ("Total TTC : 1\u00a0234,56 €", Decimal("1234.56"), "EUR"),
        ("Amount due $1,234.56", Decimal("1234.56"), "USD"),
        ("Total EUR 42.00", Decimal("42.00"), "EUR"),
        ("Summe 42,00 EUR", Decimal("42.00"), "EUR"),
        ("Total £12.50", Decimal("12.50"), "GBP"),
        ("Gutschrift -529,87", Decimal("-529.87"), None),
        ("Grand Total Rs 1939", Decimal("1939"), "INR"),
    ],
)
def test_amounts_in_every_written_form(line, value, currency):
    (found,) = find_amounts(line)
    assert (found.value.value, found.value.currency) == (value, currency)


def test_dates_and_percentages_are_no_amounts():
    found = find_amounts("TVA 20% : 9,34 € am 03.04.2025")
    assert [f.value.value for f in found] == [Decimal("9.34")]


def test_a_quantity_beside_a_price_stays_two_numbers():
    found = find_amounts("Total 1 278.61 40.39 319.00")
    assert [f.value.value for f in found] == [1, Decimal("278.61"), Decimal("40.39"), 319]


def test_iban_only_with_a_right_checksum():
    assert [f.value for f in find_ibans("IBAN : FR76 10107 00245 00617052317 39 - BIC")] == [
        "FR7610107002450061705231739"
    ]
    assert [f.value for f in find_ibans("IBAN DE30507500940000048567 SWIFT HELADEF1GEL")] == [
        "DE30507500940000048567"
    ]
    assert iban_valid("DE02120300000000202051")
    assert not iban_valid("DE12123456781234567890")  # a made-up one
    assert find_ibans("IBAN: DE12 1234 5678 9012 3456 78") == []


@pytest.mark.parametrize(
    ("line", "vat_id"),
    [
        ("UStId DE 232 446 240", "DE232446240"),
        ("USt-IdNr.: DE123456789", "DE123456789"),
        ("N° de TVA intra communautaire: FR 604 219 388 61", "FR60421938861"),
        ("BTW NL810433941B01", "NL810433941B01"),
        ("UID ATU12345678", "ATU12345678"),
    ],
)
def test_vat_ids(line, vat_id):
    assert [f.value for f in find_vat_ids(line)] == [vat_id]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Invoice Date: 3rd April 2025", date(2025, 4, 3)),
        ("Date: 03-Apr-2025", date(2025, 4, 3)),
        ("Datum: 3.4.2025", date(2025, 4, 3)),
    ],
)
def test_more_date_forms(line, expected):
    assert [f.value for f in find_dates(line)] == [expected]


def test_swiss_amounts():
    assert [f.value.value for f in find_amounts("Total CHF 1'234.50")] == [Decimal("1234.50")]
