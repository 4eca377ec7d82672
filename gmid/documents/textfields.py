"""An invoice's date, number, gross total and currency found in its text.

The text is pypdf's layout text (gmid/documents/textlines.py: a value stands beside its label
or under it); the seller's VAT ID, IBAN and name come from gmid/documents/seller.py. Every
field is looked for by its labels (gmid/documents/labels.py), each weighted; the best-weighted
hit wins, the first one on a tie (the total: the largest of equal weight, so the gross beats
its parts). Each hit says why, naming the label and the line (1-based).
"""

from __future__ import annotations

import re
from collections import Counter

from gmid.documents import labels as L
from gmid.documents.seller import find_iban, find_seller_name, find_vat_id
from gmid.documents.textlines import (
    HEADING_END,
    MAX_MATCHES,
    Hit,
    Lines,
    cells_below,
    lines_with,
    matches,
)
from gmid.documents.textvalues import DATE_RE, Amount, currencies, find_amounts, find_dates

FIELDS = ("date", "number", "gross_total", "currency", "seller_vat_id", "iban", "seller_name")
MAX_LINES = 4000  # lines of text looked at; an invoice's fields are near its top and end
TITLE_LINES = 25  # a line among the first 25 with text that names the document is its title

_NUMBER_LABELS = L.compile_labels(L.NUMBER_LABELS)
_DATE_LABELS = L.compile_labels(L.DATE_LABELS)
_GROSS_LABELS = L.compile_labels(L.GROSS_LABELS)
# An invoice number: letters, digits and / . - _, with at least one digit.
_TOKEN = re.compile(r"[A-Za-z0-9][\w./\-]*\w|\d")
_WORD_BEFORE = re.compile(r"(\w+)[.:]? ?$")  # the word just before, in the same cell
_GAP = re.compile(r"[\s:#.\-]*(?:(?:nr|no|n°|nº|number|nummer|num[ée]ro)\.?[\s:#]*)?")


def number_token(rest: str) -> str | None:
    m = _GAP.match(rest)
    tail = rest[m.end() :] if m else rest
    t = _TOKEN.match(tail)
    if not t:
        return None
    token = t.group().rstrip(".-/")
    if token.isdigit() and len(token) >= 3:
        # "Rechnungsnummer 4711 0815 1234": groups of digits, as some print long numbers
        groups = re.match(r"(?:[ \u00a0]\d{3,})+(?![\w.,])", tail[t.end() :])
        if groups and len(token + groups.group()) <= 30:
            token += groups.group()
    if not any(c.isdigit() for c in token) or len(token) > 40:
        return None
    if find_dates(token) and find_dates(token)[0].text == token:
        return None
    if re.fullmatch(r"\d{1,2}", token):  # "Seite 1", "(380)" is caught by the gap rule
        return None
    return token


def find_number(lines: Lines) -> Hit | None:
    """The invoice number: after or under its label, or after "Nr." on the title line."""
    best: Hit | None = None
    for i in lines_with(lines, [p for p, _ in _NUMBER_LABELS], low=True):
        for pattern, weight in _NUMBER_LABELS:
            if weight == 2 and lines.rank[i] < TITLE_LINES:
                weight = 3  # "Handelsrechnung (380) 05.03.2018 Nr. 471102"
            if best is not None and best.score >= weight:
                continue
            hit = _number_after(lines, i, pattern, weight)
            if hit is not None:
                best = hit
    return best


def _number_after(lines: Lines, i: int, pattern: re.Pattern, weight: float) -> Hit | None:
    line = lines[i]
    for m in matches(pattern, lines.low[i]):
        if pattern is _NUMBER_LABELS[-2][0] and not L.DOC_WORD.search(line[: m.start()]):
            continue  # a bare "Nr." counts on a line that names the document
        before = line[max(0, m.start() - 12) : m.start()]
        if L.NUMBER_NOT.search(m.group()) or L.NUMBER_NOT_BEFORE.search(before):
            continue
        if weight < 3 and L.NUMBER_NOT.search(before):
            continue
        label = line[m.start() : m.end()].strip()
        rest = line[m.end() : m.end() + 200]
        token = number_token(rest)
        if token and not L.NUMBER_NOT.search(rest[: rest.find(token)]):
            return Hit(token, i, f'after "{label}" on line {i + 1}', weight)
        if not HEADING_END.match(line[m.end() :]):
            continue  # not a heading cell: the label runs on into other words
        for j, cell in cells_below(lines, i, m.start(), m.end()):
            token = number_token(cell.strip())
            if token:
                return Hit(token, j, f'under "{label}" (line {i + 1}), line {j + 1}', weight)
    return None


def _date_ok(line: str, start: int, end: int) -> bool:
    return not L.DATE_NOT.search(line[max(0, start - 25) : end])


def find_date(lines: Lines, dayfirst: bool) -> Hit | None:
    """The issue date: after or under its label, else on the title line, else the first one."""
    best: Hit | None = None
    title: Hit | None = None
    first: Hit | None = None
    labelled = lines_with(lines, [p for p, _ in _DATE_LABELS], low=True)
    for i in sorted(set(labelled) | set(lines_with(lines, [DATE_RE]))):
        line = lines[i]
        dates = find_dates(line, dayfirst)[:MAX_MATCHES]
        for pattern, weight in _DATE_LABELS:
            if best is not None and best.score >= weight:
                break
            best = _date_after(lines, i, pattern, weight, dates, dayfirst) or best
        usable = [d for d in dates if _date_ok(line, d.start, d.end)]
        if usable and title is None and lines.rank[i] < TITLE_LINES and L.DOC_WORD.search(line):
            title = Hit(usable[0].value, i, f"on the title line {i + 1}", 2.5)
        if usable and first is None:
            first = Hit(usable[0].value, i, f"the first date, line {i + 1}", 1)
    return max((h for h in (best, title, first) if h), key=lambda h: h.score, default=None)


