"""An invoice's fields found in its text: date, number, gross total, currency, VAT ID, IBAN.

The text is pypdf's layout text: a line of the page is a line of text, and a value stands to
the right of its label or below it, in the label's column (a table's heading). Every field is
looked for by its labels (gmid/documents/labels.py), each weighted; the best-weighted hit wins,
the first one on a tie (the total: the largest of equal weight, so the gross beats its parts).
Each hit says why, naming the label and the line (1-based).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from gmid.documents import labels as L
from gmid.documents.textvalues import (
    DATE_RE,
    IBAN_RE,
    VAT_RE,
    Amount,
    Found,
    currencies,
    find_amounts,
    find_dates,
    find_ibans,
    find_vat_ids,
)

FIELDS = ("date", "number", "gross_total", "currency", "seller_vat_id", "iban", "seller_name")
MAX_LINES = 4000  # lines of text looked at; an invoice's fields are near its top and end
BELOW = 3  # lines under a label where its value may stand
TITLE_LINES = 25  # a line this near the top that names the document is its title line

_NUMBER_LABELS = L.compile_labels(L.NUMBER_LABELS)
_DATE_LABELS = L.compile_labels(L.DATE_LABELS)
_GROSS_LABELS = L.compile_labels(L.GROSS_LABELS)
# An invoice number: letters, digits and / . - _, with at least one digit.
_TOKEN = re.compile(r"[A-Za-z0-9][\w./\-]*\w|\d")
_HEADING_END = re.compile(r"\s{2,}|\s*$")  # a label that ends a table's heading cell
_GAP = re.compile(r"[\s:#.\-]*(?:(?:nr|no|n°|nº|number|nummer|num[ée]ro)\.?[\s:#]*)?")


@dataclass(frozen=True)
class Hit:
    """A field's value, where it stands (line index) and why it was taken."""

    value: object
    line: int
    why: str
    score: float = 0


def cells_below(lines: list[str], i: int, start: int, end: int) -> list[tuple[int, str]]:
    """The cell of the next non-empty line that stands in the columns start..end (under a
    heading), as a list of (line index, text)."""
    found = []
    for j in range(i + 1, min(len(lines), i + 1 + BELOW)):
        line = lines[j]
        if not line.strip():
            continue
        # Widen to the whole word-run under the heading, so a right- or left-aligned cell counts.
        lo, hi = start, end
        while lo > 0 and line[lo - 1 : lo].strip():
            lo -= 1
        while hi < len(line) and line[hi : hi + 1].strip():
            hi += 1
        if line[lo:hi].strip():
            found.append((j, " " * lo + line[lo:hi]))
        break  # only the row right under the heading
    return found


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


class Lines(list):
    """A text's lines, and the same lower-cased (column for column) for the labels."""

    def __init__(self, lines: list[str]):
        super().__init__(lines)
        self.low = [_lower(line) for line in lines]


def _lower(line: str) -> str:
    low = line.lower()
    if len(low) == len(line):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in line)  # "İ" -> "i̇"


