"""Typed reading of composed YAML nodes, collecting every problem with its file and line.

A config section is read by a small function that takes a `Reader` and a node and returns a
frozen dataclass; the reader records a `Problem` for each wrong value and hands back a default,
so that one pass over the file finds every mistake at once.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gmid import yamlsyntax
from gmid.control.paths import PathProblems, expand
from gmid.errors import Problem, did_you_mean, quoted

T = TypeVar("T")

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"

_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"\s*(\d+)\s*([a-z])", re.IGNORECASE)
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_EMAIL = re.compile(r"[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")


def parse_duration(text: str | int) -> datetime.timedelta:
    """Parse a duration such as "7d", "90m", "1h30m", "45s" or "2w"."""
    hint = "use a number with a unit (w, d, h, m, s), e.g. 7d, 1h30m or 45s"
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {quoted(text)}: {hint}")
    seconds, pos, seen = 0, 0, set()
    for match in _DURATION_PART.finditer(text):
        unit = match.group(2).lower()
        if match.start() != pos or unit not in _DURATION_UNITS or unit in seen:
            break
        seen.add(unit)
        seconds += int(match.group(1)) * _DURATION_UNITS[unit]
        pos = match.end()
    if not seen or text[pos:].strip():
        raise ValueError(f"invalid duration {quoted(text)}: {hint}")
    return datetime.timedelta(seconds=seconds)


def parse_size(text: str | int) -> int:
    """Parse a size in bytes: a plain number, or "25MB" (10^6), "25MiB" (2^20), "512KB", "1GB"."""
    hint = "use a number of bytes or a unit: KB, MB, GB (powers of 1000) or KiB, MiB, GiB"
    if isinstance(text, bool):
        raise ValueError(f"invalid size {quoted(text)}: {hint}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text}: a size cannot be negative")
        return text
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid size {quoted(text)}: {hint}")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


def is_email(text: str) -> bool:
    """Tell whether `text` looks like a plain "user@domain" address."""
    return _EMAIL.fullmatch(text) is not None


def timezone_error(name: str) -> str | None:
    """Return why `name` is not a usable IANA time zone, or None if it is."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, zoneinfo.available_timezones(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else " (use a name like Europe/Berlin)"
        return f"unknown time zone {quoted(name)}{hint}"
    return None


def line_of(node: Node | None) -> int | None:
    """Return the 1-based line a node starts on."""
    return None if node is None else node.start_mark.line + 1


def is_null(node: Node | None) -> bool:
    """Tell whether an option is absent or written without a value (`key:` or `key: null`)."""
    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL)


@dataclass(frozen=True)
class SecretUse:
    """Where a config file names a secret: its kind, and for a `{file: ...}` the file's path."""

    file: str
    line: int | None
    option: str
    kind: str  # as SecretRef.kind: "plain", "file", "command", "env" or "credential"
    path: Path | None = None


