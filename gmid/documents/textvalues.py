"""Values as invoices write them: dates, amounts, currencies, IBANs and VAT IDs in text.

Pure functions over one line (or a short piece) of text; which value is which field is decided
in gmid/documents/textfields.py. German, French, English (and Dutch, for the month names) as
printed: "3. April 2025", "12 janvier 2024", "Nov 3, 2026", "03.04.2025", "2025-04-03",
"03/04/2025"; "1.014,00 €", "1 234,56 €", "$1,234.56", "EUR 42.00".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

_MONTHS = {
    1: "januar janvier january januari jan jän janv",
    2: "februar février fevrier february februari feb fév fev févr fevr",
    3: "märz maerz mars march maart mar mär mrz mrt",
    4: "april avril apr avr",
    5: "mai may mei",
    6: "juni juin june jun",
    7: "juli juillet july jul juil",
    8: "august août aout augustus aug",
    9: "september septembre sep sept",
    10: "oktober octobre october oct okt",
    11: "november novembre nov",
    12: "dezember décembre decembre december dec dez déc",
}
MONTH_NAMES = {name: n for n, names in _MONTHS.items() for name in names.split()}

_SPACE = "[ \u00a0\u202f\u2009]"
# A month name is any short word here, checked against MONTH_NAMES after the match: a regex
# alternation of sixty names, tried at every letter, would cost more than the rest together.
_WORD = r"[^\W\d_]{3,10}"
# Day month year ("3. April 2025", "12 janvier 2024", "1er mars 2024", "3rd April 2025",
# "03-Apr-2025").
_DMY_NAMED = (
    rf"(?P<d1>\d{{1,2}})(?:\.|er|st|nd|rd|th)?(?:{_SPACE}|-)*(?P<m1>{_WORD})\.?,?(?:{_SPACE}|-)*"
    rf"(?P<y1>\d{{4}})"
)
# Month day, year ("Nov 3, 2026", "August 3 , 2014", "Jan 1, 2022").
_MDY_NAMED = (
    rf"(?P<m2>{_WORD})\.?{_SPACE}*(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?{_SPACE}*,?{_SPACE}*"
    rf"(?P<y2>\d{{4}})"
)
_ISO = r"(?P<y3>\d{4})-(?P<m3>\d{1,2})-(?P<d3>\d{1,2})"
# 03.04.2025, 03/04/2025, 3-4-2025, 21.05.14
_NUMERIC = r"(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<y4>\d{4}|\d{2})"
DATE_RE = re.compile(
    rf"(?<![\w.,/-])(?:{_DMY_NAMED}|{_MDY_NAMED}|{_ISO}|{_NUMERIC})(?![\w]|[.,/-]\d)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Found:
    """A value found in a line, with where it stands (columns of the line)."""

    value: object
    start: int
    end: int
    text: str


def _make_date(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 2000
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    return found if 1990 <= found.year <= 2100 else None


def _date_of(m: re.Match[str], dayfirst: bool) -> date | None:
    g = m.groupdict()
    if g["d1"]:
        month = MONTH_NAMES.get(g["m1"].lower())
        return _make_date(int(g["y1"]), month, int(g["d1"])) if month else None
    if g["m2"]:
        month = MONTH_NAMES.get(g["m2"].lower())
        return _make_date(int(g["y2"]), month, int(g["d2"])) if month else None
    if g["y3"]:
        return _make_date(int(g["y3"]), int(g["m3"]), int(g["d3"]))
    a, b, year = int(g["a"]), int(g["b"]), int(g["y4"])
    if g["sep"] == "." or a > 12:
        dayfirst = True
    elif b > 12:
        dayfirst = False
    return _make_date(year, b, a) if dayfirst else _make_date(year, a, b)


def find_dates(line: str, dayfirst: bool = True) -> list[Found]:
    """Every date written in line, in order."""
    found = []
    for m in DATE_RE.finditer(line):
        value = _date_of(m, dayfirst)
        if value is not None:
            found.append(Found(value, m.start(), m.end(), m.group()))
    return found


def mask(line: str, spans: list[Found]) -> str:
    """The line with the given spans blanked out (so a date is not read as amounts)."""
    for f in spans:
        line = line[: f.start] + " " * (f.end - f.start) + line[f.end :]
    return line


CURRENCY_SIGNS = {
    "€": "EUR",
    "$": "USD",
    "US$": "USD",
    "£": "GBP",
    "₹": "INR",
    "Rs": "INR",
    "Rs.": "INR",
    "zł": "PLN",
}
CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "INR", "PLN", "SEK", "DKK", "NOK", "CZK", "JPY")
_CUR = "|".join(
    [re.escape(s) for s in sorted(CURRENCY_SIGNS, key=len, reverse=True)] + list(CURRENCY_CODES)
)
_CURRENCY_RE = re.compile(rf"(?<![A-Za-z])(?:{_CUR})(?![A-Za-z])")
# A number with an optional thousands grouping and decimals. Thousands grouped by a space only
# with a decimal comma ("1 234,56"): "1 278.61" in a table is a quantity and a price.
_NUM = (
    r"(?P<num>[-−–]?"
    r"(?:\d{1,3}(?:\.\d{3})+,\d{1,2}"  # 1.014,00
    r"|\d{1,3}(?:[ \u00a0\u202f\u2009]\d{3})+(?:,\d{1,2})?"  # 1 234,56
    r"|\d{1,3}(?:'\d{3})+(?:[.,]\d{1,2})?"  # 1'234.50 (Swiss)
    r"|\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?"  # 1,234.56
    r"|\d{1,3}(?:\.\d{3})+(?!\d)"  # 1.014 (no decimals, German grouping)
    r"|\d+(?:[.,]\d{1,2})?))"  # 42.00 / 42,00 / 1939
)
AMOUNT_RE = re.compile(
    rf"(?<![\w.,/:-])(?:(?P<pre>{_CUR}){_SPACE}*)?{_NUM}"
    rf"(?![\w/]|[.,]\d|{_SPACE}?%)(?:{_SPACE}*(?P<post>{_CUR}))?",
)


def currency_code(sign: str | None) -> str | None:
    """The ISO 4217 code of a sign or code as written ("€", "EUR", "Rs"), else None."""
    if not sign:
        return None
    return CURRENCY_SIGNS.get(sign, sign if sign in CURRENCY_CODES else None)


def parse_number(text: str, decimal: str | None = None) -> Decimal | None:
    """The number written in text ("1.014,00", "1 234,56", "1,234.56", "-12,5"), or None.

    decimal ("," or ".") says which mark is the decimal one; unless told, it is the last mark
    when one or two digits follow it.
    """
    text = text.strip().replace("−", "-").replace("–", "-")
    for space in " \u00a0\u202f\u2009'":
        text = text.replace(space, "")
    if decimal is None:
        last = max(text.rfind(","), text.rfind("."))
        decimal = text[last] if last >= 0 and 1 <= len(text) - last - 1 <= 2 else ""
    thousands = {",": ".", ".": ","}.get(decimal, ".,")
    for mark in thousands:
        text = text.replace(mark, "")
    if decimal:
        text = text.replace(decimal, ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class Amount:
    """An amount as found: its value, the currency written beside it, whether it has cents."""

    value: Decimal
    currency: str | None
    cents: bool


def find_amounts(line: str, decimal: str | None = None) -> list[Found]:
    """Every amount in line (dates and percentages are not amounts), in order."""
    line = mask(line, find_dates(line))
    found = []
    for m in AMOUNT_RE.finditer(line):
        number = m.group("num")
        value = parse_number(number, decimal)
        if value is None:
            continue
        cents = bool(re.search(r"[.,]\d{2}$", number))
        currency = currency_code(m.group("pre") or m.group("post"))
        found.append(Found(Amount(value, currency, cents), m.start(), m.end(), m.group().strip()))
    return found


def currencies(text: str) -> list[str]:
    """The currencies written in text, as ISO codes, in order of appearance."""
    return [c for m in _CURRENCY_RE.finditer(text) if (c := currency_code(m.group()))]


IBAN_RE = re.compile(r"\b([A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){3,8})\b")
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "IE": 22, "IT": 27, "LI": 21, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "SE": 24,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """True if iban (no spaces) has its country's length and a right ISO 7064 mod-97 check."""
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    if _IBAN_LENGTHS.get(iban[:2], len(iban)) != len(iban):
        return False
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def find_ibans(line: str) -> list[Found]:
    """Every IBAN in line whose check digits are right, without spaces."""
    found = []
    for m in IBAN_RE.finditer(line):
        raw = m.group(1)
        compact = raw.replace(" ", "")
        # A longer match may have swallowed the BIC or a word after the IBAN: try shorter.
        for size in range(len(compact), 14, -1):
            if iban_valid(compact[:size]):
                found.append(Found(compact[:size], m.start(), m.end(), raw))
                break
    return found


