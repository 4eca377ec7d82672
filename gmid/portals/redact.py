"""Secrets blanked out of what a portal says: its messages, and the pages saved for diagnosis.

A careless (or hostile) portal may echo what it was sent: "the password 'hunter2' is wrong", the
login form filled in again, the fields in a JSON answer. Each run has a Redactor that learns the
portal's secrets as the run uses them (the password when the connector reads it, the TOTP secret,
every code, captcha answer or token handed to the portal) and replaces them by MARKER wherever
they appear, in whatever form a page may carry them: as sent, HTML-escaped (named or numeric
entities), URL-encoded (%HH in either case, + for a space), JSON- or JavaScript-escaped
(\\uXXXX, \\xHH, \\"), each character in any of these forms; in a saved page
also as UTF-8 or as a one-byte charset (latin-1, windows-1252), and as base64, alone or inside a
longer value such as a Basic auth header.

A secret shorter than MIN_ANYWHERE characters is blanked only where it stands alone (not inside
a longer word or number): blanking every "e" of a one-letter password would leave no message
readable, and such a password protects nothing anyway. Codes (six digits and more) are blanked
everywhere, so a saved page may lose a number that happens to contain one.

While `logged_without(redactor)` is in force in a run's thread, the log records made there (by any
logger: gmid's, a connector's, requests') lose the run's secrets too, traceback included.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html.entities
import logging
import re
import threading
from collections.abc import Iterator

MARKER = "[secret]"
MIN_ANYWHERE = 4  # shorter secrets are blanked only where they stand alone
_MIN_B64 = 4  # characters of a base64 fragment worth blanking
_ALONE = ("(?<![0-9A-Za-z])", "(?![0-9A-Za-z])")
_current = threading.local()  # the redactor of the run this thread works for, if any
_factory_lock = threading.Lock()
_factory_installed = False


class Redactor:
    """The secrets of one portal run, and the text and pages without them."""

    def __init__(self, marker: str = MARKER):
        self.marker = marker
        self._secrets: set[str] = set()
        self._public: set[str] = set()  # words that stay whole, a secret inside them or not
        self._lock = threading.Lock()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def add(self, secret: str | None) -> None:
        """Learn a secret (surrounding whitespace is not part of it); empty ones are ignored."""
        secret = (secret or "").strip()
        if not secret:
            return
        with self._lock:
            if secret not in self._secrets:
                self._secrets.add(secret)
                self._text = self._bytes = None

    def keep(self, *words: str | None) -> None:
        """Words that are no secret and stay whole: the portal's name, its company, the user
        name. A password "demo" must not turn the portal demo-energie into "[secret]-energie"."""
        with self._lock:
            self._public.update(w for w in words if w and w.strip())
            self._text = self._bytes = None

    def add_totp_secret(self, secret: str | None) -> None:
        """Learn a TOTP secret as configured, and as portals print it: bare or in groups of 4,
        in upper or lower case (base32 is read in either)."""
        self.add(secret)
        bare = "".join((secret or "").split()).replace("-", "").rstrip("=")
        for text in (bare.upper(), bare.lower()):
            self.add(text)
            self.add(" ".join(text[i : i + 4] for i in range(0, len(text), 4)))

    def text(self, text: str | None) -> str | None:
        """The text with every known secret replaced by the marker (None stays None)."""
        if not text:
            return text
        pattern = self._pattern(str)
        return text if pattern is None else pattern.sub(self._blank, text)

    def page(self, data: bytes) -> bytes:
        """A page's bytes with every known secret replaced by the marker."""
        if not data:
            return data
        pattern = self._pattern(bytes)
        return data if pattern is None else pattern.sub(self._blank_bytes, data)

    def _blank(self, match: re.Match[str]) -> str:
        return match.group(0) if match.lastgroup == "keep" else self.marker

    def _blank_bytes(self, match: re.Match[bytes]) -> bytes:
        return match.group(0) if match.lastgroup == "keep" else self.marker.encode()

    def record(self, record: logging.LogRecord) -> None:
        """Blank the secrets in a log record's message and traceback (before any handler)."""
        if not self._secrets:
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # the handler reports a bad format as it always does
            return
        clean = self.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters use exc_text as it is when it is set.
            record.exc_text = self.text(logging.Formatter().formatException(record.exc_info))

    def _pattern(self, kind: type) -> re.Pattern | None:
        with self._lock:
            if not self._secrets:
                return None
            if kind is str:
                if self._text is None:
                    self._text = re.compile(_with_kept(self._public, self._secrets, raw=False))
                return self._text
            if self._bytes is None:
                pattern = _with_kept(self._public, self._secrets, raw=True)
                self._bytes = re.compile(pattern.encode("latin-1", "replace"))
            return self._bytes


