"""The archive: every document written once, durably, under a name from the template."""

from __future__ import annotations

import errno
import hashlib
import itertools
import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import BinaryIO

from gmid.errors import ArchiveError
from gmid.index import Index, IndexedDocument
from gmid.naming import check_template, fit, render, sanitize_value

logger = logging.getLogger(__name__)

TMP_DIR = ".gmid-tmp"
DIR_MODE = 0o750
FILE_MODE = 0o640
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
MAX_COLLISIONS = 10_000
# A folder opened to work in: never through a symlink swapped in since it was checked.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_EXT = re.compile(r"(\.[A-Za-z0-9]{1,16})?")
# Filesystems without hard links (exFAT, some network shares) answer link() with one of these.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})
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


def inside(path: str, root: str) -> bool:
    """Tell whether the real path lies in (or is) the real root."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def clean_relative(path: str) -> bool:
    """Tell whether an index path is a plain relative path that stays in the archive."""
    parts = path.split("/")
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def file_sha256(file: BinaryIO, head: int = 0) -> tuple[str, int, bytes]:
    """Hash an open file to its end: (sha256 hex digest, bytes read, its first head bytes)."""
    first = file.read(head) if head else b""
    digest = hashlib.sha256(first)
    size = len(first)
    buffer = bytearray(1 << 18)
    view = memoryview(buffer)
    while n := file.readinto(buffer):
        digest.update(view[:n])
        size += n
    return digest.hexdigest(), size, first


def _fsync_dir(path: str | Path) -> None:
    """Make the entries of a folder (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dir(path: Path, mode: int) -> None:
    """Create path (and parents) if missing; folders created here get exactly mode."""
    if path.is_dir():
        return
    _make_dir(path.parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # another thread was faster; the is_dir check of the caller's open will tell
    os.chmod(path, mode)  # the umask must not change what we promise
    _fsync_dir(path.parent)


def _write_temp(folder: Path, data: bytes, mode: int) -> Path:
    """Write data to a new uniquely named file in folder, fsynced, and return its path."""
    path = folder / f"{secrets.token_hex(12)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(path)
        raise
    os.close(fd)
    return path


def _unlink_quietly(path: Path) -> None:
    """Remove a temp file that may already be gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot remove temp file %s: %s", path, exc.strerror)


def _place(tmp: Path, dir_fd: int, name: str) -> bool:
    """Give the temp file a final name without ever replacing a file; False if name is taken."""
    try:
        # link() fails if the name exists, where rename() would silently replace it.
        os.link(tmp, name, dst_dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return False
    except FileNotFoundError:
        # No hard links here: rename is still atomic; the archive lock keeps us from racing it.
        os.rename(tmp, name, dst_dir_fd=dir_fd)
        return True


def _same_content(dir_fd: int, name: str, sha: str, size: int) -> bool:
    """Tell whether the regular file name in dir_fd holds exactly the bytes hashing to sha."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd, "rb", buffering=0) as file:
            return file_sha256(file)[0] == sha
    except (FileNotFoundError, PermissionError):
        # Removed since it was found taken (the user's stray file), or not ours to read:
        # not a file to adopt. Raising would fail every later store of this name.
        return False


def _looks_stored(name: str | Path, size: int, dir_fd: int | None = None) -> bool | None:
    """Tell whether name is a regular file of size bytes; None if nothing is at name.

    A symlink at name is not followed (it is not the document). The content is not read:
    checking it is `gmid verify`'s work, not that of every duplicate delivery.
    """
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None  # the file, or a folder above it, is gone
    except NotADirectoryError:
        return False  # a file where a folder of the path belongs
    return stat.S_ISREG(info.st_mode) and info.st_size == size


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
            _make_dir(Path(root), DIR_MODE)
            self.root = Path(os.path.realpath(root))
            # One hidden temp folder on the archive's filesystem: rename/link is atomic, a crash
            # never leaves a stray file where the user browses, and recover() empties just this.
            self._tmp = self.root / TMP_DIR
            _make_dir(self._tmp, PRIVATE_DIR_MODE)
            self.quarantine_dir = Path(quarantine_dir)
            self._quarantine_tmp = self.quarantine_dir / TMP_DIR
            _make_dir(self._quarantine_tmp, PRIVATE_DIR_MODE)
        except OSError as exc:
            raise ArchiveError(f"cannot prepare the archive {root}: {exc}") from exc
        self._lock = threading.Lock()
        # Per (folder, stem, ext): where the collision chain's free names start, and names
        # in it that exist on disk without an index row. Guarded by the lock.
        self._next_suffix: dict[tuple[str, str, str], int] = {}
        self._unclaimed: dict[tuple[str, str, str], list[str]] = {}

    def recover(self) -> int:
        """Remove the temp files a crash left behind; return how many."""
        removed = 0
        for folder in (self._tmp, self._quarantine_tmp):
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        continue  # we never create folders here; not ours to remove
                    os.unlink(entry.path)
                    removed += 1
        if removed:
            logger.info("removed %d temp file(s) left by an interrupted write", removed)
        return removed

    def _path_for(self, doc: Incoming, sha: str, received_at: datetime) -> list[str]:
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
        if not _EXT.fullmatch(doc.ext):
            raise ArchiveError(f"bad file extension {doc.ext!r}: expected something like '.pdf'")
        received_at = doc.received_at or datetime.now(UTC)
        if received_at.utcoffset() is None:
            raise ValueError("Incoming.received_at must be timezone-aware")
        sha = hashlib.sha256(doc.data).hexdigest()
        tmp = None
        try:
            existing = self.index.by_sha256(sha)
            if existing is not None and not self._gone(existing):
                return Stored(existing, False, self.root / existing.path)
            # The slow part (write + fsync) runs outside the lock so threads overlap their I/O.
            tmp = _write_temp(self._tmp, doc.data, FILE_MODE)
            with self._lock:
                existing = self.index.by_sha256(sha)
                if existing is not None:  # filed meanwhile, or its file is gone: see _restore
                    restored = self._gone(existing) and self._restore(tmp, existing, doc)
                    return Stored(existing, False, self.root / existing.path, restored)
                parts = self._path_for(doc, sha, received_at)
                path = self._link(tmp, parts, doc.ext, sha, len(doc.data))
                document = self.index.add(
                    sha256=sha,
                    path=path,
                    size=len(doc.data),
                    media_type=doc.media_type,
                    source=doc.source,
                    source_name=doc.source_name,
                    company=doc.company,
                    received_at=received_at,
                    original_name=doc.original_name,
                    message_id=doc.message_id,
                    source_ref=doc.source_ref,
                    date=doc.date,
                    number=doc.number,
                    amount=doc.amount,
                )
        except OSError as exc:
            raise ArchiveError(f"cannot write to the archive {self.root}: {exc}") from exc
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)
        logger.info("archived %s (%d bytes) from %s", path, len(doc.data), doc.source_name)
        return Stored(document, True, self.root / path)

    def _gone(self, row: IndexedDocument) -> bool:
        """Tell whether nothing is at the row's path: its file is to be written again."""
        if not clean_relative(row.path):
            return False  # not a path gmid writes: `gmid verify` reports the row
        there = _looks_stored(self.root / row.path, row.size)
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
        dir_fd = self._open_folder(folders)
        try:
            if not _place(tmp, dir_fd, name):
                # Taken since _gone looked, and not by gmid (under the lock): left as it is.
                if not _looks_stored(name, row.size, dir_fd):
                    logger.warning(_NOT_RESTORED, row.path)
                return False
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        logger.info("restored %s (%d bytes) from %s", row.path, row.size, doc.source_name)
        return True

    def _open_folder(self, folders: list[str]) -> int:
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
            _make_dir(logical, DIR_MODE)
        real = os.path.realpath(logical)
        if not inside(real, root):
            raise ArchiveError(f"{logical} leads outside the archive; refusing to write there")
        # O_NOFOLLOW: the checked real path must not have become a symlink in the meantime.
        return os.open(real, DIR_FLAGS)

    def _link(self, tmp: Path, parts: list[str], ext: str, sha: str, size: int) -> str:
        """Give the temp file its final name (suffixed on collision); return the relative path.

        Called under the lock. The first store of a name walks its collision chain from the
        start; later ones start where the last one ended, so a day of many same-named
        documents costs one walk, not one per document. Names found taken but not indexed
        (a file left by a crash, or the user's own) are remembered and offered for adoption.
        """
        folders, name = parts[:-1], parts[-1]
        if ext and name.endswith(ext):
            stem, ext = name[: -len(ext)], ext
        else:
            stem, ext = name, ""
        key = ("/".join(folders), stem, ext)
        unclaimed = self._unclaimed.setdefault(key, [])
        dir_fd = self._open_folder(folders)
        try:
            for candidate in unclaimed:
                if _same_content(dir_fd, candidate, sha, size):
                    unclaimed.remove(candidate)
                    return self._adopt([*folders, candidate])
            for n in range(self._next_suffix.get(key, 1), MAX_COLLISIONS):
                candidate = name if n == 1 else fit(stem, ext, f" ({n})")
                relative = "/".join([*folders, candidate])
                if self.index.by_path(relative) is not None:
                    continue  # an indexed document owns this name, even if its file is gone
                if _place(tmp, dir_fd, candidate):
                    os.fsync(dir_fd)
                    self._next_suffix[key] = n + 1
                    return relative
                if _same_content(dir_fd, candidate, sha, size):
                    return self._adopt([*folders, candidate])
                unclaimed.append(candidate)
        finally:
            os.close(dir_fd)
        raise ArchiveError(f"too many files named like {'/'.join(parts)} in the archive")

    def _adopt(self, parts: list[str]) -> str:
        # A crash between the final name and the index row left this file: index it, no copy.
        relative = "/".join(parts)
        logger.info("adopting %s, archived before an interruption", relative)
        return relative

    def quarantine(self, raw: bytes, reason: str, *, source: str, source_name: str) -> Path:
        """Keep a mail that could not be processed, durably, with why; return its path."""
        sha = hashlib.sha256(raw).hexdigest()
        now = datetime.now(UTC)
        note = (
            f"reason: {reason}\nsource: {source}\nsource_name: {source_name}\n"
            f"time: {now.isoformat(timespec='seconds')}\nsha256: {sha}\nsize: {len(raw)}\n"
        )
        base = f"{now:%Y%m%dT%H%M%SZ}-{sha[:12]}"
        mail_tmp = note_tmp = None
        try:
            mail_tmp = _write_temp(self._quarantine_tmp, raw, PRIVATE_FILE_MODE)
            note_tmp = _write_temp(self._quarantine_tmp, note.encode(), PRIVATE_FILE_MODE)
            dir_fd = os.open(self.quarantine_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for n in itertools.count(1):
                    stem = base if n == 1 else f"{base}-{n}"
                    if _place(mail_tmp, dir_fd, f"{stem}.eml"):
                        break
                # The .eml name is ours now, so the note's name next to it is free.
                _place(note_tmp, dir_fd, f"{stem}.reason.txt")
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ArchiveError(f"cannot quarantine a mail in {self.quarantine_dir}: {exc}") from exc
        finally:
            for tmp in (mail_tmp, note_tmp):
                if tmp is not None:
                    _unlink_quietly(tmp)
        path = self.quarantine_dir / f"{stem}.eml"
        self.index.record_quarantine(str(path), reason, source, source_name)
        logger.warning("quarantined a mail from %s as %s: %s", source_name, path.name, reason)
        return path
