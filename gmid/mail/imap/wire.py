"""The IMAP wire format around aioimaplib: quoting, mailbox names and short responses, no I/O.

aioimaplib returns a response as a list. Protocol lines are ``bytes`` with the "* " of untagged
lines removed (every "* " in the line, in fact), except that a line arriving while aioimaplib
believes a FETCH is unfinished (its parenthesis count is thrown off by a ")" inside a quoted
string) keeps its "* ". A literal's data is a ``bytearray`` following the line that ends with
``{N}``, and the rest of that response line is the next ``bytes``. Parse functions raise
:class:`WireError` and nothing else: these here (SEARCH, SELECT, EXISTS, CAPABILITY, NAMESPACE,
LIST) and parse_fetch in gmid/mail/imap/fetch.py, which reads FETCH responses with their literals.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gmid.errors import GmidError

_SELECT_CODE = re.compile(rb"(?:\* )?OK \[(UIDVALIDITY|UIDNEXT) (\d{1,20})\]", re.I)
_EXISTS = re.compile(rb"(?:\* )?(\d{1,20}) EXISTS\s*", re.I)
_CAPS_CODE = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.I)
_CAPS_LINE = re.compile(rb"(?:\* )?CAPABILITY\b(.*)", re.I | re.S)
# one token of a response line: ( ) "quoted" {literal} or an atom (NIL, \Flag, a name)
_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\{(\d{1,10})\+?\}\s*$|([^\s()"]+))')


@dataclass(frozen=True)
class Listed:
    """One folder of a LIST response: its name (decoded), hierarchy separator and flags."""

    name: str
    separator: str | None
    flags: frozenset[str]  # upper-case: \NOSELECT, \HASCHILDREN ...

    @property
    def selectable(self) -> bool:
        return not self.flags & {"\\NOSELECT", "\\NONEXISTENT"}


class WireError(GmidError, ValueError):
    """Input that is not the IMAP the parser expects; the message quotes little of it."""


def utf7_encode(name: str) -> str:
    """A mailbox name in IMAP modified UTF-7 (RFC 3501 5.1.3)."""

    def encode(match: re.Match[str]) -> str:
        run = match.group()
        if run == "&":
            return "&-"
        raw = base64.b64encode(run.encode("utf-16-be", "surrogatepass")).decode("ascii")
        return "&" + raw.rstrip("=").replace("/", ",") + "-"

    return re.sub(r"&|[^\x20-\x7e]+", encode, name)


def utf7_decode(name: str) -> str:
    """The mailbox name a modified UTF-7 string stands for; WireError when it is malformed."""
    if re.search(r"[^\x20-\x7e]", name):
        raise WireError(f"mailbox name not in modified UTF-7: {name[:40]!r}")
    out: list[str] = []
    pos = 0
    while (start := name.find("&", pos)) >= 0:
        end = name.find("-", start + 1)
        if end < 0:
            raise WireError(f"unterminated &-sequence in {name[:40]!r}")
        out.append(name[pos:start])
        chunk, pos = name[start + 1 : end], end + 1
        if not chunk:
            out.append("&")
            continue
        if not re.fullmatch(r"[A-Za-z0-9+,]+", chunk) or len(chunk) % 4 == 1:
            raise WireError(f"bad modified base64 {chunk[:40]!r}")
        padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
        try:
            out.append(base64.b64decode(padded).decode("utf-16-be"))
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise WireError(f"bad UTF-16 in {chunk[:40]!r}") from exc
    out.append(name[pos:])
    return "".join(out)


def quote(text: str) -> str:
    """An IMAP quoted string; WireError for NUL, CR, LF or non-ASCII."""
    if not text.isascii() or re.search(r"[\x00\r\n]", text):
        raise WireError(f"cannot quote {text[:40]!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_arg(name: str) -> str:
    """A folder name as it goes on the wire."""
    return quote(utf7_encode(name))


def uid_set(uids: Iterable[int]) -> str:
    """A compact sequence set such as "1:5,7,9:10"; WireError when empty or out of range."""
    unique = set(uids)
    if not unique:
        raise WireError("empty UID set")
    if not all(isinstance(v, int) and 0 < v <= 0xFFFFFFFF for v in unique):
        raise WireError("UIDs must be integers from 1 to 4294967295")
    values = sorted(unique)
    ranges, start = [], values[0]
    for prev, value in zip(values, [*values[1:], 0], strict=True):
        if value != prev + 1:
            ranges.append(str(start) if start == prev else f"{start}:{prev}")
            start = value
    return ",".join(ranges)


def as_lines(lines: Any) -> list[Any]:
    """A response as a list of ``bytes`` lines and ``bytearray`` literals; WireError if not one."""
    if isinstance(lines, (bytes, bytearray, str)):
        lines = [bytes(lines) if isinstance(lines, bytearray) else lines]
    try:
        items = list(lines)
    except TypeError as exc:
        raise WireError("expected a list of response lines") from exc
    return [x.encode("utf-8", "replace") if isinstance(x, str) else x for x in items]


def _protocol_lines(lines: Any) -> list[bytes]:
    return [line for line in as_lines(lines) if isinstance(line, bytes)]


def parse_search(lines: Any) -> list[int]:
    """The numbers in SEARCH responses: "SEARCH 1 2", or "1 2" as aioimaplib leaves them."""
    numbers: list[int] = []
    for line in _protocol_lines(lines):
        words = line.split()
        if words[:1] == [b"*"]:
            words = words[1:]
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        if len(words) >= 2 and words[-2].upper() == b"(MODSEQ" and words[-1].endswith(b")"):
            words = words[:-2]
        if all(w.isdigit() and len(w) <= 10 for w in words):
            numbers.extend(int(w) for w in words)
    return numbers


def parse_select(lines: Any) -> dict[str, int | None]:
    """UIDVALIDITY, UIDNEXT and EXISTS from a SELECT or EXAMINE response."""
    result: dict[str, int | None] = {"uidvalidity": None, "uidnext": None, "exists": None}
    for line in _protocol_lines(lines):
        if match := _SELECT_CODE.match(line):
            result[match[1].decode("ascii").lower()] = int(match[2])
        elif match := _EXISTS.fullmatch(line):
            result["exists"] = int(match[1])
    return result


def parse_exists(lines: Any) -> int | None:
    """The count of the last "N EXISTS" among pushed lines, ignoring RECENT and EXPUNGE."""
    exists = None
    for line in _protocol_lines(lines):
        if match := _EXISTS.fullmatch(line):
            exists = int(match[1])
    return exists


def parse_capabilities(line_or_lines: Any) -> set[str]:
    """Upper-case capability names from CAPABILITY lines, an [CAPABILITY ...] code, or a bare list.

    Without any CAPABILITY marker the first line is taken as the bare list that aioimaplib's own
    CAPABILITY command leaves behind.
    """
    lines = _protocol_lines(line_or_lines)
    words: list[bytes] = []
    marked = False
    for line in lines:
        if match := _CAPS_CODE.search(line) or _CAPS_LINE.match(line):
            words += match[1].split()
            marked = True
    if not marked and lines:
        words = lines[0].split()
    return {w.decode("ascii", "replace").upper() for w in words}


def _logical_lines(lines: Any) -> list[list[bytes | bytearray]]:
    """The response lines, each with its literals (bytearray) and the text that follows them."""
    groups: list[list[bytes | bytearray]] = []
    after_literal = False
    for item in as_lines(lines):
        if isinstance(item, bytearray) and groups:
            groups[-1].append(item)
            after_literal = True
        elif isinstance(item, bytes):
            if after_literal:
                groups[-1].append(item)
            else:
                groups.append([item])
            after_literal = False
    return groups


def _parse_line(parts: list[bytes | bytearray]) -> list[Any]:
    """One response line as nested lists of str (quoted strings, atoms, literals) and None (NIL)."""
    root: list[Any] = []
    stack = [root]
    for part in parts:
        if isinstance(part, bytearray):
            stack[-1].append(bytes(part).decode("utf-8", "replace"))
            continue
        pos = 0
        while part[pos:].strip():
            match = _TOKEN.match(part, pos)
            if match is None:
                raise WireError(f"unreadable response: {part[:60]!r}")
            pos = match.end()
            if match[1]:
                stack[-1].append([])
                stack.append(stack[-1][-1])
            elif match[2]:
                if len(stack) == 1:
                    raise WireError(f"unbalanced parentheses: {part[:60]!r}")
                stack.pop()
            elif match[3] is not None:
                text = re.sub(rb"\\(.)", rb"\1", match[3])
                stack[-1].append(text.decode("utf-8", "replace"))
            elif match[5]:
                atom = match[5].decode("utf-8", "replace")
                stack[-1].append(None if atom.upper() == "NIL" else atom)
    if len(stack) != 1:
        raise WireError(f"unbalanced parentheses: {bytes(parts[0])[:60]!r}")
    return root


def _untagged(lines: Any, keyword: str) -> list[list[Any]]:
    """The parsed lines of untagged responses, without "*" and keyword (aioimaplib drops them)."""
    found = []
    for parts in _logical_lines(lines):
        try:
            tokens = _parse_line(parts)
        except WireError:
            continue  # a line of another kind, such as the tagged "Done :)"
        if tokens[:1] == ["*"]:
            tokens = tokens[1:]
        if tokens and isinstance(tokens[0], str) and tokens[0].upper() == keyword:
            tokens = tokens[1:]
        found.append(tokens)
    return found


def parse_list(lines: Any) -> list[Listed]:
    """The folders of a LIST response; entries whose name is not modified UTF-7 are left out."""
    found = []
    for tokens in _untagged(lines, "LIST"):
        if len(tokens) != 3 or not isinstance(tokens[0], list) or not isinstance(tokens[2], str):
            continue
        flags, separator, name = tokens
        try:
            decoded = utf7_decode(name)
        except WireError:
            continue
        found.append(
            Listed(
                name="INBOX" if decoded.upper() == "INBOX" else decoded,
                separator=separator if isinstance(separator, str) and separator else None,
                flags=frozenset(str(f).upper() for f in flags if isinstance(f, str)),
            )
        )
    return found


def parse_namespace(lines: Any) -> list[tuple[str, str | None]] | None:
    """The personal namespaces of a NAMESPACE response as (prefix, separator); None if none.

    The prefix is decoded from modified UTF-7; the other users' and shared namespaces are left
    out: gmid watches the user's own folders.
    """
    for tokens in _untagged(lines, "NAMESPACE"):
        if len(tokens) != 3 or not all(t is None or isinstance(t, list) for t in tokens):
            continue
        personal = []
        for entry in tokens[0] or []:
            if not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[0], str):
                continue
            separator = entry[1] if isinstance(entry[1], str) and entry[1] else None
            personal.append((utf7_decode(entry[0]), separator))
        return personal or None
    return None
