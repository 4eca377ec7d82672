"""A mail's header fields: reading a header block and the values in it, pure functions, no I/O.

Header blocks are read by the stdlib parser (compat32), one entity at a time; values are cut short
and decoded (RFC 2047, RFC 2231) leniently, since hostile headers must not take the caller down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import MessageDefect
from email.header import decode_header
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, getaddresses

_PARAM_HEADERS = frozenset({"content-type", "content-disposition"})
_PARAM_CAP = 16_384  # the stdlib parameter parser is quadratic in the header's length
_VALUE_CAP = 8_192  # subject, addresses, ids: longer is hostile, and decode_header is regex-based

_HEADER_BLOCK = re.compile(
    rb"(?:From [^\n]*\n)?(?:[!-9;-~]+[ \t]*:[^\n]*(?:\n|\Z)|[ \t][^\n]*(?:\n|\Z))*"
)
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_MAX_SKIPPED = 100  # bad lines skipped in one header block; then the rest is the body
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00\r\n]")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


class SkippedHeaderLine(MessageDefect):
    """A line in a header block that is no header field (no colon, or a NUL in its name)."""


class _Message(Message):
    """A compat32 Message that cuts parameter headers short before the stdlib parses them."""

    def get(self, name, failobj=None):
        value = super().get(name, failobj)
        if value is not failobj and name.lower() in _PARAM_HEADERS:
            value = str(value)
            if len(value) > _PARAM_CAP:
                return value[:_PARAM_CAP]
        return value


@dataclass(frozen=True)
class HeaderSummary:
    """What a mail's header block alone says: enough to pick it before fetching its body."""

    message_id: str | None
    subject: str
    senders: tuple[str, ...]  # From, Reply-To, Sender


def summarize_headers(raw: bytes) -> HeaderSummary:
    """Read Message-ID, subject and sender addresses from a header block; never raises."""
    try:
        msg, _, _ = read_entity(raw, 0, len(raw))
        senders = header_addresses(msg, "from") + header_addresses(msg, "reply-to")
        senders += header_addresses(msg, "sender")
        return HeaderSummary(
            parse_message_id(header_value(msg, "message-id")),
            decoded_header(msg, "subject"),
            tuple(dict.fromkeys(senders)),
        )
    except Exception:  # a hostile header block reads as an anonymous mail, never as an error
        return HeaderSummary(None, "", ())


def read_entity(buf: bytes, start: int, end: int) -> tuple[Message, int, str]:
    """Parse the header block of the entity at buf[start:end]: (headers, body offset, charset).

    A line in the block that is no header field (no colon; a NUL or a space in the name) but
    has header fields after it is skipped, so that they are still read: the stdlib parser
    would end the block there and take the Content-Type below it for body text. Each skipped
    line is a SkippedHeaderLine in the message's defects.
    """
    spans, head_end, skipped = _header_spans(buf, start, end)
    body = head_end
    if buf.startswith(b"\r\n", head_end, end):
        body += 2
    elif buf.startswith(b"\n", head_end, end):
        body += 1
    head = b"".join(buf[s:e] for s, e in spans)
    try:
        text, enc = head.decode("utf-8"), "utf-8"  # RFC 6532 headers
    except UnicodeDecodeError:
        text, enc = head.decode("latin-1"), "latin-1"
    text = _FOLD.sub("", text)
    msg = Parser(_class=_Message, policy=compat32).parsestr(text, headersonly=True)
    msg.defects.extend(SkippedHeaderLine(line) for line in skipped)
    return msg, body, enc


def _header_spans(buf: bytes, start: int, end: int) -> tuple[list[tuple[int, int]], int, list]:
    """The header block at buf[start:end]: its good spans, where it ends, the lines skipped."""
    spans: list[tuple[int, int]] = []
    skipped: list[str] = []
    pos = start
    while True:
        head_end = _HEADER_BLOCK.match(buf, pos, end).end()
        spans.append((pos, head_end))
        if head_end >= end or buf.startswith((b"\r\n", b"\n"), head_end, end):
            return spans, head_end, skipped
        line_end = buf.find(b"\n", head_end, end)
        if line_end < 0 or len(skipped) >= _MAX_SKIPPED:
            return spans, head_end, skipped
        if not _HEADER_LINE.match(buf, line_end + 1, end):
            return spans, head_end, skipped  # no header follows: the body starts here
        line = buf[head_end:line_end].rstrip(b"\r")
        text = line[:80].decode("latin-1")  # shown in the reason and the log: no raw controls
        skipped.append("".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text))
        pos = line_end + 1


def header_value(msg: Message, name: str) -> str:
    """One header's value as text, cut short: hostile headers may be megabytes long."""
    value = msg.get(name)
    return "" if value is None else str(value)[:_VALUE_CAP]


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words, lossily where a charset is unknown or a word is broken."""
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # a broken encoded word: keep the text as it came
        return value
    return "".join(_decode_bytes(c, cs) if isinstance(c, bytes) else c for c, cs in chunks)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset is None:  # decode_header's own encoding of the text between encoded words
        return data.decode("raw-unicode-escape", "replace")
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("latin-1")


def decoded_header(msg: Message, name: str) -> str:
    """One header's value decoded to text on one line, e.g. a subject."""
    return _CONTROL.sub("", decode_words(header_value(msg, name))).strip()


def part_filename(msg: Message) -> str | None:
    """The part's file name, RFC 2231 and RFC 2047 decoded, without NULs and line breaks."""
    try:
        name = msg.get_filename() or collapse_rfc2231_value(msg.get_param("name") or "")
    except Exception:  # a hostile parameter list: no name is better than no document
        return None
    if not name:
        return None
    name = _CONTROL.sub("", decode_words(str(name)[:_VALUE_CAP])).strip()
    return name or None


def header_addresses(msg: Message, name: str, *, lower: bool = True) -> list[str]:
    """The e-mail addresses in an address header (From, Reply-To, Sender), lower-cased unless
    told otherwise (a plus tag keeps the case its sender gave it)."""
    value = header_value(msg, name)
    if not value:
        return []
    try:
        pairs = getaddresses([value])
    except Exception:
        return []
    found = [a.strip() for _, a in pairs if "@" in a and " " not in a.strip()]
    return [a.lower() for a in found] if lower else found


def parse_message_id(value: str) -> str | None:
    """The id in a Message-ID header, without its angle brackets; None if there is none."""
    if m := _MESSAGE_ID.search(value):
        return m.group(1)
    value = value.strip()
    return value if value and "@" in value and not any(c.isspace() for c in value) else None
