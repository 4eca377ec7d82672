"""Find the documents (invoices) in the raw bytes of one e-mail: pure functions, no I/O.

The MIME structure is split here, iteratively and with bytes.find, rather than by
email.parser: the stdlib feed parser nests one generator per multipart level (RecursionError
near 1,000 levels) and checks every line against every open boundary. Header blocks are still
read by the stdlib parser (compat32), one entity at a time, in gmid/mail/headers.py.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from gmid.archive.sniff import HEAD_BYTES, MEDIA, kind_of, sniff
from gmid.mail.headers import (
    SkippedHeaderLine,
    decoded_header,
    header_addresses,
    header_value,
    parse_message_id,
    part_filename,
    read_entity,
)

_TEXT_CAP = 200_000  # forward markers sit near the top of a body
_MAX_PARTS = 10_000

_BAD_QP = re.compile(rb"=(?![0-9A-Fa-f]{2})(?![ \t]*(?:\r?\n|\Z))")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")
_FORWARD_MARKER = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*(?:forwarded message|original message|weitergeleitete nachricht"
    r"|ursprüngliche nachricht|message transféré|message d'origine|message original"
    r"|mensaje reenviado|mensaje original)[ \t]*-{2,}|begin forwarded message:"
    r"|anfang der weitergeleiteten nachricht:|début du message réexpédié ?:|_{20,})[ \t\r]*$",
    re.I | re.M,
)
_FROM_LINE = re.compile(
    r"^[ \t>*]*(?:from|von|de|van|da)[ \t*]*:[ \t*]*([^\r\n]{0,500})", re.I | re.M
)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_HTML_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|tr|li|blockquote)>", re.I)
_HTML_TAG = re.compile(r"<[^<>]*>")  # not [^>]*: linear on "<<<<"

_DECLARED_TYPES = dict.fromkeys(("application/pdf", "application/x-pdf"), "pdf")
_DECLARED_TYPES |= dict.fromkeys(("application/xml", "text/xml"), "xml")
_EXTENSIONS = {".pdf": "pdf", ".xml": "xml", ".png": "image", ".jpg": "image", ".jpeg": "image"}
_EXTENSIONS |= {".gif": "image", ".tif": "image", ".tiff": "image", ".webp": "image"}
_WHAT = {"pdf": ("PDF", "a PDF"), "xml": ("XML", "XML"), "image": ("image", "an image")}
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_UNREADABLE = {
    "application/pkcs7-mime": "encrypted or opaque-signed S/MIME part: not read",
    "application/x-pkcs7-mime": "encrypted or opaque-signed S/MIME part: not read",
    "application/ms-tnef": "Outlook winmail.dat (TNEF) attachment: not read",
    "multipart/encrypted": "encrypted part: not read",
}


@dataclass(frozen=True)
class Document:
    """One document found in a mail: its bytes and the type detected from them."""

    data: bytes = field(repr=False)
    kind: str  # "pdf" | "xml" | "image" | "eml"
    media_type: str
    ext: str  # from the detected type, never from the sender's file name
    original_name: str | None  # for the index only; the archive names files itself


@dataclass(frozen=True)
class ParsedMail:
    """What one mail says about itself and the documents it carries."""

    message_id: str | None
    subject: str
    date: datetime | None
    senders: tuple[str, ...]  # most specific first: forwarded originals, From, Reply-To, Sender
    documents: tuple[Document, ...]
    problems: tuple[str, ...]
    # Where the last delivery before gmid put it (the topmost Delivered-To, X-Original-To): a
    # fetching client such as fetchmail may hand the mail on to another envelope recipient.
    delivered_to: tuple[str, ...] = ()


def parse_mail(
    raw: bytes, *, types: Collection[str] = ("pdf", "xml"), max_depth: int = 50
) -> ParsedMail:
    """Read one raw mail: its headers, candidate senders, documents and problems; never raises."""
    walk = _Walk(raw, frozenset(types), max_depth)
    try:
        walk.run()
        senders = walk.senders()
    except Exception as exc:  # a last guard: hostile input must never take the caller down
        walk.problems.append(f"mail could not be read to the end ({type(exc).__name__})")
        senders = walk.outer
    return ParsedMail(
        message_id=walk.message_id,
        subject=walk.subject,
        date=walk.date,
        senders=tuple(dict.fromkeys(senders)),
        documents=tuple(walk.documents),
        problems=tuple(dict.fromkeys(walk.problems)),
        delivered_to=tuple(dict.fromkeys(walk.delivered_to)),
    )


def eml_document(raw: bytes) -> Document:
    """Wrap a whole raw mail as an "eml" document, named after its subject."""
    subject = ""
    try:
        msg, _, _ = read_entity(raw, 0, len(raw))
        subject = decoded_header(msg, "subject")
    except Exception:  # the raw mail is what we keep; a name is only a nicety
        pass
    return Document(raw, "eml", "message/rfc822", ".eml", subject or None)


class _Entity(NamedTuple):
    """One MIME entity waiting on the walk's stack: where it is and what encloses it."""

    buf: bytes
    start: int
    end: int
    path: tuple[int, ...]  # IMAP section numbers, to name the part in problems
    depth: int  # multipart and message nesting
    level: int  # forwarded-message nesting: 0 is the mail itself
    order: int  # the message the entity belongs to, to group its text bodies
    is_root: bool = False  # its header block is a message's own
    default: str = "text/plain"  # its content type when none is given


