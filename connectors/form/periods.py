"""Periods (`documents.periods`): list pages that show one year, or one month, at a time.

`periods: {years: 3}` (or `{months: 12}`) lists the last N years (months), newest first, by
filling `{year}` and `{month}` in the list pages and in the `before:` steps. The current
period is the one of today's date in UTC (the connector knows no time zone). Each loop is
bounded by the description: at most 10 years or 36 months.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.form.values import Checker

UNITS = {"years": 10, "months": 36}  # the longest period loop of each unit
PLACEHOLDERS = ("{year}", "{month}")


@dataclass(frozen=True)
class PeriodSpec:
    """How many periods to list, and of which length."""

    unit: str  # "years" | "months"
    count: int


@dataclass(frozen=True)
class Period:
    """One year (month 0) or one month; `fill` puts it into a text."""

    year: int
    month: int = 0

    def fill(self, text: str) -> str:
        """Replace `{year}` (four digits) and `{month}` (two digits, 01-12) in a text; any
        other brace stays as written."""
        text = text.replace("{year}", f"{self.year:04d}")
        return text.replace("{month}", f"{self.month:02d}") if self.month else text

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}" if self.month else f"{self.year:04d}"


def read_periods(c: Checker, value: Any) -> PeriodSpec | None:
    """Read `documents.periods`: exactly one of `years` (1-10) or `months` (1-36)."""
    m = c.mapping(value, "documents.periods", tuple(UNITS))
    if value is not None and isinstance(value, Mapping) and len(m) != 1:
        c.problem("documents.periods", "give one of `years:` (1-10) or `months:` (1-36)")
        return None
    for unit, limit in UNITS.items():
        if unit in m:
            return PeriodSpec(unit, c.integer(m[unit], f"documents.periods.{unit}", 1, 1, limit))
    return None


def uses(text: str, spec: PeriodSpec | None = None) -> bool:
    """Tell whether a text has a period placeholder (one the spec's unit fills, if given)."""
    if spec is not None and spec.unit == "years":
        return "{year}" in text
    return any(p in text for p in PLACEHOLDERS)


def check_placeholders(c: Checker, spec: PeriodSpec | None, texts: Mapping[str, str]) -> None:
    """Every placeholder needs `periods`, `{month}` needs months, and `periods` needs a
    placeholder somewhere (`texts`: option path -> text, the pages and the `before:` steps)."""
    for path, text in texts.items():
        if spec is None and uses(text):
            c.problem(path, "{year} and {month} need documents.periods, e.g. {years: 3}")
        elif spec is not None and spec.unit == "years" and "{month}" in text:
            c.problem(path, "{month} needs documents.periods.months; with years, use {year}")
    if spec is not None and not any(uses(text, spec) for text in texts.values()):
        c.problem(
            "documents.periods",
            "no {year} (or {month}) in documents.pages or documents.before: each period "
            "would list the same page",
        )


def each(spec: PeriodSpec | None, today: datetime.date | None = None) -> Iterator[Period | None]:
    """The periods to list, newest first: this year (month) and the ones before it; a single
    None when the description has no periods."""
    if spec is None:
        yield None
        return
    today = today or datetime.datetime.now(datetime.UTC).date()
    for back in range(spec.count):
        if spec.unit == "years":
            yield Period(today.year - back)
        else:
            months = today.year * 12 + today.month - 1 - back
            yield Period(months // 12, months % 12 + 1)


def fill(text: str, period: Period | None) -> str:
    """A text with the period filled in (as it is without periods)."""
    return period.fill(text) if period is not None else text
