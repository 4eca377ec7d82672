"""A company's own rules for reading its PDF invoices, as invoice2data's templates have them.

Under a company in the config, `extract:` maps a field to a label (the value is what follows
it on its line, or stands under it) or to a regular expression with one group (the value):

    extract:
      number: {label: "Beleg"}
      date: {regex: "Datum: (\\d\\d\\.\\d\\d\\.\\d{4})", date_format: "%d.%m.%Y"}
      gross_total: {label: "Zu zahlen", decimal: ","}

A rule's value replaces the general rules' one; a rule that finds nothing is a problem of the
reading (the general value, if any, stays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gmid.documents.textfields import number_token
from gmid.documents.textlines import Hit, cells_below
from gmid.documents.textvalues import (
    Amount,
    currency_code,
    find_amounts,
    find_dates,
    iban_valid,
    parse_number,
)

RULE_FIELDS = ("date", "number", "gross_total", "currency", "seller_vat_id", "iban", "seller_name")
DECIMALS = (",", ".")


@dataclass(frozen=True)
class FieldRule:
    """How one company writes one field: after a label, or in a regex's one group."""

    field: str
    label: str | None = None
    regex: str | None = None
    date_format: str | None = None  # strptime's, e.g. "%d.%m.%Y"
    decimal: str | None = None  # "," or ".", for the total

    def describe(self) -> str:
        return f'label "{self.label}"' if self.label is not None else f'regex "{self.regex}"'


def rule_problem(rule: FieldRule) -> str | None:
    """What is wrong with a rule (for the config's error), or None."""
    if rule.field not in RULE_FIELDS:
        return f"unknown field {rule.field!r} (known: {', '.join(RULE_FIELDS)})"
    if (rule.label is None) == (rule.regex is None):
        return "give either label: or regex:"
    if rule.label is not None and not rule.label.strip():
        return "label: is empty"
    if rule.regex is not None:
        try:
            groups = re.compile(rule.regex).groups
        except re.error as e:
            return f"regex {rule.regex!r} is not a regular expression: {e}"
        if groups != 1:
            return f"regex {rule.regex!r} has {groups} groups; it needs exactly one (the value)"
    return _option_problem(rule)


def _option_problem(rule: FieldRule) -> str | None:
    if rule.date_format is not None:
        if rule.field != "date":
            return "date_format: is for the date only"
        if "%" not in rule.date_format:
            return f"date_format {rule.date_format!r} has no %-code (e.g. %d.%m.%Y)"
    if rule.decimal is not None:
        if rule.field != "gross_total":
            return "decimal: is for the gross_total only"
        if rule.decimal not in DECIMALS:
            return f'decimal must be "," or ".", not {rule.decimal!r}'
    return None


def _parse(rule: FieldRule, raw: str) -> object | None:
    raw = raw.strip()
    if rule.field == "date":
        if rule.date_format:
            try:
                return datetime.strptime(raw, rule.date_format).date()
            except ValueError:
                return None
        found = find_dates(raw)
        return found[0].value if found else None
    if rule.field == "gross_total":
        found = find_amounts(raw, rule.decimal)
        if found:
            return found[0].value
        value = parse_number(raw, rule.decimal)
        return Amount(value, None, True) if value is not None else None
    if rule.field == "number":
        return number_token(raw) if raw else None
    if rule.field == "currency":
        code = currency_code(raw) or currency_code(raw.upper())
        return code or (raw.upper() if re.fullmatch(r"[A-Za-z]{3}", raw) else None)
    if rule.field in ("seller_vat_id", "iban"):
        compact = re.sub(r"[\s.\-]", "", raw).upper()
        if rule.field == "iban" and not iban_valid(compact):
            return None
        return compact or None
    return raw or None  # seller_name


def _by_label(rule: FieldRule, lines: list[str]) -> Hit | None:
    label = rule.label.casefold()
    for i, line in enumerate(lines):
        at = line.casefold().find(label)
        if at < 0:
            continue
        end = at + len(label)
        rest = line[end:].lstrip(" \t:#")
        pieces = [(i, rest)] if rest.strip() else []
        pieces += cells_below(lines, i, at, end)
        for j, piece in pieces:
            if rule.field not in ("number", "seller_name", "currency"):
                piece = piece.strip()
            else:
                piece = re.split(r"\s{2,}", piece.strip())[0]
            value = _parse(rule, piece)
            if value is not None:
                return Hit(value, j, f"company rule: {rule.describe()} on line {i + 1}", 10)
    return None


def _by_regex(rule: FieldRule, text: str) -> Hit | None:
    for m in re.finditer(rule.regex, text, re.MULTILINE):
        value = _parse(rule, m.group(1) or "")
        if value is not None:
            line = text.count("\n", 0, m.start())
            return Hit(value, line, f"company rule: {rule.describe()} on line {line + 1}", 10)
    return None


def apply_rules(text: str, rules, problems: list[str]) -> dict[str, Hit]:
    """The hits of a company's rules; a rule that finds nothing adds a problem."""
    hits: dict[str, Hit] = {}
    lines = text.splitlines() if rules else []
    for rule in rules:
        hit = _by_label(rule, lines) if rule.label is not None else _by_regex(rule, text)
        if hit is None:
            problems.append(f"company rule for {rule.field} ({rule.describe()}) found nothing")
        else:
            hits[rule.field] = hit
    return hits
