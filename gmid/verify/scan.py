"""What `gmid verify` reads, changing nothing: the daemon's lock, the folder, the index, hashes.

Nothing here follows a symlink or waits on a fifo: the folder is walked and its files opened
with O_NOFOLLOW (and O_NONBLOCK), and the index is opened read-only, so verify can run beside
the daemon. Comparing what was read is gmid/verify/check.py's work.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from gmid.archive.fs import DIR_FLAGS, TMP_DIR, file_sha256
from gmid.archive.schema import MIGRATIONS
from gmid.archive.statelock import LOCK_FILE
from gmid.errors import GmidError

_HEAD = 4096  # bytes kept of an unindexed file, to sniff what it is


class VerifyRefused(GmidError):
    """verify cannot run as asked (no index, or --repair while the daemon runs)."""

    exit_code = 2


class Row(NamedTuple):
    """The columns of an index row verify compares with the folder."""

    id: int
    sha256: str
    path: str
    size: int


@dataclass
class Tree:
    """What a walk of the archive found, by archive-relative path."""

    files: dict[str, os.stat_result] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # symlink -> its target
    special: dict[str, str] = field(default_factory=dict)  # fifo, socket, device -> what
    unreadable: dict[str, str] = field(default_factory=dict)  # folder -> why


class Hashed(NamedTuple):
    """A file as read: its sha256, its size, and its head where it is to be sniffed."""

    sha256: str
    size: int
    head: bytes


# The daemon's state lock


def daemon_pid(state_dir: Path) -> str | None:
    """Return the pid of the daemon holding the state lock (as it wrote it), or None."""
    path = state_dir / LOCK_FILE
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    held = _flock_held(info)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if held is None:  # no /proc/locks: ask flock itself, for a moment
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                held = True
            else:
                held = False
                fcntl.flock(fd, fcntl.LOCK_UN)
        return (os.pread(fd, 32, 0).decode(errors="replace").strip() or "?") if held else None
    finally:
        os.close(fd)


def _flock_held(info: os.stat_result) -> bool | None:
    """Tell from /proc/locks, without touching the lock, whether someone flocks this file."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    want = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 123 fe:00:4567 0 EOF"; a waiter has "->" after the number.
        # Any type: over NFS the kernel emulates flock with a POSIX lock.
        if len(fields) >= 6 and fields[1] != "->" and fields[5] == want:
            return True
    return False


# The folder and the index


def walk(root: Path, tree: Tree) -> None:
    """Record every entry below root without following a symlink; skip the top temp folder."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            # O_NOFOLLOW: a folder swapped for a symlink since it was listed is not entered.
            fd = os.open(root / rel_dir, DIR_FLAGS)
        except OSError as exc:
            tree.unreadable[rel_dir] = exc.strerror or str(exc)
            continue
        try:
            with os.scandir(fd) as entries:
                listed = list(entries)
            for entry in listed:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone since the listing
                if stat.S_ISDIR(info.st_mode):
                    if rel != TMP_DIR:
                        stack.append(rel)
                elif stat.S_ISREG(info.st_mode):
                    tree.files[rel] = info
                elif stat.S_ISLNK(info.st_mode):
                    try:
                        tree.links[rel] = os.readlink(entry.name, dir_fd=fd)
                    except OSError:
                        tree.links[rel] = "?"
                else:
                    tree.special[rel] = _file_type(info.st_mode)
        finally:
            os.close(fd)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "not a regular file"


def open_index(path: Path) -> sqlite3.Connection:
    """Open the index read-only; refuse one this gmid cannot read."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
        db.execute("PRAGMA busy_timeout = 10000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise VerifyRefused(f"cannot read the index {path}: {exc}") from exc
    if not 1 <= version <= len(MIGRATIONS):
        db.close()
        raise VerifyRefused(f"index {path} has schema version {version}: not one gmid can verify")
    return db


def read_rows(db: sqlite3.Connection, paths: list[str] | None = None) -> list[Row]:
    """All document rows in one statement (one consistent snapshot), or those with paths."""
    sql = "SELECT id, sha256, path, size FROM documents"
    if paths is None:
        return [Row(*r) for r in db.execute(sql)]
    found = []
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        where = f" WHERE path IN ({', '.join('?' * len(chunk))})"
        found += [Row(*r) for r in db.execute(sql + where, chunk)]
    return found


def temp_files(folder: Path) -> list[tuple[str, os.stat_result]]:
    """The files in a temp folder (name, lstat), as Archive.recover() would remove them."""
    found = []
    try:
        fd = os.open(folder, DIR_FLAGS)  # a symlink here is reported by the walk, not entered
    except OSError:
        return found
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # the daemon finished that one meanwhile
                if not stat.S_ISDIR(info.st_mode):
                    found.append((entry.name, info))
    finally:
        os.close(fd)
    return found


# Hashing


def hash_file(root: Path, rel: str, walked: os.stat_result, keep_head: bool) -> Hashed | str:
    """Hash the walked regular file at rel; a string says why it could not be read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(root / rel, flags)
    except OSError as exc:
        return exc.strerror or str(exc)
    with os.fdopen(fd, "rb", buffering=0) as file:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (walked.st_dev, walked.st_ino):
            return "replaced while verify ran; run verify again"
        sha, size, head = file_sha256(file, _HEAD)
    return Hashed(sha, size, head if keep_head else b"")


def hash_all(
    root: Path,
    to_hash: list[tuple[str, os.stat_result, Row | None]],
    progress: Callable[[int, int, int], None] | None,
) -> dict[str, Hashed | str]:
    """Hash (rel, lstat, row) files on a few threads (hashlib and reads release the GIL).

    The head of a file is kept only where it is sniffed: files no row names (row None).
    """
    total = len(to_hash)
    results: dict[str, Hashed | str] = {}
    workers = max(1, min(4, os.cpu_count() or 1))
    last = 0.0
    hashed_bytes = 0
    pool = ThreadPoolExecutor(workers, thread_name_prefix="gmid-verify")
    try:
        jobs = pool.map(lambda j: (j[0], hash_file(root, j[0], j[1], j[2] is None)), to_hash)
        for n, (rel, result) in enumerate(jobs, 1):
            results[rel] = result
            if not isinstance(result, str):
                hashed_bytes += result.size
            if progress and (time.monotonic() - last > 0.2 or n == total):
                last = time.monotonic()
                progress(n, total, hashed_bytes)
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C: do not hash the rest first
    return results


# Paths and sizes as told


def show(rel: str) -> str:
    """A path as text that prints and dumps as JSON, even if the name is not UTF-8."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")