def _date_after(lines, i, pattern, weight, dates, dayfirst) -> Hit | None:
    line = lines[i]
    for m in matches(pattern, lines.low[i]):
        if not _date_ok(line, m.start(), m.end()):
            continue
        label = line[m.start() : m.end()].strip()
        # Near the label, or far across blanks only (a layout's right-hand column).
        after = [
            d
            for d in dates
            if d.start >= m.end()
            and (d.start - m.end() < 60 or not line[m.end() : d.start].strip(" :.-\t"))
            and not L.DATE_NOT.search(line[m.end() : d.start])
        ]
        if after:
            return Hit(after[0].value, i, f'after "{label}" on line {i + 1}', weight)
        if not HEADING_END.match(line[m.end() :]):
            continue
        for j, cell in cells_below(lines, i, m.start(), m.end()):
            if found := find_dates(cell, dayfirst):
                return Hit(
                    found[0].value, j, f'under "{label}" (line {i + 1}), line {j + 1}', weight
                )
    return None


def _amount_ok(amount: Amount) -> bool:
    return amount.cents or amount.currency is not None


def find_gross(lines: Lines, decimal: str | None = None) -> Hit | None:
    """The gross total: the amount after or under the best total label (brutto over netto)."""
    best: Hit | None = None
    for i in lines_with(lines, [p for p, _ in _GROSS_LABELS], low=True):
        line = lines[i]
        amounts = None
        for pattern, weight in _GROSS_LABELS:
            for m in matches(pattern, lines.low[i]):
                if L.GROSS_NOT_BEFORE.search(line[max(0, m.start() - 10) : m.start()]):
                    continue
                word = _WORD_BEFORE.search(line[max(0, m.start() - 40) : m.start()])
                if word and L.GROSS_NOT.fullmatch(word.group(1)):
                    continue  # "VAT total", "USt. Gesamt": the total of the tax
                if amounts is None:
                    amounts = [a for a in find_amounts(line, decimal) if _amount_ok(a.value)]
                after = [a for a in amounts if a.start >= m.end()][:MAX_MATCHES]
                after = [a for a in after if not L.GROSS_NOT.search(line[m.end() : a.start])]
                label = line[m.start() : m.end()].strip()
                if after:
                    top = max(after, key=lambda a: abs(a.value.value))
                    hit = Hit(top.value, i, f'after "{label}" on line {i + 1}', weight)
                elif not line[m.end() :].strip() or L.GROSS_NOT.search(line[m.end() :]) is None:
                    hit = _gross_below(lines, i, m, label, weight, decimal)
                else:
                    hit = None
                if hit and (
                    best is None
                    or hit.score > best.score
                    or (hit.score == best.score and abs(hit.value.value) > abs(best.value.value))
                ):
                    best = hit
    return best


def _gross_below(lines, i, m, label, weight, decimal) -> Hit | None:
    for j, cell in cells_below(lines, i, m.start(), m.end()):
        found = [a for a in find_amounts(cell, decimal) if _amount_ok(a.value)]
        if found:
            # Under a heading may be a table's first row rather than the total: weigh it less.
            why = f'under "{label}" (line {i + 1}), line {j + 1}'
            return Hit(found[0].value, j, why, weight - 0.5)
        break  # a cell under the heading that is no amount: the column holds something else
    return None


def find_currency(text: str, gross: Hit | None) -> Hit | None:
    """The gross total's currency, else the one the text names most often."""
    if gross is not None and gross.value.currency:
        return Hit(
            gross.value.currency, gross.line, f"beside the gross total, line {gross.line + 1}"
        )
    counts = Counter(currencies(text))
    if not counts:
        return None
    code, n = counts.most_common(1)[0]
    if len(counts) == 1:
        return Hit(code, -1, "the only currency the text names")
    return Hit(code, -1, f"the currency the text names most ({n} of {counts.total()} times)")


def dayfirst_for(text: str, language: str) -> bool:
    """Whether 03/04/2025 is the 3rd of April: not in English from the US."""
    return language != "en" or "$" not in text


def read_fields(text: str) -> dict[str, Hit]:
    """The fields found in text by the general rules, each with its hit."""
    lines = Lines(text.splitlines()[:MAX_LINES])
    language = L.guess_language(text)
    hits: dict[str, Hit | None] = {
        "date": find_date(lines, dayfirst_for(text, language)),
        "number": find_number(lines),
        "gross_total": find_gross(lines),
        "seller_vat_id": find_vat_id(lines),
        "iban": find_iban(lines),
        "seller_name": find_seller_name(lines),
    }
    hits["currency"] = find_currency(text, hits["gross_total"])
    return {name: hit for name, hit in hits.items() if hit is not None}


def value_of(name: str, hit: Hit) -> object:
    """The plain value of a hit (a Decimal for the total)."""
    return hit.value.value if isinstance(hit.value, Amount) else hit.value
