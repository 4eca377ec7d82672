"""The IMAP wire format around aioimaplib: quoting, mailbox names and short responses, no I/O.

aioimaplib returns a response as a list. Protocol lines are ``bytes`` with the "* " of untagged
lines removed (every "* " in the line, in fact), except that a line arriving while aioimaplib
believes a FETCH is unfinished (its parenthesis count is thrown off by a ")" inside a quoted
string) keeps its "* ". A literal's data is a ``bytearray`` following the line that ends with
``{N}``, and the rest of that response line is the next ``bytes``. Parse functions raise
:class:`WireError` and nothing else: these here (SEARCH, SELECT, EXISTS, CAPABILITY) and
parse_fetch in gmid/mail/imap/fetch.py, which reads FETCH responses with their literals.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from gmid.errors import GmidError

_SELECT_CODE = re.compile(rb"(?:\* )?OK \[(UIDVALIDITY|UIDNEXT) (\d{1,20})\]", re.I)
_EXISTS = re.compile(rb"(?:\* )?(\d{1,20}) EXISTS\s*", re.I)
_CAPS_CODE = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.I)
_CAPS_LINE = re.compile(rb"(?:\* )?CAPABILITY\b(.*)", re.I | re.S)


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
