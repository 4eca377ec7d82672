"""The config's `schedule:` section, globally and per portal, read into timerules.Rules."""

from __future__ import annotations

import datetime
from typing import Any

from yaml.nodes import MappingNode, Node

from gmid.config.reader import Reader, is_null
from gmid.schedule.timerules import Rules, parse_slot, parse_span, rules_problems

SCHEDULE_KEYS = ("every", "at", "windows", "quiet", "jitter", "retry")


def read_schedule(r: Reader, node: Node | None, option: str) -> dict[str, Any]:
    """Read a `schedule:` mapping into the options it sets (the others are inherited)."""
    m = r.mapping(node, option, SCHEDULE_KEYS)
    found: dict[str, Any] = {}
    for key in ("every", "jitter", "retry"):
        if key in m and not is_null(m[key]):
            value = r.duration(m[key], f"{option}.{key}", datetime.timedelta(0))
            if value <= datetime.timedelta(0) and key != "jitter":
                r.problem(m[key], f"{option}.{key}", "must be longer than 0s")
                continue
            found[key] = value
    if "every" in m and "at" in m:
        r.problem(m["at"], f"{option}.at", "give either `every` or `at`, not both")
    for key, parse in (("at", parse_slot), ("windows", parse_span), ("quiet", parse_span)):
        if key not in m:
            continue
        items = []
        for i, item in enumerate(r.sequence(m[key], f"{option}.{key}")):
            # The text as written: YAML 1.1 would read an unquoted 10:00 as the number 600.
            text = r.text(item, f"{option}.{key}[{i}]")
            if text is None:
                continue
            try:
                items.append(parse(text))
            except ValueError as e:
                r.problem(item, f"{option}.{key}[{i}]", str(e))
        found[key] = tuple(items)
    return found


def merge(base: Rules, settings: dict[str, Any]) -> Rules:
    """Rules with the options that `settings` sets; `at` and `every` replace each other."""
    changes = dict(settings)
    if changes.get("at"):
        changes.setdefault("every", None)
    elif "every" in changes:
        changes.setdefault("at", ())
    return Rules(**{**_fields(base), **changes})


def _fields(rules: Rules) -> dict[str, Any]:
    return {key: getattr(rules, key) for key in SCHEDULE_KEYS}


def check_rules(r: Reader, node: Node | None, option: str, rules: Rules) -> None:
    """Report what is wrong with the rules as a whole (a window empty every week...)."""
    for message in rules_problems(rules):
        target = node if isinstance(node, MappingNode) else None
        r.problem(target, option, message)
