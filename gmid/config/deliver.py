"""The config's `deliver:` section: where documents go once filed, which ones, how hard to try.

Each entry has the common keys read here (name, type, when, concurrency, retry, retry_max,
timeout); the rest are its type's options, read by that type's module (gmid/deliver/TYPE.py,
`read_options`), which gets the entry without the common keys.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from gmid.config.reader import Reader, is_null, line_of
from gmid.deliver import registry

COMMON_KEYS = ("name", "type", "when", "concurrency", "retry", "retry_max", "timeout")
WHEN_KEYS = ("companies", "sources", "kinds")
MAX_CONCURRENCY = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class When:
    """Which documents go to a destination: each list given must match (any of its entries)."""

    companies: tuple[str, ...] = ()  # any case
    sources: tuple[str, ...] = ()  # smtp, imap, portal, or a portal's or mailbox's name
    kinds: tuple[str, ...] = ()  # invoice, credit_note, receipt, other (as the index reads it)

    def matches(self, fields: Mapping[str, Any]) -> bool:
        """Tell whether a document with these fields goes to the destination."""
        if self.companies and (fields.get("company") or "").casefold() not in {
            c.casefold() for c in self.companies
        }:
            return False
        source_name = fields.get("source_name") or ""
        if self.sources and not (
            fields.get("source") in self.sources
            or source_name in self.sources
            or source_name.split("/")[0] in self.sources  # an IMAP "mailbox/folder"
        ):
            return False
        return not self.kinds or fields.get("kind") in self.kinds


@dataclass(frozen=True)
class DestinationConfig:
    """One entry of `deliver:`."""

    name: str
    type: str
    options: Any  # the type's own options (its module's Options)
    when: When = When()
    concurrency: int = 2  # documents on their way at the same time
    retry: datetime.timedelta = datetime.timedelta(minutes=1)  # the first pause, then doubled
    retry_max: datetime.timedelta = datetime.timedelta(hours=6)
    timeout: datetime.timedelta = datetime.timedelta(minutes=2)  # one attempt
    file: str = ""
    line: int = 0


def read_deliver(r: Reader, node: Node | None) -> list[DestinationConfig]:
    """Read `deliver:`, a list of destinations."""
    found: list[DestinationConfig] = []
    names: dict[str, int | None] = {}
    for i, item in enumerate(r.sequence(node, "deliver")):
        option = f"deliver[{i}]"
        if not isinstance(item, MappingNode):
            r.problem(item, option, "expected a destination: name:, type: and its options")
            continue
        common = {
            key.value: value
            for key, value in item.value
            if isinstance(key, ScalarNode) and key.value in COMMON_KEYS
        }
        name = (r.text(common.get("name"), f"{option}.name") or "").strip()
        if not name:
            r.problem(common.get("name", item), f"{option}.name", "every destination needs a name")
        elif not _NAME.fullmatch(name):
            r.problem(
                common["name"], f"{option}.name", "use letters, digits, . _ - (up to 64), e.g. nas"
            )
        elif name in names:
            r.problem(common["name"], f"{option}.name", f"used twice (first at line {names[name]})")
        else:
            names[name] = line_of(common["name"])
        destination = _destination(r, item, common, option, name)
        if destination is not None:
            found.append(destination)
    return found


def _destination(
    r: Reader, item: MappingNode, common: dict[str, Node], option: str, name: str
) -> DestinationConfig | None:
    """Read one entry: its common keys here, the rest by its type's module."""
    type_ = (r.text(common.get("type"), f"{option}.type") or "").strip()
    if not type_:
        known = ", ".join(registry.TYPES)
        r.problem(common.get("type", item), f"{option}.type", f"needed: one of {known}")
        return None
    try:
        module = registry.module(type_)
    except registry.NotAvailable as e:
        r.problem(common["type"], f"{option}.type", str(e))
        return None
    # The type's module sees its own options only, as a mapping at the entry's place.
    rest = [(k, v) for k, v in item.value if not (isinstance(k, ScalarNode) and k.value in common)]
    own = MappingNode(item.tag, rest, item.start_mark, item.end_mark, item.flow_style)
    before = len(r.problems)
    options = module.read_options(r, own, option)
    concurrency = r.integer(common.get("concurrency"), f"{option}.concurrency", 2, low=1)
    if concurrency > MAX_CONCURRENCY:
        r.problem(common["concurrency"], f"{option}.concurrency", f"at most {MAX_CONCURRENCY}")
    default = DestinationConfig(name, type_, None)
    retry = r.duration(common.get("retry"), f"{option}.retry", default.retry)
    retry_max = r.duration(common.get("retry_max"), f"{option}.retry_max", default.retry_max)
    timeout = r.duration(common.get("timeout"), f"{option}.timeout", default.timeout)
    for key, value in (("retry", retry), ("timeout", timeout)):
        if value.total_seconds() < 1:
            r.problem(common.get(key), f"{option}.{key}", "must be at least 1s")
    if retry_max < retry:
        r.problem(common.get("retry_max"), f"{option}.retry_max", "must not be less than retry")
    when = _when(r, common.get("when"), f"{option}.when")
    if len(r.problems) > before or not name:
        return None
    return DestinationConfig(
        name=name,
        type=type_,
        options=options,
        when=when,
        concurrency=min(concurrency, MAX_CONCURRENCY),
        retry=retry,
        retry_max=retry_max,
        timeout=timeout,
        file=r.file,
        line=line_of(item) or 0,
    )


def _when(r: Reader, node: Node | None, option: str) -> When:
    """Read `when:`: companies, sources, kinds (lists; a single text is a list of one)."""
    m = r.mapping(node, option, WHEN_KEYS)
    lists = {}
    for key in WHEN_KEYS:
        value = m.get(key)
        if isinstance(value, ScalarNode) and not is_null(value):
            items = [r.text(value, f"{option}.{key}") or ""]
        else:
            items = r.text_list(value, f"{option}.{key}")
        cleaned = tuple(dict.fromkeys(text.strip() for text in items if text.strip()))
        if value is not None and not is_null(value) and not cleaned:
            r.problem(value, f"{option}.{key}", "is empty: leave it out to take every document")
        lists[key] = cleaned
    return When(**lists)