class _Walk:
    """The state of one walk over a mail's MIME tree, with an explicit stack."""

    def __init__(self, raw: bytes, types: frozenset[str], max_depth: int):
        self.raw, self.types, self.max_depth = raw, types, max_depth
        self.message_id: str | None = None
        self.subject = ""
        self.date: datetime | None = None
        self.outer: list[str] = []
        self.delivered_to: list[str] = []
        self.forwarded: list[tuple[int, int, str]] = []  # (message level, order, address)
        self.texts: dict[int, list[tuple[str, str]]] = {}  # message order -> [(subtype, text)]
        self.levels: dict[int, int] = {}  # message order -> message level
        self.next_order = 0
        self.documents: list[Document] = []
        self.seen: set[bytes] = set()
        self.problems: list[str] = []

    def run(self) -> None:
        """Walk the MIME tree depth-first with an explicit stack: nesting cannot recurse."""
        stack = [_Entity(self.raw, 0, len(self.raw), (), 0, 0, 0, True)]
        for _ in range(_MAX_PARTS):
            if not stack:
                return
            entity = stack.pop()
            try:
                self._visit(entity, stack)
            except Exception as exc:  # one unreadable part must not hide the others
                self._problem(".".join(map(str, entity.path)), f"unreadable ({type(exc).__name__})")
        if stack:
            self.problems.append(f"more than {_MAX_PARTS} parts: the rest skipped")

    def _visit(self, e: _Entity, stack: list[_Entity]) -> None:
        msg, body, enc = read_entity(e.buf, e.start, e.end)
        for defect in msg.defects:
            if isinstance(defect, SkippedHeaderLine):
                where = ".".join(map(str, e.path))
                self._problem(where, f"a header line that is no header field skipped: {defect}")
        msg.set_default_type(e.default)
        ctype = msg.get_content_type()
        multipart, path = ctype.startswith("multipart/"), e.path
        if e.is_root:
            self._message_headers(msg, e.level, e.order)
            if not multipart:
                path = (*path, 1)  # IMAP numbering: a single-part message's body is part 1
        label = ".".join(map(str, path))
        if ctype in _UNREADABLE:
            self._problem(label, _UNREADABLE[ctype])
        elif e.depth >= self.max_depth and (multipart or ctype in _MESSAGE_TYPES):
            deeper = f"nesting deeper than {self.max_depth} levels: deeper parts skipped"
            self.problems.append(deeper)
        elif multipart:
            kids = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
            parts = self._multipart(msg, e.buf, body, e.end, label, enc)
            stack.extend(
                _Entity(e.buf, s, end, (*path, i), e.depth + 1, e.level, e.order, False, kids)
                for i, (s, end) in reversed(list(enumerate(parts, 1)))
            )
        elif ctype in _MESSAGE_TYPES:
            buf, end, cte = e.buf, e.end, _cte(msg)
            if cte in ("base64", "quoted-printable"):  # not allowed, but some clients do it
                buf, _ = _decode(buf[body:end], cte)
                body, end = 0, len(buf)
            self.next_order += 1
            inner = _Entity(buf, body, end, path, e.depth + 1, e.level + 1, self.next_order, True)
            stack.append(inner)
        else:
            self._leaf(msg, e.buf[body : e.end], ctype, label, e.order)

    def _message_headers(self, msg: Message, level: int, order: int) -> None:
        self.levels[order] = level
        addresses = header_addresses(msg, "from")
        if level > 0:
            self.forwarded.extend((level, len(self.forwarded), a) for a in addresses)
            return
        self.outer = addresses + header_addresses(msg, "reply-to") + header_addresses(msg, "sender")
        delivered = header_addresses(msg, "delivered-to", lower=False)
        self.delivered_to = delivered + header_addresses(msg, "x-original-to", lower=False)
        self.subject = decoded_header(msg, "subject")
        self.message_id = parse_message_id(header_value(msg, "message-id"))
        try:
            date = parsedate_to_datetime(header_value(msg, "date"))
            self.date = date if date.tzinfo else date.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            self.date = None

    def _multipart(self, msg: Message, buf: bytes, start: int, end: int, label: str, enc: str):
        boundary = msg.get_boundary()
        if not boundary:
            self._problem(label, "multipart without boundary: its parts were skipped")
            return []
        parts, closed = _split_multipart(buf, start, end, boundary.encode(enc, "replace"))
        if not parts:
            self._problem(label, "multipart without any part (wrong boundary?)")
        elif not closed:
            self._problem(label, "multipart not closed (missing closing boundary)")
        return parts

    def _leaf(self, msg: Message, body: bytes, ctype: str, label: str, msg_id: int) -> None:
        disposition = str(msg.get("content-disposition", "")).split(";", 1)[0].strip().lower()
        name = part_filename(msg)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not name:
            self.texts.setdefault(msg_id, []).append((ctype[5:], _text(msg, body)))
            return
        # an XML or image counts only as a real attachment: inline logos carry a Content-ID
        attached = disposition == "attachment" or (bool(name) and msg.get("content-id") is None)
        declared = _DECLARED_TYPES.get(ctype) or _EXTENSIONS.get(_suffix(name))
        if declared is None and ctype.startswith("image/"):
            declared = "image"
        cte = _cte(msg)

        def wanted(kind: str | None) -> bool:
            return kind in self.types and (kind == "pdf" or attached)

        if not wanted(declared) and not wanted(kind_of(sniff(_decode_head(body, cte)))):
            return
        data, broken = _decode(body, cte)
        sniffed = sniff(data)
        kind = kind_of(sniffed)
        if broken:
            if kind != declared or not wanted(kind):
                self._problem(label, f"broken {broken}", name)
                return
            self._problem(label, f"broken {broken} (kept: still reads as {_WHAT[kind][1]})", name)
        if wanted(kind):
            if data not in self.seen:
                self.seen.add(data)
                _, media_type, ext = MEDIA[sniffed]
                self.documents.append(Document(data, kind, media_type, ext, name))
        elif declared in self.types:
            noun, what = _WHAT[declared]
            self._problem(label, f"declared {noun} but content is not {what}", name)

    def _problem(self, label: str, what: str, name: str | None = None) -> None:
        where = f"part {label}" if label else "message"
        named = f' ("{name}")' if name else ""
        self.problems.append(f"{where}{named}: {what}")

    def senders(self) -> list[str]:
        """Candidate senders, most specific (most deeply forwarded) first."""
        found = list(self.forwarded)
        for order, texts in self.texts.items():
            level = self.levels.get(order, 0)
            plain = [t for sub, t in texts if sub == "plain"]
            # an HTML body is read only when its message has no plain-text one
            for text in plain or [_html_text(t) for sub, t in texts if sub == "html"]:
                for k, address in enumerate(_inline_forwards(text), 1):
                    found.append((level + k, len(found), address))
        found.sort(key=lambda f: (-f[0], f[1]))
        return [a for _, _, a in found] + self.outer


