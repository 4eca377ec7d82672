"""Reading the documents filed before gmid read documents (or by an older reader) again.

reindex() reads every document whose read_version is older than the reader's, one at a time,
oldest first, and records each as read once its fields are stored: stopped anywhere (Ctrl-C,
kill -9, the daemon stopping), it goes on where it stopped. What a document says better than
what its source said updates its row, and renames its file once when its name changes (see
rename.py). `gmid reindex` runs it with the daemon stopped; the daemon runs it in a thread of
its own at start, so that ingest goes on meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gmid.archive.filing import UNKNOWN_COMPANY, better, company_for, known_fields
from gmid.archive.fs import clean_relative
from gmid.archive.merging import read_timeout, rename_for, rules_of
from gmid.archive.rows import IndexedDocument, default_origin

if TYPE_CHECKING:
    from gmid.archive.archive import Archive

logger = logging.getLogger(__name__)

MAX_READ = 64 * 1024 * 1024  # bytes of a file read (the readers cap PDFs at 32 MB)
BATCH = 50


@dataclass
class Progress:
    """How far a reindex got: documents read of those to read, and of them renamed."""

    done: int = 0
    total: int = 0
    renamed: int = 0
    missing: int = 0  # files not found: `gmid verify` tells more


def reindex(
    archive: Archive,
    *,
    progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Read every document an older reader read; return how far it got."""
    from gmid.documents.fields import READER_VERSION

    index = archive.index
    state = Progress(total=index.unread_count(READER_VERSION))
    after = 0
    while not (stop and stop.is_set()):
        # From the last one on: a document left unread is not read twice in one run.
        docs = index.unread(READER_VERSION, after=after, limit=BATCH)
        if not docs:
            break
        for doc in docs:
            if stop and stop.is_set():
                break
            after = doc.id
            state.done += 1
            outcome = read_again(archive, doc, READER_VERSION)
            state.renamed += outcome == "renamed"
            state.missing += outcome == "missing"
            if progress:
                progress(state)
    return state


def _read_file(archive: Archive, path: str) -> bytes | None:
    """A filed document's bytes, never through a symlink; None if it is not there."""
    if not clean_relative(path):
        return None
    try:
        fd = os.open(archive.root / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_READ)


def read_again(archive: Archive, doc: IndexedDocument, version: int) -> str:
    """Read one filed document and store what it says better; "read", "renamed" or "missing"."""
    data = _read_file(archive, doc.path)
    if data is None:
        archive.index.update(doc.id, read_version=version)  # `gmid verify` reports the file
        return "missing"
    fields_from = archive.index.fields_from(doc.id)
    origin = default_origin(doc.source)
    known = known_fields(doc.date, doc.number, doc.amount)
    rules = rules_of(archive, doc.company)
    item = (data, doc.media_type, known, origin, rules, archive.ocr)
    [reading] = archive.reader.read_all([item], read_timeout(archive))
    if reading is None:  # not read in time: marked, so that a hostile file is not read forever
        archive.index.update(doc.id, read_version=version)
        return "read"
    with archive.lock:
        current = archive.index.get(doc.id)
        if current is None or current.path != doc.path:
            return "read"  # changed meanwhile: read again next time
        changes = better(reading, current, fields_from)
        changes["fields_from"] = fields_from | {k: reading.origins[k] for k in changes}
        if current.company == UNKNOWN_COMPANY and (
            found := company_for(reading, archive.companies)
        ):
            changes["company"], changes["fields_from"]["company"] = found
        if reading.problems is not None:
            changes["problems"] = reading.problems
        changes["text"] = reading.text
        changes["read_version"] = version
        updated = rename_for(archive, current, changes)
    return "renamed" if updated.path != doc.path else "read"


class Reindexer:
    """The daemon's background reindex: a thread of its own, so that ingest goes on."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self.progress = Progress()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start reading what is unread, if anything is."""
        self._thread = threading.Thread(target=self._run, name="gmid-reindex", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from gmid.documents.fields import READER_VERSION

            if not self.archive.index.unread_count(READER_VERSION):
                return
            logger.info("reading the documents filed before (gmid reindex) in the background")
            done = reindex(self.archive, progress=self._note, stop=self._stop)
            logger.info("read %d document(s), %d renamed", done.done, done.renamed)
        except Exception:  # the index closed under it at stop, a disk error: ingest goes on
            if not self._stop.is_set():
                logger.exception("reading the documents filed before stopped")

    def _note(self, progress: Progress) -> None:
        self.progress = progress
        if progress.done % 500 == 0:
            logger.info("read %d of %d documents filed before", progress.done, progress.total)

    async def stop(self) -> None:
        """Stop after the document being read (its rename, if any, finished)."""
        import asyncio

        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)
