"""What every destination shares: the document to deliver, its failure, the Destination contract.

A destination type is a module of gmid/deliver/ (folder.py, command.py, webdav.py, ...) with

    def read_options(reader: Reader, node: Node, option: str) -> Options
        # its own options, out of the destination's entry in `deliver:` (the common keys of
        # gmid/config/deliver.py are taken out first); problems go to the reader
    def destination(name: str, options: Options) -> Destination
        # the destination, ready to deliver; no I/O needed here

gmid/deliver/registry.py finds the module by the entry's `type:`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gmid.errors import GmidError

MAX_REASON = 500  # characters of a destination's words kept as a failure's reason


@dataclass(frozen=True)
class Delivery:
    """One document going to one destination."""

    key: str  # stable per document and destination: f"{sha256}:{destination}"
    path: Path  # the archived file (read it, never change it)
    name: str  # the archive file name, e.g. "2026-03-04 Telekom 4711.pdf"
    media_type: str
    sha256: str
    # company, date, number, amount, currency, kind, source, source_name, title, received_at;
    # and path, the archive-relative path
    fields: Mapping[str, str | None]
    # 1 on the first try; a later try may find the work of an interrupted one done already
    attempt: int = 1

    def read(self) -> bytes:
        """The document's bytes; DeliveryFailed when its file cannot be read (gone, moved)."""
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise DeliveryFailed(f"cannot read {self.path}: {e.strerror}") from None


class DeliveryFailed(GmidError):
    """A delivery did not happen, in the destination's own words (never a secret).

    permanent: trying again cannot help (refused as it is); retry_after: the destination asked
    for this many seconds of rest (HTTP 429/503 Retry-After).
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Destination(Protocol):
    """Where documents go next: a folder, a command, a WebDAV server, paperless-ngx, a mailbox."""

    name: str

    def deliver(self, item: Delivery, deadline: float) -> str:
        """Deliver one document by `deadline` (a time.monotonic() moment); return the remote
        reference (URL, path, document id, Message-ID).

        Blocking; called from worker threads, several at a time. Idempotent: a second call for
        the same key must not make a second copy. Raises DeliveryFailed.
        """
        ...

    def close(self) -> None:
        """Let go of connections and the like; no deliver() follows."""
        ...


def reason(text: str, limit: int = MAX_REASON) -> str:
    """A destination's words as a failure's reason: one line, printable, bounded."""
    line = " ".join(text.split())
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[: limit - 1] + "…"