def _split_multipart(buf: bytes, start: int, end: int, boundary: bytes):
    """Find the parts of a multipart body: ([(start, end)], closed); linear in its length."""
    delimiter = b"--" + boundary
    parts: list[tuple[int, int]] = []
    pos, part_start = start, None
    while (i := buf.find(delimiter, pos, end)) >= 0:
        pos = i + len(delimiter)
        if i > start and buf[i - 1] != 0x0A:
            continue  # not at the start of a line
        line_end = buf.find(b"\n", pos, end)
        line_end = end if line_end < 0 else line_end
        tail = buf[pos:line_end]
        closing = tail.startswith(b"--")
        if (tail[2:] if closing else tail).strip():
            pos = line_end  # a longer boundary that starts with ours
            continue
        if part_start is not None:
            stop = max(i - 1, part_start)  # the line break before a delimiter belongs to it
            if stop > part_start and buf[stop - 1] == 0x0D:
                stop -= 1
            parts.append((part_start, stop))
        if closing:
            return parts, True
        part_start = pos = min(line_end + 1, end)
    if part_start is not None:
        parts.append((part_start, end))
    return parts, False


def _cte(msg: Message) -> str:
    return str(msg.get("content-transfer-encoding", "")).strip().lower()


def _decode(body: bytes, cte: str) -> tuple[bytes, str | None]:
    """Decode a part's body: (bytes, "base64"/"quoted-printable" when it was broken, else None)."""
    if cte == "base64":
        clean = b"".join(body.split())
        try:
            return base64.b64decode(clean, validate=True), None
        except (binascii.Error, ValueError):
            clean = _NOT_B64.sub(b"", clean)  # what a lenient decoder would make of it
            return binascii.a2b_base64(clean[: len(clean) - len(clean) % 4]), "base64"
    if cte == "quoted-printable":
        return binascii.a2b_qp(body), "quoted-printable" if _BAD_QP.search(body) else None
    return body, None


