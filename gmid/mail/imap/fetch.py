"""FETCH responses as aioimaplib returns them, read into FetchedMessage records; no I/O.

Each "N FETCH (...)" entry is tokenized into nested lists, the literals that aioimaplib hands
over as separate items spliced back in (gmid/mail/imap/wire.py describes how it splits a response).
BODYSTRUCTURE becomes a flat tuple of leaf Parts, their file names decoded from RFC 2231
parameters and RFC 2047 encoded words. A hostile server's entries are read as far as they make
sense: an entry cut short keeps the items read before the cut, a BODYSTRUCTURE nesting deeper
than MAX_BODY_DEPTH gives no parts; like the parsers in gmid/mail/imap/wire.py, parse_fetch raises
WireError and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import unquote_to_bytes

from gmid.mail.imap.wire import as_lines

MAX_BODY_DEPTH = 100
_MAX_LIST_DEPTH = 2 * MAX_BODY_DEPTH + 16

_TOKEN = re.compile(
    rb"[ \t]+"
    rb"|(?P<open>\()"
    rb"|(?P<close>\))"
    rb'|"(?P<quoted>(?:[^"\\]++|\\.)*+)"'
    rb"|\{(?P<literal>\d{1,12})\+?\}\Z"
    rb'|(?P<atom>(?:[^\x00-\x20\x7f()"\[{]++|\[[^\]\x00\r\n]*+\])++)',
    re.S,
)
_UNESCAPE = re.compile(rb"\\(.)", re.S)
_FETCH_START = re.compile(rb"(?:\* ?)?(\d{1,10}) FETCH \(", re.I)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_RFC2231_SECTION = re.compile(r"\*(\d{1,3})(\*?)")

_BROKEN: Any = object()


@dataclass(frozen=True)
class Part:
    """One leaf MIME part as BODYSTRUCTURE describes it."""

    media_type: str
    filename: str | None
    disposition: str | None
    content_id: bool
    size: int | None
    encoding: str | None


@dataclass(frozen=True)
class FetchedMessage:
    """What one or more FETCH responses said about a message with a UID."""

    uid: int
    flags: tuple[str, ...] | None = None
    size: int | None = None
    internaldate: str | None = None
    parts: tuple[Part, ...] | None = None
    header: bytes | None = None
    body: bytes | None = None


def _feed(line: bytes, pos: int, stack: list[list[Any]], skipping: int) -> tuple[int, int]:
    """Reads tokens onto stack until its outermost list closes, a literal is announced or an error.

    Returns the size of the announced literal (-1 for none) and the depth of lists being skipped
    for nesting too deep.
    """
    while pos < len(line) and len(stack) > 1:
        match = _TOKEN.match(line, pos)
        if match is None:
            break
        pos = match.end()
        kind = match.lastgroup
        if kind == "open":
            if skipping or len(stack) > _MAX_LIST_DEPTH:
                skipping += 1
            else:
                stack[-1].append([])
                stack.append(stack[-1][-1])
        elif kind == "close":
            if skipping:
                skipping -= 1
                if not skipping:
                    stack[-1].append(_BROKEN)
            else:
                stack.pop()
        elif kind == "literal":
            return int(match["literal"]), skipping
        elif kind == "quoted" and not skipping:
            stack[-1].append(_UNESCAPE.sub(rb"\1", match["quoted"]))
        elif kind == "atom" and not skipping:
            atom = match["atom"]
            stack[-1].append(None if atom.upper() == b"NIL" else atom)
    return -1, skipping


def _entries(lines: list[Any]) -> Iterator[list[Any]]:
    i, count = 0, len(lines)
    while i < count:
        line = lines[i]
        i += 1
        start = _FETCH_START.match(line) if isinstance(line, bytes) else None
        if start is None:
            continue
        fetch: list[Any] = []
        stack = [[fetch], fetch]
        want, skipping = _feed(line, start.end(), stack, 0)
        while want >= 0:
            data, rest = [*lines[i : i + 2], None, None][:2]
            if (
                not isinstance(data, bytes | bytearray)
                or len(data) != want
                or (isinstance(data, bytes) and _FETCH_START.match(data))
            ):
                break
            if not skipping:
                stack[-1].append(data)
            i += 1
            if not isinstance(rest, bytes) or _FETCH_START.match(rest):
                break
            i += 1
            want, skipping = _feed(rest, 0, stack, skipping)
        if len(stack) > 2:
            fetch[-1] = _BROKEN
        yield fetch


def parse_fetch(lines: list[bytes | bytearray]) -> list[FetchedMessage]:
    """Every FETCH entry that has a UID, in order of appearance.

    Entries for the same UID (a server may report new flags separately) are merged, later values
    winning. An entry cut short keeps the items read before the cut; a BODYSTRUCTURE that cannot be
    read, or nests deeper than MAX_BODY_DEPTH, gives ``parts=None``. ``BODY[]<origin>`` partial
    bodies are not taken for ``body``.
    """
    found: dict[int, FetchedMessage] = {}
    for items in _entries(as_lines(lines)):
        message = _message(items)
        if message is None:
            continue
        if old := found.get(message.uid):
            newer = {f.name: getattr(message, f.name) for f in fields(message)}
            message = replace(old, **{k: v for k, v in newer.items() if v is not None})
        found[message.uid] = message
    return list(found.values())


def _message(items: list[Any]) -> FetchedMessage | None:
    values: dict[str, Any] = {}
    for k in range(0, len(items) - 1, 2):
        name, value = items[k], items[k + 1]
        if not isinstance(name, bytes):
            break
        key = name.upper().replace(b".PEEK[", b"[")
        if key == b"UID":
            values["uid"] = _int(value)
        elif key == b"FLAGS" and isinstance(value, list):
            values["flags"] = tuple(_text(f) for f in value if isinstance(f, bytes | bytearray))
        elif key == b"RFC822.SIZE":
            values["size"] = _int(value)
        elif key == b"INTERNALDATE":
            values["internaldate"] = _text(value)
        elif key in (b"BODYSTRUCTURE", b"BODY"):
            values["parts"] = _parts(value)
        elif key.startswith(b"BODY[HEADER") or key == b"RFC822.HEADER":
            values["header"] = _bytes(value)
        elif key in (b"BODY[]", b"RFC822"):
            values["body"] = _bytes(value)
    return FetchedMessage(**values) if values.get("uid") else None


def _int(value: Any) -> int | None:
    if isinstance(value, bytes | bytearray) and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else None


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if isinstance(value, bytes | bytearray) else None


def _parts(node: Any) -> tuple[Part, ...] | None:
    out: list[Part] = []
    todo = [(node, 0)]
    while todo:
        body, depth = todo.pop()
        if not isinstance(body, list) or not body or depth > MAX_BODY_DEPTH:
            return None
        if isinstance(body[0], list):
            count = 0
            while count < len(body) and isinstance(body[count], list):
                count += 1
            todo.extend((child, depth + 1) for child in reversed(body[:count]))
            continue
        if not isinstance(body[0], bytes | bytearray):
            return None
        padded = [*body[:9], *[None] * (9 - len(body))]
        media = f"{_text(body[0])}/{_text(padded[1]) or 'octet-stream'}".lower()
        if media in ("message/rfc822", "message/global") and isinstance(padded[8], list):
            todo.append((padded[8], depth + 1))
        else:
            out.append(_leaf(body, padded, media))
    return tuple(out)


def _leaf(body: list[Any], padded: list[Any], media: str) -> Part:
    disposition, disposition_params = None, {}
    for value in body[7:]:
        if (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], bytes | bytearray)
            and (value[1] is None or isinstance(value[1], list))
        ):
            disposition, disposition_params = _text(value[0]), _params(value[1])
            break
    filename = _param(disposition_params, "filename") or _param(_params(padded[2]), "name")
    encoding = _text(padded[5])
    return Part(
        media_type=media,
        filename=_decode_words(filename) if filename else None,
        disposition=disposition.lower() if disposition else None,
        content_id=isinstance(padded[3], bytes | bytearray),
        size=_int(padded[6]),
        encoding=encoding.lower() if encoding else None,
    )


def _params(value: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if isinstance(value, list):
        for k in range(0, len(value) - 1, 2):
            key = _text(value[k])
            if key is not None:
                params.setdefault(key.lower(), value[k + 1])
    return params


def _param(params: dict[str, Any], name: str) -> str | None:
    sections: dict[int, tuple[bool, bytes]] = {}
    for key, value in params.items():
        if not key.startswith(name + "*") or not isinstance(value, bytes | bytearray):
            continue
        suffix = key[len(name) :]
        if suffix == "*":
            sections.setdefault(0, (True, bytes(value)))
        elif match := _RFC2231_SECTION.fullmatch(suffix):
            sections.setdefault(int(match[1]), (bool(match[2]), bytes(value)))
    if not sections:
        return _text(params.get(name))
    charset, raw = "utf-8", bytearray()
    for index, number in enumerate(sorted(sections)):
        encoded, data = sections[number]
        if encoded:
            if index == 0 and data.count(b"'") >= 2:
                declared, _, data = data.split(b"'", 2)
                charset = declared.decode("ascii", "replace") or charset
            data = unquote_to_bytes(data)
        raw += data
    return _decode(bytes(raw), charset)


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset, "replace")
    except (LookupError, ValueError, TypeError):
        return raw.decode("utf-8", "replace")


def _decode_words(text: str) -> str:
    if "=?" not in text:
        return text
    text = re.sub(r"(?<=\?=)\s+(?==\?)", "", text)
    return _ENCODED_WORD.sub(_decode_word, text)


def _decode_word(match: re.Match[str]) -> str:
    charset, kind, data = match[1].split("*")[0], match[2].upper(), match[3]
    if not data.isascii():
        return match.group()
    try:
        if kind == "B":
            raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        else:
            raw = binascii.a2b_qp(data.encode("ascii"), header=True)
    except (binascii.Error, ValueError):
        return match.group()
    return _decode(raw, charset)
