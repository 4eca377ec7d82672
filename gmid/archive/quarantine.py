"""The quarantine: mails gmid could not read, kept whole and privately, each with why.

A mail is kept as `<time>-<sha256 prefix>.eml` with a `.reason.txt` beside it, written as the
archive writes documents (gmid/archive/fs.py: a fsynced temp file in the hidden temp folder,
linked to a name that it never replaces, the folder fsynced), and counted in the index.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from gmid.archive.fs import (
    TMP_DIR,
    fsync_dir,
    make_own_dir,
    place,
    remove_temp_files,
    unlink_quietly,
    write_temp,
)
from gmid.archive.index import Index
from gmid.errors import ArchiveError

logger = logging.getLogger(__name__)

DIR_MODE = 0o700  # a mail may say anything about anyone: owner only
FILE_MODE = 0o600


class Quarantine:
    """The quarantine folder, and the index that counts what is in it."""

    def __init__(self, folder: Path, index: Index):
        """Prepare the folder (and its temp folder); OSError if it cannot be made."""
        self.folder = Path(folder)
        self.index = index
        self._tmp = self.folder / TMP_DIR
        make_own_dir(self._tmp, DIR_MODE)

    def recover(self) -> int:
        """Remove the temp files a crash left behind; return how many."""
        return remove_temp_files(self._tmp)

    def keep(self, raw: bytes, reason: str, *, source: str, source_name: str) -> Path:
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
            mail_tmp = write_temp(self._tmp, raw, FILE_MODE)
            note_tmp = write_temp(self._tmp, note.encode(), FILE_MODE)
            dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for n in itertools.count(1):
                    stem = base if n == 1 else f"{base}-{n}"
                    if place(mail_tmp, dir_fd, f"{stem}.eml"):
                        break
                # The .eml name is ours now, so the note's name next to it is free.
                place(note_tmp, dir_fd, f"{stem}.reason.txt")
                fsync_dir(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ArchiveError(f"cannot quarantine a mail in {self.folder}: {exc}") from exc
        finally:
            for tmp in (mail_tmp, note_tmp):
                if tmp is not None:
                    unlink_quietly(tmp)
        path = self.folder / f"{stem}.eml"
        self.index.record_quarantine(str(path), reason, source, source_name)
        logger.warning("quarantined a mail from %s as %s: %s", source_name, path.name, reason)
        return path
