"""Who is paid: the seller's VAT ID, IBAN and name, as an invoice's text gives them.

The buyer's are in the text too ("Ihre USt-IdNr.", "Votre n° de TVA", a direct debit from the
buyer's account, the name under "Rechnung an"): a value on a line naming the buyer, or under a
buyer's heading, is passed over.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from gmid.documents import labels as L
from gmid.documents.textlines import MAX_MATCHES, Hit, Lines, lines_with, matches
from gmid.documents.textvalues import IBAN_RE, VAT_RE, Found, find_ibans, find_vat_ids


def _first(
    lines: Lines, pattern: re.Pattern, finder: Callable[[str], list[Found]], what: str
) -> Hit | None:
    """The seller's: a labelled one not on a line naming the buyer, else the first one."""
    fallback = None
    for i in lines_with(lines, [pattern]):
        line = lines[i]
        for found in finder(line)[:MAX_MATCHES]:
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
        for m in matches(L.LEGAL_FORM, line):
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