@contextlib.contextmanager
def logged_without(redactor: Redactor) -> Iterator[None]:
    """Blank the redactor's secrets in every log record this thread makes meanwhile."""
    _install_factory()
    previous = getattr(_current, "redactor", None)
    _current.redactor = redactor
    try:
        yield
    finally:
        _current.redactor = previous


def _install_factory() -> None:
    """Put the redacting step in front of logging's record factory, once."""
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = make(*args, **kwargs)
            redactor = getattr(_current, "redactor", None)
            if redactor is not None:
                redactor.record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def _with_kept(public: set[str], secrets: set[str], *, raw: bool) -> str:
    """The secrets' pattern, behind the words kept whole (tried first where a match starts)."""
    found = _alternatives(secrets, raw=raw)
    words = [w for w in public if any(secret in w for secret in secrets)]
    if not words:
        return found
    if raw:  # bytes: a word as UTF-8, written one character a byte
        words = [w.encode().decode("latin-1") for w in words]
    kept = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return f"(?P<keep>{kept})|{found}"


def _alternatives(secrets: set[str], *, raw: bool) -> str:
    """One pattern matching any of the secrets in any of their forms, longest first.

    With raw, the pattern is for bytes: written as latin-1 text, one character a byte.
    """
    parts = []
    for secret in sorted(secrets, key=len, reverse=True):
        chars = "".join(_char_pattern(c, raw) for c in secret)
        if len(secret) < MIN_ANYWHERE:
            parts.append(f"{_ALONE[0]}{chars}{_ALONE[1]}")
            continue
        parts.append(chars)
        parts.extend(re.escape(fragment) for fragment in _base64_fragments(secret))
    return "|".join(parts)


def _char_pattern(c: str, raw: bool) -> str:
    """A group matching one character of a secret as written (its case counts) or escaped
    (the escapes' letters and hex digits in either case)."""
    n = ord(c)
    utf8 = c.encode("utf-8")
    escapes = [f"&#0*{n};?", f"&#x0*{n:x};?"]
    escapes += [re.escape("&" + name) for name in _entity_names().get(c, ())]
    escapes.append("".join(f"%{b:02x}" for b in utf8))
    escapes.append(rf"\\u{n:04x}" if n < 0x10000 else _surrogates(n))
    if n < 0x100:
        escapes.append(rf"\\x{n:02x}")
    if c in "\"'\\/":
        escapes.append(re.escape("\\" + c))
    if c == " ":
        escapes.append(r"\+")
    if raw:  # the character's bytes: UTF-8, or one byte in a one-byte charset
        encoded = {utf8}
        for charset in ("latin-1", "cp1252"):
            with contextlib.suppress(UnicodeEncodeError):
                encoded.add(c.encode(charset))
        literal = [re.escape(b.decode("latin-1")) for b in sorted(encoded, key=len, reverse=True)]
        escapes += [f"%{b[0]:02x}" for b in encoded if len(b) == 1 and b != utf8]
    else:
        literal = [re.escape(c)]
    return "(?:" + "|".join(literal) + "|(?i:" + "|".join(escapes) + "))"


def _surrogates(n: int) -> str:
    """The JSON escape of a character beyond the BMP: a surrogate pair."""
    n -= 0x10000
    return rf"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


@functools.cache
def _entity_names() -> dict[str, tuple[str, ...]]:
    """Per character, the HTML entity names that stand for it ("amp;", "amp", "AMP;"...)."""
    names: dict[str, list[str]] = {}
    for name, value in html.entities.html5.items():
        if len(value) == 1:
            names.setdefault(value, []).append(name)
    return {c: tuple(sorted(found, key=len, reverse=True)) for c, found in names.items()}


def _base64_fragments(secret: str) -> set[str]:
    """The base64 characters that the secret alone decides, at each of the three alignments it
    may have in a longer value (standard and URL-safe alphabets)."""
    data = secret.encode("utf-8")
    fragments = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        start = -(-8 * offset // 6)  # the first character with no bit of the padding
        end = 8 * (offset + len(data)) // 6  # past the last one with no bit of what follows
        fragment = encoded[start:end]
        if len(fragment) >= _MIN_B64:
            fragments.add(fragment)
            fragments.add(fragment.replace("+", "-").replace("/", "_"))
    return fragments
