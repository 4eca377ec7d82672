"""A company's own `extract:` rules: read from the config, errors named, applied to a PDF."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gmid.config.load import load_config
from gmid.documents.pdftext import read_pdf, read_text
from gmid.documents.rules import FieldRule
from gmid.errors import ConfigError
from tests.documents.pdfmake import text_pdf

# A supplier whose invoice the general rules read wrong: its number hides behind "Beleg"
# (a word they do not trust alone), its date is only in a sentence, and "Summe" is the net.
ODD = """\
Stadtwerke Musterstadt
Beleg   SW-2026-000123
Wir berechnen Ihnen für den Zeitraum bis 30.09.2026, erstellt am 02.10.2026:
Summe                 100,00
Steuer 19 %            19,00
Ihr Beitrag           119,00
"""


def _config(tmp_path: Path, extract: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"archive:\n  dir: {tmp_path / 'archive'}\n"
        "companies:\n"
        "  - name: Stadtwerke\n"
        '    senders: ["@stadtwerke.example"]\n'
        f"    extract:\n{extract}",
        encoding="utf-8",
    )
    return path


def test_rules_from_the_config_read_what_the_general_rules_miss(tmp_path):
    general = read_text(ODD)
    assert general.gross_total != Decimal("119.00")
    config = load_config(
        _config(
            tmp_path,
            '      number: {label: "Beleg"}\n'
            '      date: {regex: "erstellt am (\\\\d\\\\d\\\\.\\\\d\\\\d\\\\.\\\\d{4})", '
            'date_format: "%d.%m.%Y"}\n'
            '      gross_total: {label: "Ihr Beitrag", decimal: ","}\n',
        )
    )
    rules = config.companies[0].extract
    assert [r.field for r in rules] == ["number", "date", "gross_total"]
    r = read_pdf(text_pdf(ODD.splitlines()), rules)
    assert (r.number, r.date, r.gross_total) == (
        "SW-2026-000123",
        date(2026, 10, 2),
        Decimal("119.00"),
    )
    assert r.why["gross_total"] == 'company rule: label "Ihr Beitrag" on line 6'
    assert r.why["date"].startswith('company rule: regex "erstellt am')


def test_a_rule_that_finds_nothing_is_a_problem_and_the_general_value_stays():
    r = read_text(ODD, [FieldRule("number", label="Rechnungsnummer")])
    assert 'company rule for number (label "Rechnungsnummer") found nothing' in r.problems


def test_an_iban_rule_checks_the_checksum():
    text = "Rechnung Nr. 2026-1\nKonto: DE02 1203 0000 0000 2020 52\nGesamtbetrag 5,00 EUR\n"
    r = read_text(text, [FieldRule("iban", label="Konto:")])
    assert r.iban is None
    assert any("found nothing" in p for p in r.problems)


@pytest.mark.parametrize(
    ("extract", "line", "option", "message"),
    [
        (
            '      number: {regex: "Beleg ([A-Z]+"}\n',
            7,
            "companies[0].extract.number.regex",
            "regex 'Beleg ([A-Z]+' is not a regular expression: missing ), unterminated subpattern",
        ),
        (
            '      number: {regex: "Beleg [A-Z]+"}\n',
            7,
            "companies[0].extract.number.regex",
            "regex 'Beleg [A-Z]+' has 0 groups; it needs exactly one (the value)",
        ),
        (
            '      totl: {label: "Summe"}\n',
            7,
            "companies[0].extract.totl",
            "unknown option; did you mean 'total'?",
        ),
        (
            '      gross_total: {label: "Summe", decimal: ";"}\n',
            7,
            "companies[0].extract.gross_total.decimal",
            'decimal must be "," or ".", not \';\'',
        ),
        (
            '      date: {label: "Datum", regex: "(x)"}\n',
            7,
            "companies[0].extract.date",
            "give either label: or regex:",
        ),
        (
            '      number: {label: "Nr", date_format: "%d"}\n',
            7,
            "companies[0].extract.number.date_format",
            "date_format: is for the date only",
        ),
    ],
)
def test_a_bad_rule_is_named_with_file_line_and_option(tmp_path, extract, line, option, message):
    path = _config(tmp_path, extract)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.option) == (str(path), line, option)
    assert problem.message.startswith(message.split(";")[0])


def test_a_config_without_rules_or_ocr_does_not_load_the_pdf_reader():
    """The daemon's idle size: pypdf comes with the first PDF read, not with the config."""
    code = (
        "import sys; from gmid.config.load import load_config; "
        "load_config(sys.argv[1]); print('pypdf' in sys.modules)"
    )
    example = Path(__file__).parents[2] / "config.example.yaml"
    done = subprocess.run(
        [sys.executable, "-c", code, str(example)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr
