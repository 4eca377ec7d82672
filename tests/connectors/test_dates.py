"""Dates as portals write them, read by a description's `formats`."""

from __future__ import annotations

import datetime

import pytest

from connectors.form.extract import parse_date


@pytest.mark.parametrize(
    ("text", "formats", "expected"),
    [
        ("12 janvier 2024", ("%d %B %Y",), (2024, 1, 12)),
        ("1 févr. 2025", ("%d %b %Y",), (2025, 2, 1)),
        ("15 août 2026", ("%d %B %Y",), (2026, 8, 15)),
        ("3. März 2025", ("%d. %B %Y",), (2025, 3, 3)),
        ("24. Dez. 2024", ("%d. %b %Y",), (2024, 12, 24)),
        ("Nov 3, 2026", ("%b %d, %Y",), (2026, 11, 3)),
        ("3 April 2025", ("%d %B %Y",), (2025, 4, 3)),
        ("03.04.2025", ("%Y-%m-%d", "%d.%m.%Y"), (2025, 4, 3)),
        ("décembre 2023", ("%B %Y",), (2023, 12, 1)),
    ],
)
def test_month_names_in_french_german_and_english(text, formats, expected):
    assert parse_date(text, formats) == datetime.date(*expected)


def test_a_word_that_is_no_month_is_no_date():
    assert parse_date("12 quelquechose 2024", ("%d %B %Y",)) is None
    assert parse_date("mai", ("%B %Y",)) is None


def test_dates_given_as_numbers_since_1970():
    assert parse_date("1733184000", ("epoch",)) == datetime.date(2024, 12, 3)
    assert parse_date("1733184000000", ("epoch_ms",)) == datetime.date(2024, 12, 3)
    assert parse_date("soon", ("epoch",)) is None
    assert parse_date("1e400", ("epoch",)) is None


def test_epoch_is_a_format_a_description_may_name():
    from connectors.form.values import Checker

    checker = Checker({})
    assert checker.date_format("epoch_ms", "documents.fields.date.formats[0]") == "epoch_ms"
    assert checker.date_format("%d.%m", "documents.fields.date.formats[1]") is None