class Reader:
    """Reads typed values out of one YAML file, recording problems instead of stopping."""

    def __init__(
        self,
        path: Path,
        problems: list[Problem],
        warnings: list[str],
        secrets: list[SecretUse] | None = None,
    ):
        self.source = path
        self.file = str(path)
        self.base = path.parent
        self.problems = problems
        self.warnings = warnings
        # Every secret option read (see gmid/config/secretref.py), for the file permission checks.
        self.secrets: list[SecretUse] = [] if secrets is None else secrets

    def for_file(self, path: Path) -> Reader:
        """Return a reader for another file that reports into the same lists."""
        return Reader(path, self.problems, self.warnings, self.secrets)

    def note_secret(self, node: Node | None, option: str, kind: str, path: Path | None) -> None:
        """Record that this file names a secret (never the secret itself)."""
        self.secrets.append(SecretUse(self.file, line_of(node), option, kind, path))

    def problem(self, node: Node | None, option: str, message: str) -> None:
        """Record a problem at a node's line."""
        self.problems.append(Problem(self.file, line_of(node), option, message))

    def warn(self, node: Node | None, option: str, message: str) -> None:
        """Record a non-fatal warning at a node's line."""
        self.warnings.append(str(Problem(self.file, line_of(node), option, message)))

    def load(self) -> Node | None:
        """Read and compose this reader's file; a problem and None if it cannot be read."""
        try:
            text = self.source.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.problems.append(Problem(self.file, None, "", "file not found"))
            return None
        except UnicodeDecodeError as e:
            self.problems.append(Problem(self.file, None, "", f"not UTF-8 text ({e.reason})"))
            return None
        except OSError as e:
            self.problems.append(Problem(self.file, None, "", f"cannot read: {e.strerror}"))
            return None
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            found = yamlsyntax.describe(e, text)
            self.problems.append(Problem(self.file, found.line, "", found.message, found.excerpt))
        return None

    def mapping(
        self,
        node: Node | None,
        option: str,
        keys: Iterable[str],
        refused: Mapping[str, str] | None = None,
    ) -> dict[str, Node]:
        """Return a mapping's values by key; unknown and repeated keys are problems.

        `refused` maps options that exist but are not allowed here to the reason why.
        """
        refused = refused or {}
        if is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            self.problem(node, option, f"expected a mapping of options, got {_kind(node)}")
            return {}
        merged = self._merge(node, option)
        if merged is None:
            return {}
        keys = set(keys)
        found: dict[str, Node] = {}
        lines: dict[str, int | None] = {}
        for index, (key_node, value) in enumerate(node.value):
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            sub = f"{option}.{key}" if option else str(key)
            if key is None:
                self.problem(key_node, option, "expected an option name")
            elif key not in keys and key in refused:
                self.problem(key_node, sub, refused[key])
            elif key not in keys:
                self.problem(key_node, sub, "unknown option" + did_you_mean(key, keys))
            elif key in lines and index >= merged:
                self.problem(key_node, sub, f"set twice (first at line {lines[key]})")
            else:
                # Merged-in values come first, so written ones override them as in YAML.
                found[key] = value
                if index >= merged:
                    lines[key] = line_of(key_node)
        return found

    def _merge(self, node: MappingNode, option: str) -> int | None:
        """Apply `<<: *anchor` merge keys; return how many leading entries came from them."""
        if hasattr(node, "gmid_merged"):  # an alias read a second time
            return node.gmid_merged
        written = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        try:
            yaml.constructor.SafeConstructor().flatten_mapping(node)
        except yaml.MarkedYAMLError as e:
            self.problem(node, option, f"cannot merge: {e.problem}")
            return None
        node.gmid_merged = len(node.value) - written
        return node.gmid_merged

    def sequence(self, node: Node | None, option: str) -> list[Node]:
        """Return a list's items (none if absent); anything but a list is a problem."""
        if is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.problem(node, option, f"expected a list, got {_kind(node)}")
            return []
        return list(node.value)

    def text(self, node: Node | None, option: str, default: T = None) -> str | T:
        """Return a scalar as the text written in the file."""
        if is_null(node):
            return default
        if not isinstance(node, ScalarNode):
            self.problem(node, option, f"expected a text value, got {_kind(node)}")
            return default
        # The text as written, so that `name: 1und1` or `10:30` are not turned into numbers.
        return node.value

    def boolean(self, node: Node | None, option: str, default: bool) -> bool:
        """Return a true/false value."""
        if is_null(node):
            return default
        if not isinstance(node, ScalarNode) or node.tag != _BOOL:
            self.problem(node, option, f"expected true or false, got {_kind(node)}")
            return default
        return bool(_construct(node))

    def integer(self, node: Node | None, option: str, default: int, low: int | None = None) -> int:
        """Return a whole number, at least `low` if given."""
        if is_null(node):
            return default
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            self.problem(node, option, f"expected a whole number, got {_kind(node)}")
            return default
        value = int(_construct(node))
        if low is not None and value < low:
            self.problem(node, option, f"must be at least {low}, got {value}")
            return default
        return value

    def convert(self, node: Node | None, option: str, parse: Callable[[Any], T], default: T) -> T:
        """Return `parse(value)`; its ValueError becomes a problem."""
        if is_null(node):
            return default
        if not isinstance(node, ScalarNode):
            self.problem(node, option, f"expected a single value, got {_kind(node)}")
            return default
        raw = _construct(node) if node.tag == _INT else node.value
        try:
            return parse(raw)
        except ValueError as e:
            self.problem(node, option, str(e))
            return default

    def size(self, node: Node | None, option: str, default: int) -> int:
        """Return a size in bytes ("25MB", "512KiB", 1000)."""
        return self.convert(node, option, parse_size, default)

    def duration(
        self, node: Node | None, option: str, default: datetime.timedelta
    ) -> datetime.timedelta:
        """Return a duration ("7d", "1h30m")."""
        return self.convert(node, option, parse_duration, default)

    def text_list(self, node: Node | None, option: str, default: tuple[str, ...] = ()) -> list[str]:
        """Return a list of text values (the default if absent)."""
        if is_null(node):
            return list(default)
        values = []
        for i, item in enumerate(self.sequence(node, option)):
            if is_null(item):
                self.problem(item, f"{option}[{i}]", "empty entry")
            elif (value := self.text(item, f"{option}[{i}]")) is not None:
                values.append(value)
        return values

    def addresses(self, node: Node | None, option: str, domains: bool = False) -> list[str]:
        """Return a list of e-mail addresses, lower-cased; with `domains` also "@domain"."""
        found: list[str] = []
        for i, item in enumerate(self.sequence(node, option)):
            text = self.text(item, f"{option}[{i}]")
            if text is None:
                self.problem(item, f"{option}[{i}]", "empty entry")
                continue
            address = text.strip().lower()
            if not (is_email(address) or (domains and is_email(f"x{address}"))):
                shape = "user@domain or @domain" if domains else "user@domain"
                self.problem(
                    item, f"{option}[{i}]", f"{quoted(text)} is not an e-mail address ({shape})"
                )
            elif address not in found:
                found.append(address)
        return found

    def host_port(
        self, node: Node | None, option: str, default: tuple[str, int]
    ) -> tuple[str, int]:
        """Return HOST:PORT as a pair; IPv6 addresses are written in brackets, [::1]:2525."""
        text = self.text(node, option)
        if text is None:
            return default
        match = re.fullmatch(r"\s*(?:\[([^\]]*)\]|([^:\[\]\s]*)):(\d+)\s*", text)
        if match is None:
            hint = "; write IPv6 addresses in brackets: [::1]:2525" if text.count(":") > 1 else ""
            self.problem(
                node, option, f"expected HOST:PORT, e.g. 127.0.0.1:2525, got {quoted(text)}{hint}"
            )
            return default
        bracketed, plain, port = match.group(1), match.group(2), int(match.group(3))
        host = plain if bracketed is None else bracketed
        problems = []
        if port > 65535:
            problems.append(f"port {port} is out of range (0-65535; 0 picks a free port)")
        try:
            if ipaddress.ip_address(host).version != 6 and bracketed is not None:
                problems.append(f"only IPv6 addresses go in brackets, got [{host}]")
        except ValueError:
            if bracketed is not None or not _HOSTNAME.fullmatch(host):
                problems.append(f"{quoted(host)} is not an IP address or host name")
        for message in problems:
            self.problem(node, option, message)
        return default if problems else (host, port)

    def timezone(self, node: Node | None, option: str) -> str | None:
        """Return an IANA time zone name such as "Europe/Berlin"."""
        name = self.text(node, option)
        if name is not None and (error := timezone_error(name.strip())) is not None:
            self.problem(node, option, error)
            return None
        return None if name is None else name.strip()

    def expand(self, node: Node | None, option: str, text: str) -> str | None:
        """Expand `~` and `$VAR`/`${VAR}`; an unset variable is a problem naming it."""
        try:
            return expand(text)
        except PathProblems as e:
            for message in e.problems:
                self.problem(node, option, message)
            return None

    def path(self, node: Node | None, option: str, default: T = None) -> Path | T:
        """Return an absolute path: `~` and variables expanded, relative to this file's folder."""
        text = self.text(node, option)
        if text is None:
            return default
        if not text.strip():
            self.problem(node, option, "expected a path, got an empty value")
            return default
        expanded = self.expand(node, option, text)
        if expanded is None:
            return default
        return Path(os.path.abspath(self.base / expanded))


def _construct(node: ScalarNode) -> Any:
    """Turn a scalar node into its Python value using YAML's safe rules."""
    return yaml.constructor.SafeConstructor().construct_object(node)


def _kind(node: Node | None) -> str:
    """Describe what a node holds, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode):
        kinds = {_NULL: "nothing", _BOOL: "true/false", _INT: "a number"}
        kind = kinds.get(node.tag, "a number" if node.tag.endswith(":float") else "text")
        return f"{kind} {quoted(node.value)}" if node.tag != _NULL else kind
    return "nothing"
