"""The archive: every document written once, durably, under a name from the template."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

from gmid import failpoints
from gmid.archive import merging, rename
from gmid.archive.filing import PDF, Reader, same_invoice
from gmid.archive.fs import (
    DIR_FLAGS,
    TMP_DIR,
    clean_relative,
    fsync_dir,
    inside,
    looks_stored,
    make_dir,
    make_own_dir,
    place,
    remove_temp_files,
    same_content,
    unlink_quietly,
    write_temps,
)
from gmid.archive.index import Index, IndexedDocument
from gmid.archive.naming import check_template, fit, render, sanitize_value
from gmid.archive.quarantine import Quarantine
from gmid.errors import ArchiveError

logger = logging.getLogger(__name__)

DIR_MODE = 0o750
FILE_MODE = 0o640
PRIVATE_DIR_MODE = 0o700
MAX_COLLISIONS = 10_000

_EXT = re.compile(r"(\.[A-Za-z0-9]{1,16})?")
_NOT_RESTORED = (
    "not restored %s: something else is at its name (another size, or not a file), and gmid "
    "never replaces a file; move it away and send the document again"
)


@dataclass(frozen=True)
class Incoming:
    """A document to archive, with what its source knows about it."""

    data: bytes
    media_type: str
    ext: str
    source: str
    source_name: str
    company: str
    original_name: str | None = None
    message_id: str | None = None
    source_ref: str | None = None
    received_at: datetime | None = None
    date: date | None = None
    number: str | None = None
    amount: str | None = None


@dataclass(frozen=True)
class Stored:
    """The outcome of Archive.store()."""

    document: IndexedDocument
    created: bool
    absolute_path: Path
    restored: bool = False  # indexed before, but its file was gone: written again, same row


def _prepare(doc: Incoming) -> tuple[Incoming, str, datetime]:
    """Check a document before anything is written; return it with its sha256 and arrival."""
    if not _EXT.fullmatch(doc.ext):
        raise ArchiveError(f"bad file extension {doc.ext!r}: expected something like '.pdf'")
    received_at = doc.received_at or datetime.now(UTC)
    if received_at.utcoffset() is None:
        raise ValueError("Incoming.received_at must be timezone-aware")
    return doc, hashlib.sha256(doc.data).hexdigest(), received_at


def _row(
    doc: Incoming, sha: str, received_at: datetime, path: str, reading: Any = None
) -> dict[str, Any]:
    """The index row of a document filed at path, with what its reading found."""
    return merging.read_fields(reading) | {
        "sha256": sha,
        "path": path,
        "size": len(doc.data),
        "media_type": doc.media_type,
        "source": doc.source,
        "source_name": doc.source_name,
        "company": doc.company,
        "received_at": received_at,
        "original_name": doc.original_name,
        "message_id": doc.message_id,
        "source_ref": doc.source_ref,
        "date": doc.date,
        "number": doc.number,
        "amount": doc.amount,
    }


class Archive:
    """The archive folder: stores documents once, durably, and indexes them."""

    def __init__(
        self, root: Path, template: str, index: Index, tz: tzinfo, *, quarantine_dir: Path
    ):
        """Prepare the archive at root, filing documents by template; mails go to quarantine_dir."""
        check_template(template)
        self.template = template
        self.index = index
        self.tz = tz
        try:
            make_dir(Path(root), DIR_MODE)
            self.root = Path(os.path.realpath(root))
            # One hidden temp folder on the archive's filesystem: rename/link is atomic, a crash
            # never leaves a stray file where the user browses, and recover() empties just this.
            self._tmp = self.tmp_dir = self.root / TMP_DIR
            make_own_dir(self._tmp, PRIVATE_DIR_MODE)
            self._quarantine = Quarantine(quarantine_dir, index)
            self.quarantine_dir = self._quarantine.folder
        except OSError as exc:
            raise ArchiveError(f"cannot prepare the archive {root}: {exc}") from exc
        self._lock = self.lock = threading.Lock()  # held while names and rows change
        # The companies of the config (name, vat_ids, ibans): a document's seller names one.
        self.companies: Sequence[Any] = ()
        self.ocr: Any = None  # the config's ocr: options, for scanned PDFs (None: not read)
        self.read_documents = True  # read each document before filing it (understand.py)
        self.reader = Reader()
        # Per (folder, stem, ext): where the collision chain's free names start, and names
        # in it that exist on disk without an index row. Guarded by the lock.
        self._next_suffix: dict[tuple[str, str, str], int] = {}
        self._unclaimed: dict[tuple[str, str, str], list[str]] = {}

    def recover(self) -> int:
        """Remove the temp files a crash left behind (the quarantine's too); return how many."""
        removed = remove_temp_files(self._tmp) + self._quarantine.recover()
        rename.recover(self)
        if removed:
            logger.info("removed %d temp file(s) left by an interrupted write", removed)
        return removed

    def path_for(self, doc: Incoming, sha: str, received_at: datetime) -> list[str]:
        """Return the sanitised archive-relative path components the template gives doc."""
        received = received_at.astimezone(self.tz)
        values = {
            "company": sanitize_value(doc.company),
            "date": doc.date or received.date(),
            "received": received,
            "number": sanitize_value(doc.number),
            "source": sanitize_value(doc.source),
            "source_name": sanitize_value(doc.source_name),
            "sha": sha[:12],
            "ext": doc.ext,
        }
        return render(self.template, values, doc.ext)

    def store(self, doc: Incoming) -> Stored:
        """Archive doc durably and index it; same bytes already archived are not written again.

        Unless their file is gone from its indexed path: then it is written there again, the
        same way, under the same index row (restored, not created). Whatever else is at that
        path is left as it is: gmid never replaces a file.
        """
        return self.store_many([doc])[0]

    def store_many(self, docs: Sequence[Incoming]) -> list[Stored]:
        """Archive several documents as store() does one, returning when all are durable.

        Each new document is read first (gmid/documents/understand.py): its own date, number
        and amount name it, and its seller its company when the source named none. The same
        invoice filed before in other bytes is kept once: this way is recorded as one more
        source, and what it knows better updates the document (renamed once if its name
        changes; see rename.py). An e-invoice XML that came with a PDF is kept beside it.

        Every file is written and fsynced, linked to its name, its folder fsynced, and then
        its index row committed, as for one document; a batch shares the folder fsyncs and
        the index transaction. A crash before the commit leaves files without rows, which the
        next store of the same bytes adopts (see _link), as after a crash in store().
        """
        prepared = [_prepare(doc) for doc in docs]
        results: list[Stored | None] = [None] * len(docs)
        first: dict[str, int] = {}  # sha -> the batch position that stores it
        temps: dict[int, Path] = {}
        try:
            todo = self._to_write(prepared, results, first)
            # The slow part (write + fsync) runs outside the lock so threads overlap their I/O;
            # the files of a batch are written by several threads, as their fsyncs then overlap,
            # and while the documents are read.
            data = {i: prepared[i][0].data for i in todo}
            readings, pairs = merging.understand_batch(
                self, prepared, todo, lambda: write_temps(self._tmp, data, temps)
            )
            with self._lock:
                created = self._link_all(todo, prepared, temps, results, readings, pairs)
                failpoints.hit("archive-linked")  # the files have their names, no rows yet
                rows = self.index.add_many(
                    [_row(*prepared[i], path, readings.get(i)) for i, path in created]
                )
                by_position = dict(zip((i for i, _ in created), rows, strict=True))
                for xml_at, pdf_at in pairs.items():
                    if pdf_at in by_position:
                        xml, _, received = prepared[xml_at]
                        kept = merging.beside_pdf(self, by_position[pdf_at], xml, received)
                        results[xml_at], by_position[pdf_at] = kept, kept.document
        except OSError as exc:
            raise ArchiveError(f"cannot write to the archive {self.root}: {exc}") from exc
        finally:
            for tmp in temps.values():
                unlink_quietly(tmp)
        for i, path in created:
            doc, document = prepared[i][0], by_position[i]
            logger.info("archived %s (%d bytes) from %s", path, len(doc.data), doc.source_name)
            results[i] = Stored(document, True, self.root / path)
        for i, (_, sha, _) in enumerate(prepared):
            if results[i] is None and i in pairs:  # beside a PDF filed as another invoice
                results[i] = results[pairs[i]]
            if results[i] is None:  # the same bytes as an earlier document of the batch
                same = results[first[sha]]
                assert same is not None
                results[i] = Stored(same.document, False, same.absolute_path)
        return [r for r in results if r is not None]

    def _to_write(
        self,
        prepared: list[tuple[Incoming, str, datetime]],
        results: list[Stored | None],
        first: dict[str, int],
    ) -> list[int]:
        """Return the batch positions whose documents are to be written.

        A document archived before, its file in place, gets its result now; so does one that
        came before as another way of a filed invoice (recorded as its source). Of the same
        bytes twice in the batch only the first is written; `first` says where it is.
        """
        todo = []
        for i, (doc, sha, received_at) in enumerate(prepared):
            if first.setdefault(sha, i) != i:
                continue
            existing = self.index.by_any_sha256(sha)
            if (existing is not None and existing.sha256 != sha) or (
                existing is not None and not self._gone(existing)
            ):
                self.add_source(existing, doc, sha, received_at)
                results[i] = Stored(existing, False, self.root / existing.path)
            else:
                todo.append(i)
        return todo

    def add_source(self, doc: IndexedDocument, new: Incoming, sha: str, received: datetime):
        """Record another way a filed document came (a mail, a portal), if it is new."""
        self.index.add_source(
            doc.id,
            source=new.source,
            source_name=new.source_name,
            ref=new.source_ref,
            message_id=new.message_id,
            sha256=sha,
            original_name=new.original_name,
            received_at=received,
        )

    def _link_all(
        self,
        todo: list[int],
        prepared: list[tuple[Incoming, str, datetime]],
        temps: dict[int, Path],
        results: list[Stored | None],
        readings: dict[int, Any],
        pairs: dict[int, int],
    ) -> list[tuple[int, str]]:
        """Give the written temp files their names; return the new ones as (position, path).

        Called under the lock. A document filed meanwhile (or whose file is gone: see _restore),
        and one that is the same invoice as a filed one, gets its result here instead. The
        folders linked into are fsynced before this returns: the new names are durable before
        their rows.
        """
        created = []
        folders: dict[str, int] = {}
        try:
            for i in todo:
                if i in pairs:
                    continue  # kept beside its PDF once that is filed
                doc, sha, received_at = prepared[i]
                existing = self.index.by_sha256(sha)
                if existing is not None:
                    again = self._gone(existing) and self._restore(temps[i], existing, doc)
                    results[i] = Stored(existing, False, self.root / existing.path, again)
                    continue
                reading = readings.get(i)
                same = None
                if reading is not None:
                    same = same_invoice(self.index, reading, doc.company, doc.media_type)
                if same is not None and same.media_type.endswith("xml") and doc.media_type == PDF:
                    results[i] = merging.pdf_for_xml(self, same, temps[i], *prepared[i], reading)
                    if results[i] is not None:
                        continue
                elif same is not None:
                    results[i] = merging.merge_into(self, same, *prepared[i], reading)
                    continue
                parts = self.path_for(doc, sha, received_at)
                path = self._link(temps[i], parts, doc.ext, sha, len(doc.data), folders)
                created.append((i, path))
            for fd in folders.values():
                fsync_dir(fd)
        finally:
            for fd in folders.values():
                os.close(fd)
        return created

    def file_gone(self, sha: str) -> bool:
        """Tell whether the document with these bytes is indexed but its file is gone.

        The next store() of the same bytes writes it back (see _restore).
        """
        row = self.index.by_sha256(sha)
        return row is not None and self._gone(row)

    def _gone(self, row: IndexedDocument) -> bool:
        """Tell whether nothing is at the row's path: its file is to be written again."""
        if not clean_relative(row.path):
            return False  # not a path gmid writes: `gmid verify` reports the row
        there = looks_stored(self.root / row.path, row.size)
        if there is False:
            logger.warning(_NOT_RESTORED, row.path)
        return there is None

    def _restore(self, tmp: Path, row: IndexedDocument, doc: Incoming) -> bool:
        """Write the gone file of an indexed document again at its path; False if name is taken.

        Called under the lock, right after _gone, and written as _link writes a new file: the
        fsynced temp file is linked to the name, never replacing a file, and the folder fsynced.
        The row is not touched: it was committed after the file was first linked and names it
        still, so a crash anywhere here leaves it right. Before the link (or, on power loss,
        before the folder's fsync) the file is still gone, as it was, and at most a temp file is
        left for recover() to remove; after it the file is back.
        """
        *folders, name = row.path.split("/")
        dir_fd = self.open_folder(folders)
        try:
            if not place(tmp, dir_fd, name):
                # Taken since _gone looked, and not by gmid (under the lock): left as it is.
                if not looks_stored(name, row.size, dir_fd):
                    logger.warning(_NOT_RESTORED, row.path)
                return False
            fsync_dir(dir_fd)
        finally:
            os.close(dir_fd)
        logger.info("restored %s (%d bytes) from %s", row.path, row.size, doc.source_name)
        return True

    def open_folder(self, folders: list[str]) -> int:
        """Create the folders below the root, refusing any that leads outside; return an fd."""
        root = str(self.root)
        logical = self.root
        for folder in folders:
            logical = logical / folder
            # Checked before mkdir: a symlink pointing outside must not get folders created there.
            real = os.path.realpath(logical)
            if not inside(real, root):
                raise ArchiveError(
                    f"{logical} leads outside the archive (to {real}); refusing to write there"
                )
            make_dir(logical, DIR_MODE)
        real = os.path.realpath(logical)
        if not inside(real, root):
            raise ArchiveError(f"{logical} leads outside the archive; refusing to write there")
        # O_NOFOLLOW: the checked real path must not have become a symlink in the meantime.
        return os.open(real, DIR_FLAGS)

    def _link(
        self,
        tmp: Path,
        parts: list[str],
        ext: str,
        sha: str,
        size: int,
        open_folders: dict[str, int],
    ) -> str:
        """Give the temp file its final name (suffixed on collision); return the relative path.

        Called under the lock. The first store of a name walks its collision chain from the
        start; later ones start where the last one ended, so a day of many same-named
        documents costs one walk, not one per document. Names found taken but not indexed
        (a file left by a crash, or the user's own) are remembered and offered for adoption.
        The folder stays open in `open_folders` (by relative path): the caller fsyncs it.
        """
        folders, name = parts[:-1], parts[-1]
        if ext and name.endswith(ext):
            stem, ext = name[: -len(ext)], ext
        else:
            stem, ext = name, ""
        key = ("/".join(folders), stem, ext)
        unclaimed = self._unclaimed.setdefault(key, [])
        if key[0] not in open_folders:
            open_folders[key[0]] = self.open_folder(folders)
        dir_fd = open_folders[key[0]]
        for candidate in unclaimed:
            if same_content(dir_fd, candidate, sha, size):
                unclaimed.remove(candidate)
                return self._adopt([*folders, candidate])
        for n in range(self._next_suffix.get(key, 1), MAX_COLLISIONS):
            candidate = name if n == 1 else fit(stem, ext, f" ({n})")
            relative = "/".join([*folders, candidate])
            if self.index.by_path(relative) is not None:
                continue  # an indexed document owns this name, even if its file is gone
            if place(tmp, dir_fd, candidate):
                self._next_suffix[key] = n + 1
                return relative
            if same_content(dir_fd, candidate, sha, size):
                return self._adopt([*folders, candidate])
            unclaimed.append(candidate)
        raise ArchiveError(f"too many files named like {'/'.join(parts)} in the archive")

    def _adopt(self, parts: list[str]) -> str:
        # A crash between the final name and the index row left this file: index it, no copy.
        relative = "/".join(parts)
        logger.info("adopting %s, archived before an interruption", relative)
        return relative

    def quarantine(self, raw: bytes, reason: str, *, source: str, source_name: str) -> Path:
        """Keep a mail that could not be processed, durably, with why; return its path.

        See gmid/archive/quarantine.py.
        """
        return self._quarantine.keep(raw, reason, source=source, source_name=source_name)