def lines_with(lines: Lines, patterns, low: bool = False) -> list[int]:
    """The indexes of the lines where any of the patterns matches (on the lower-cased lines
    if low), in order.

    Each pattern runs once over the whole text, not once per line: most lines hold nothing.
    """
    text = "\n".join(lines.low if low else lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found = {bisect_right(starts, m.start()) - 1 for p in patterns for m in p.finditer(text)}
    return sorted(found)


def find_number(lines: Lines) -> Hit | None:
    """The invoice number: after or under its label, or after "Nr." on the title line."""
    best: Hit | None = None
    for i in lines_with(lines, [p for p, _ in _NUMBER_LABELS], low=True):
        for pattern, weight in _NUMBER_LABELS:
            if weight == 2 and i < TITLE_LINES:
                weight = 3  # "Handelsrechnung (380) 05.03.2018 Nr. 471102"
            if best is not None and best.score >= weight:
                continue
            hit = _number_after(lines, i, pattern, weight)
            if hit is not None:
                best = hit
    return best


def _number_after(lines: Lines, i: int, pattern: re.Pattern, weight: float) -> Hit | None:
    line = lines[i]
    for m in pattern.finditer(lines.low[i]):
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
        if not _HEADING_END.match(line[m.end() :]):
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
    first: Hit | None = None
    labelled = lines_with(lines, [p for p, _ in _DATE_LABELS], low=True)
    for i in sorted(set(labelled) | set(lines_with(lines, [DATE_RE]))):
        line = lines[i]
        dates = find_dates(line, dayfirst)
        for pattern, weight in _DATE_LABELS:
            if best is not None and best.score >= weight:
                break
            best = _date_after(lines, i, pattern, weight, dates, dayfirst) or best
        if first is None and dates:
            usable = [d for d in dates if _date_ok(line, d.start, d.end)]
            if usable and L.DOC_WORD.search(line) and i < TITLE_LINES:
                first = Hit(usable[0].value, i, f"on the title line {i + 1}", 2.5)
            elif usable:
                first = Hit(usable[0].value, i, f"the first date, line {i + 1}", 1)
    if best is None or (first is not None and first.score > best.score):
        return first
    return best


def _date_after(lines, i, pattern, weight, dates, dayfirst) -> Hit | None:
    line = lines[i]
    for m in pattern.finditer(lines.low[i]):
        if not _date_ok(line, m.start(), m.end()):
            continue
        label = line[m.start() : m.end()].strip()
        after = [d for d in dates if d.start >= m.end() and d.start - m.end() < 60]
        after = [d for d in after if not L.DATE_NOT.search(line[m.end() : d.start])]
        if after:
            return Hit(after[0].value, i, f'after "{label}" on line {i + 1}', weight)
        if not _HEADING_END.match(line[m.end() :]):
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
            for m in pattern.finditer(lines.low[i]):
                if L.GROSS_NOT_BEFORE.search(line[max(0, m.start() - 10) : m.start()]):
                    continue
                if amounts is None:
                    amounts = [a for a in find_amounts(line, decimal) if _amount_ok(a.value)]
                after = [a for a in amounts if a.start >= m.end()]
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


def _first(
    lines: Lines, pattern: re.Pattern, finder: Callable[[str], list[Found]], what: str
) -> Hit | None:
    """The seller's: a labelled one not on a line naming the buyer, else the first one."""
    fallback = None
    for i in lines_with(lines, [pattern]):
        line = lines[i]
        for found in finder(line):
            context = line[: found.start]
            prev = lines[i - 1] if i else ""
            if L.BUYER.search(context) or (not context.strip() and L.BUYER.search(prev)):
                continue
            labelled = finder is find_ibans or L.VAT_LABEL.search(context + " " + prev)
            if labelled:
                return Hit(found.value, i, f"{what} on line {i + 1}", 2)
            fallback = fallback or Hit(found.value, i, f"{what} without a label, line {i + 1}", 1)
    return fallback


def find_vat_id(lines: Lines) -> Hit | None:
    return _first(lines, VAT_RE, find_vat_ids, "VAT ID")


def find_iban(lines: Lines) -> Hit | None:
    return _first(lines, IBAN_RE, find_ibans, "IBAN (checksum right)")


_NAME_JOINERS = frozenset({"&", "+", "und", "and", "et", "en", "-"})


def _name_before(line: str, start: int) -> str | None:
    """The run of capitalised words ending at start (a legal form follows), or None."""
    words = line[:start].split(" ")[:-1]  # the last is the blank before the legal form
    taken: list[str] = []
    for word in reversed(words):
        if not word or word.endswith(":") or len(taken) == 6:
            break  # two blanks: another column; "Name:": a label
        if not (word[0].isupper() or word[0].isdigit() or word in _NAME_JOINERS):
            break
        taken.append(word)
    while taken and taken[-1] in _NAME_JOINERS:
        taken.pop()
    return " ".join(reversed(taken)) if taken else None


def find_seller_name(lines: Lines) -> Hit | None:
    """The seller: the company name (one with a legal form) the text repeats most, not one
    standing under a buyer's heading; on a tie the first."""
    counts: Counter[str] = Counter()
    scores: Counter[str] = Counter()
    first: dict[str, Hit] = {}
    for i in lines_with(lines, [L.LEGAL_FORM]):
        line = lines[i]
        # A heading above ("Käufer", "Bill to") says whose name follows; long lines are text.
        above = " ".join(t for t in lines[max(0, i - 3) : i] if len(t.strip()) <= 40)
        for m in L.LEGAL_FORM.finditer(line):
            words = _name_before(line, m.start())
            if words is None:
                continue
            before = line[: m.start()]
            if L.BUYER.search(before) or (
                L.BUYER.search(above) and not L.SELLER_CONTEXT.search(above)
            ):
                continue
            name = f"{words} {m.group()}"
            key = name.casefold()
            # Named beside "Verkäufer", "sold by", "Lieferant": counts twice.
            scores[key] += 2 if L.SELLER_CONTEXT.search(before + " " + above) else 1
            counts[key] += 1
            first.setdefault(key, Hit(name, i, f"company name on line {i + 1}", 1))
    if not counts:
        return None
    key = max(counts, key=lambda k: (scores[k], -first[k].line))
    hit = first[key]
    n = counts[key]
    return Hit(hit.value, hit.line, f"{hit.why}" + (f", named {n} times" if n > 1 else ""), 1)


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


__all__ = ["FIELDS", "Hit", "date", "read_fields", "value_of"]