# EU VAT IDs (and the Swiss UID), as written: "DE 232 446 240", "FR60421938861", "ATU12345678",
# "FR 604 219 388 61": a space or dot may stand between any two characters after the country.
def _d(n: int, chars: str = r"\d") -> str:
    return rf"(?:[ .]?{chars}){{{n}}}"


_VAT_FORMS = (
    "DE" + _d(9),
    "ATU" + _d(8),
    "FR" + _d(2, "[0-9A-HJ-NP-Z]") + _d(9),
    "NL" + _d(9) + "[ .]?B" + _d(2),
    "BE" + _d(10),
    "(?:IT|LV|HR)" + _d(11),
    "(?:LU|DK|FI|HU|MT|SI)" + _d(8),
    "ES" + _d(9, "[0-9A-Z]"),
    "(?:PL|SK)" + _d(10),
    "PT" + _d(9),
    "SE" + _d(12),
    "CZ" + _d(8),
    "GB" + _d(9),
    "CHE-?" + _d(9),
)
VAT_RE = re.compile(r"(?<![A-Z0-9])(" + "|".join(_VAT_FORMS) + r")(?![A-Z0-9]|[ .]?\d)")


def find_vat_ids(line: str) -> list[Found]:
    """Every VAT ID in line, compact ("DE232446240")."""
    return [
        Found(re.sub(r"[ .\-]", "", m.group(1)), m.start(), m.end(), m.group(1))
        for m in VAT_RE.finditer(line)
    ]
