"""The plain YAML values of a form description, read and checked, and the two compound ones.

A Checker reads dicts, lists and scalars as the YAML loader gives them: texts, lists of texts,
field pairs, choices, numbers, URLs, CSS selectors, regular expressions and date formats, and
the two shapes every section of a description uses, a Probe (how a page is recognised) and a
Value (where a record's value is read). It records each problem with its option path instead
of stopping at the first. connectors/form/spec.py reads the sections with it, and
connectors/form/widgets.py the `captcha_widget:` one.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import soupsieve

from gmid.errors import did_you_mean, quoted

EPOCH_FORMATS = ("epoch", "epoch_ms")  # dates as numbers: seconds, milliseconds


@dataclass(frozen=True)
class Probe:
    """How a page is recognised: a CSS selector that matches, a regex found in its URL, or both."""

    path: str  # the option, for messages: "login.success"
    selector: str | None = None
    url: str | None = None

    def describe(self) -> str:
        """Say what was looked for, as the user wrote it."""
        parts = [f"selector {quoted(self.selector)}"] if self.selector else []
        parts += [f"url {quoted(self.url)}"] if self.url else []
        return " and ".join(parts)


@dataclass(frozen=True)
class Value:
    """Where one value of a record is read, and how it is cleaned up."""

    path: str
    selector: str | None = None  # relative to the row; None: the row itself
    attribute: str | None = None  # read this attribute instead of the text
    regex: str | None = None  # keep its first group
    formats: tuple[str, ...] = ()  # dates
    decimal: str = "."  # amounts
    expr: str | None = None  # JSON lists: a JMESPath expression into the record
    cents: bool = False  # amounts: the number is in cents


class Checker:
    """Reads plain YAML values (dicts, lists, scalars), recording problems by option path."""

    def __init__(self, planned: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.problems: list[tuple[str, str]] = []
        # per option path, values meant for later: {"login.type": {"json": "planned, ..."}}
        self._planned = planned or {}

    def problem(self, path: str, message: str) -> None:
        """Record a problem."""
        self.problems.append((path, message))

    def mapping(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
        """Return a mapping's known keys (none if absent); unknown keys are problems."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping of options, got {_kind(value)}")
            return {}
        found = {}
        for key, item in value.items():
            if key in keys:
                found[key] = item
            else:
                self.problem(_join(path, str(key)), "unknown option" + did_you_mean(str(key), keys))
        return found

    def text(self, value: Any, path: str) -> str | None:
        """Return a text value; numbers are taken as written, true/false must be quoted."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            hint = " (quote it)" if isinstance(value, bool) else ""
            self.problem(path, f"expected a text value, got {_kind(value)}{hint}")
            return None
        if isinstance(value, str) and not value.strip():
            self.problem(path, "expected a text value, got an empty one")
            return None
        return str(value)

    def text_list(self, value: Any, path: str) -> list[str]:
        """Return a list of texts; a single text counts as a list of one."""
        items = value if isinstance(value, list) else [] if value is None else [value]
        many = isinstance(value, list)
        texts = [self.text(v, f"{path}[{i}]" if many else path) for i, v in enumerate(items)]
        return [t for t in texts if t is not None]

    def pairs(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        """Return a mapping of form field names to texts."""
        if value is not None and not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping of field names to values, got {_kind(value)}")
            return ()
        found = ((str(k), self.text(v, _join(path, str(k)))) for k, v in (value or {}).items())
        return tuple((k, v) for k, v in found if v is not None)

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str | None:
        """Return one of `choices`."""
        text = self.text(value, path)
        if text is not None and text not in choices:
            planned = self._planned.get(path, {}).get(text)
            self.problem(
                path, planned or f"unknown value {quoted(text)}" + did_you_mean(text, choices)
            )
            return None
        return text

    def integer(self, value: Any, path: str, default: int, low: int, high: int) -> int:
        """Return a whole number between `low` and `high`."""
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(path, f"expected a whole number from {low} to {high}, got {quoted(value)}")
            return default
        return value

    def url(self, value: Any, path: str) -> str | None:
        """Return an absolute http(s) URL."""
        text = self.text(value, path)
        parts = urlsplit(text) if text is not None else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            self.problem(path, f"expected an absolute URL (https://...), got {quoted(text)}")
            return None
        return text

    def selector(self, value: Any, path: str) -> str | None:
        """Return a CSS selector that soupsieve can compile."""
        text = self.text(value, path)
        if text is None:
            return None
        try:
            soupsieve.compile(text)
        except soupsieve.SelectorSyntaxError as e:
            self.problem(path, f"invalid CSS selector {quoted(text)}: {str(e).splitlines()[0]}")
            return None
        return text

    def regex(self, value: Any, path: str, group: bool = False) -> str | None:
        """Return a regular expression that compiles (with a group if `group`)."""
        text = self.text(value, path)
        if text is None:
            return None
        try:
            compiled = re.compile(text)
        except re.error as e:
            self.problem(path, f"invalid regular expression {quoted(text)}: {e}")
            return None
        if group and compiled.groups == 0:
            example = r"'Nr\. (\d+)'"
            self.problem(path, f"needs a group ( ) around the part to keep, e.g. {example}")
            return None
        return text

    def date_format(self, value: Any, path: str) -> str | None:
        """Return a strptime format with a year in it, or `epoch` / `epoch_ms` (seconds or
        milliseconds since 1970, as JSON APIs give them)."""
        text = self.text(value, path)
        if text is None or text in EPOCH_FORMATS:
            return text
        try:
            sample = datetime.date(2024, 12, 31)
            datetime.datetime.strptime(sample.strftime(text), text)
        except ValueError as e:
            self.problem(path, f"invalid date format {quoted(text)}: {e}")
            return None
        if not re.search(r"%[Yy]", text):
            self.problem(path, f"date format {quoted(text)} has no year (%Y or %y)")
            return None
        return text

    def probe(self, value: Any, path: str, selector_only: bool = False) -> Probe | None:
        """Return a Probe from {selector, url} (a bare text is a selector)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = {"selector": value}
        m = self.mapping(value, path, ("selector",) if selector_only else ("selector", "url"))
        probe = Probe(
            path,
            self.selector(m.get("selector"), f"{path}.selector"),
            self.regex(m.get("url"), f"{path}.url"),
        )
        if not m and isinstance(value, Mapping):
            self.problem(path, "give `selector:`" + ("" if selector_only else " or `url:`"))
        return probe if probe.selector or probe.url else None

    def value(
        self,
        value: Any,
        path: str,
        extra: tuple[str, ...] = (),
        default_attribute: str | None = None,
    ) -> Value | None:
        """Return a Value from {selector, attribute, regex, ...} (a bare text is a selector)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = {"selector": value}
        m = self.mapping(value, path, ("selector", "attribute", "regex", *extra))
        raw = m.get("formats")
        if isinstance(raw, list):
            formats = [self.date_format(f, f"{path}.formats[{i}]") for i, f in enumerate(raw)]
        else:  # one format written without a list
            formats = [self.date_format(raw, f"{path}.formats")]
        decimal = self.choice(m.get("decimal"), f"{path}.decimal", (".", ","))
        return Value(
            path,
            selector=self.selector(m.get("selector"), f"{path}.selector"),
            attribute=self.text(m.get("attribute"), f"{path}.attribute") or default_attribute,
            regex=self.regex(m.get("regex"), f"{path}.regex", group=True),
            formats=tuple(f for f in formats if f is not None),
            decimal=decimal or ".",
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    """Describe a plain YAML value for "expected X, got Y" messages."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"true/false {quoted(value)}"
    if isinstance(value, int | float):
        return f"a number {quoted(value)}"
    return "nothing" if value is None else f"text {quoted(value)}"