def _decode_head(body: bytes, cte: str) -> bytes:
    """Decode about the first kilobyte of a part, enough to sniff its type."""
    if cte == "base64":
        clean = _NOT_B64.sub(b"", b"".join(body[:2048].split()))
        return binascii.a2b_base64(clean[: min(1368, len(clean) - len(clean) % 4)])
    if cte == "quoted-printable":
        return binascii.a2b_qp(body[:4096])
    return body[:HEAD_BYTES]


def _suffix(name: str | None) -> str:
    return "." + name.rsplit(".", 1)[-1].lower() if name and "." in name else ""


def _text(msg: Message, body: bytes) -> str:
    """A text body decoded to str, cut to the part where forward markers can be."""
    data, _ = _decode(body, _cte(msg))
    try:
        charset = msg.get_content_charset() or "utf-8"
        return data[:_TEXT_CAP].decode(charset, "replace")
    except (LookupError, ValueError):
        return data[:_TEXT_CAP].decode("latin-1")


def _html_text(source: str) -> str:
    return html.unescape(_HTML_TAG.sub("", _HTML_BREAK.sub("\n", source)))


def _inline_forwards(text: str) -> list[str]:
    """The From addresses after each forward marker in a text body, in order."""
    found = []
    for marker in _FORWARD_MARKER.finditer(text):
        line = _FROM_LINE.search(text, marker.end(), marker.end() + 3000)
        if line and (address := _ADDRESS.search(line.group(1))):
            found.append(address.group(0).lower())
    return found
