"""`gmid verify`: check the archive folder against the index, and repair what is safe to repair.

Works while the daemon runs. The daemon files a document in this order (gmid/archive.py): write
and fsync a temp file in `<archive>/.gmid-tmp`, hard-link it to its final name, commit the index
row, unlink the temp file. So the folder is walked first and the index read after it; a file
still without a row is then looked for in the temp folder (same inode: being filed right now)
and in the index once more, and a row whose file the walk missed is looked for on disk again.

Repairs need the daemon stopped: verify takes the daemon's state lock for them. Only what loses
nothing is repaired: temp files left by a crash are removed, a document file no row names is
indexed (adopted, as the daemon adopts a file a crash left between its link and its row), and a
row whose file was moved inside the archive gets the new path. A missing file's row and a file
whose content changed are reported, never "fixed": the row is the only record left of the
document, and a changed file must be restored from a backup, not blessed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from gmid.archive import TMP_DIR, Archive, _inside
from gmid.config import Config
from gmid.errors import GmidError
from gmid.index import MIGRATIONS, Index
from gmid.ingest import UNKNOWN_COMPANY
from gmid.mail import _MEDIA, _sniff, summarize_headers

LOCK_FILE = "daemon.lock"
# While the daemon runs, a temp file is a write in progress; one this old is one it lost.
STALE_TEMP_SECONDS = 600.0
# Without hard links the daemon renames its temp file into place and commits the row right
# after: an unindexed file this young may be that, and is looked up again for a moment.
RECENT_SECONDS = 30.0
GRACE_SECONDS = 2.0
ADOPTED_SOURCE = "archive"
ADOPTED_SOURCE_NAME = "gmid verify"
# gmid never names a file or folder with a leading dot (naming.fit strips it): those and the
# desktop's own files are sync or OS metadata, not documents.
_OS_FILES = frozenset({"thumbs.db", "desktop.ini"})
# Extensions a sniffed type may carry, beyond the one gmid gives it.
_ALIASES = {".jpeg": "jpeg", ".tiff": "tiff"}
_HEAD = 4096
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KIND_ORDER = ("index", "changed", "missing", "moved", "outside", "symlink", "special")
_KIND_ORDER += ("unreadable", "unknown", "copy", "temp")
_LABELS = {"unknown": "UNKNOWN", "changed": "CHANGED", "missing": "MISSING", "moved": "MOVED"}


class VerifyRefused(GmidError):
    """verify cannot run as asked (no index, or --repair while the daemon runs)."""

    exit_code = 2


@dataclass(frozen=True)
class Finding:
    """One thing verify found: its kind, where, what is wrong and what to do."""

    kind: str
    path: str  # relative to the archive folder; absolute for the quarantine's temp files
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "message": self.message, **self.details}


@dataclass
class Report:
    """What one verify run checked, found and repaired."""

    archive: Path
    index: Path
    daemon_pid: str | None
    quick: bool
    rows: int = 0
    files: int = 0
    hashed: int = 0
    hashed_bytes: int = 0
    seconds: float = 0.0
    problems: list[Finding] = field(default_factory=list)
    repaired: list[Finding] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.problems:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "archive": str(self.archive),
            "index": str(self.index),
            "daemon_pid": self.daemon_pid,
            "quick": self.quick,
            "checked": {
                "rows": self.rows,
                "files": self.files,
                "hashed": self.hashed,
                "hashed_bytes": self.hashed_bytes,
                "seconds": round(self.seconds, 3),
            },
            "counts": self.counts(),
            "problems": [f.to_dict() for f in self.problems],
            "repaired": [f.to_dict() for f in self.repaired],
            "in_flight": self.in_flight,
            "ignored": self.ignored,
        }


class _Row(NamedTuple):
    id: int
    sha256: str
    path: str
    size: int


@dataclass
class _Tree:
    """What a walk of the archive found, by archive-relative path."""

    files: dict[str, os.stat_result] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # symlink -> its target
    special: dict[str, str] = field(default_factory=dict)  # fifo, socket, device -> what
    unreadable: dict[str, str] = field(default_factory=dict)  # folder -> why


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


def _take_lock(state_dir: Path) -> int:
    """Hold the daemon's state lock, so that no daemon starts while we repair."""
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise VerifyRefused(
            f"the daemon (pid {pid}) is running on {state_dir}: --repair needs it stopped "
            "(e.g. systemctl --user stop gmid); verify without --repair works while it runs"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


# Reading the folder and the index


def _walk(root: Path, tree: _Tree) -> None:
    """Record every entry below root without following a symlink; skip the top temp folder."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            # O_NOFOLLOW: a folder swapped for a symlink since it was listed is not entered.
            fd = os.open(root / rel_dir, _DIR_FLAGS)
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


def _open_index(path: Path) -> sqlite3.Connection:
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


def _rows(db: sqlite3.Connection, paths: list[str] | None = None) -> list[_Row]:
    """All document rows in one statement (one consistent snapshot), or those with paths."""
    sql = "SELECT id, sha256, path, size FROM documents"
    if paths is None:
        return [_Row(*r) for r in db.execute(sql)]
    found = []
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        where = f" WHERE path IN ({', '.join('?' * len(chunk))})"
        found += [_Row(*r) for r in db.execute(sql + where, chunk)]
    return found


def _temp_files(folder: Path) -> list[tuple[str, os.stat_result]]:
    """The files in a temp folder (name, lstat), as Archive.recover() would remove them."""
    found = []
    try:
        fd = os.open(folder, _DIR_FLAGS)  # a symlink here is reported by the walk, not entered
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


class _Hashed(NamedTuple):
    sha256: str
    size: int
    head: bytes


def _hash(root: Path, rel: str, walked: os.stat_result, keep_head: bool) -> _Hashed | str:
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
        head = file.read(_HEAD)
        digest = hashlib.sha256(head)
        size = len(head)
        buffer = bytearray(1 << 18)
        view = memoryview(buffer)
        while n := file.readinto(buffer):
            digest.update(view[:n])
            size += n
    return _Hashed(digest.hexdigest(), size, head if keep_head else b"")


def _media_type(rel: str, head: bytes) -> str | None:
    """The media type of a file gmid could have filed (type from its bytes, name to match)."""
    ext = os.path.splitext(rel)[1].lower()
    if ext == ".eml":
        summary = summarize_headers(head)
        return "message/rfc822" if summary.message_id or summary.senders else None
    sniffed = _sniff(head)
    if sniffed is None:
        return None
    _kind, media_type, own_ext = _MEDIA[sniffed]
    return media_type if ext == own_ext or _ALIASES.get(ext) == sniffed else None


def _hidden(rel: str) -> bool:
    return any(p.startswith(".") for p in rel.split("/")) or (
        rel.rsplit("/", 1)[-1].lower() in _OS_FILES
    )


def _clean_path(path: str) -> bool:
    """Tell whether an index path is a plain relative path that stays in the archive."""
    parts = path.split("/")
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _link_on(path: str, links: dict[str, str]) -> str | None:
    """The symlink the path is reached through (itself, or a folder above it), if any."""
    parts = path.split("/")
    for n in range(1, len(parts) + 1):
        prefix = "/".join(parts[:n])
        if prefix in links:
            return prefix
    return None


def _show(rel: str) -> str:
    """A path as text that prints and dumps as JSON, even if the name is not UTF-8."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


# The check


def verify(
    config: Config,
    *,
    quick: bool = False,
    repair: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> Report:
    """Check the archive against the index (and repair what is safe, with repair)."""
    started = time.monotonic()
    index_path = config.state_dir / "index.sqlite"
    if not index_path.is_file():
        raise VerifyRefused(f"no index at {index_path}: has gmid ever run with this config?")
    if not config.archive.dir.is_dir():
        raise VerifyRefused(f"the archive folder {config.archive.dir} does not exist")
    root = Path(os.path.realpath(config.archive.dir))
    lock_fd = _take_lock(config.state_dir) if repair else None
    try:
        pid = None if repair else daemon_pid(config.state_dir)
        report = Report(root, index_path, pid, quick)
        _check(report, config, root, progress)
        if repair:
            _repair(report, config, index_path)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    report.seconds = time.monotonic() - started
    return report


def _check(report: Report, config: Config, root: Path, progress) -> None:
    tree = _Tree()
    _walk(root, tree)  # first the folder, then the index: see the module's docstring
    db = _open_index(report.index)
    try:
        rows = _rows(db)
        integrity = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        temps = _temp_files(root / TMP_DIR)
        quarantine_temps = _temp_files(config.state_dir / "quarantine" / TMP_DIR)
        report.rows, report.files = len(rows), len(tree.files)
        _check_with_db(report, db, root, tree, rows, temps, progress)
    finally:
        db.close()
    problems = report.problems
    if integrity != ["ok"]:
        problems.append(
            Finding(
                "index",
                str(report.index),
                "the index database is damaged (SQLite quick_check: "
                f"{'; '.join(integrity[:3])}): restore it from a backup",
            )
        )
    _temp_findings(report, root, temps, quarantine_temps, config.state_dir / "quarantine")
    problems.sort(key=lambda f: (_KIND_ORDER.index(f.kind), f.path))


def _check_with_db(report, db, root, tree, rows, temps, progress) -> None:
    problems = report.problems
    named: dict[str, _Row] = {}
    paired: list[tuple[_Row, os.stat_result]] = []
    missing: list[_Row] = []
    through_links: dict[str, list[str]] = {}
    for row in rows:
        named[row.path] = row
        if not _clean_path(row.path):
            message = "the index names a path outside the archive: refused, not read"
            problems.append(Finding("outside", _show(row.path), message, {"id": row.id}))
        elif row.path in tree.files:
            paired.append((row, tree.files[row.path]))
        elif (link := _link_on(row.path, tree.links)) is not None:
            through_links.setdefault(link, []).append(_show(row.path))
        elif row.path in tree.special:
            pass  # reported with the special files below
        else:
            missing.append(row)
    unknown = [rel for rel in tree.files if rel not in named and not _hidden(rel)]
    report.ignored = sorted(_show(rel) for rel in tree.files if rel not in named and _hidden(rel))

    # A row committed after the walk: its file was linked before the commit, so it is there now.
    for row in list(missing):
        info = _now_regular(root, row.path)
        if info is not None:
            missing.remove(row)
            paired.append((row, info))
    # A file linked before the walk whose row came after the snapshot, or is coming right now.
    if unknown and report.daemon_pid:
        being_filed = {(info.st_dev, info.st_ino) for _, info in temps}
        for rel in list(unknown):
            info = tree.files[rel]
            if (info.st_dev, info.st_ino) in being_filed:
                unknown.remove(rel)
                report.in_flight.append(_show(rel))
    if unknown:
        _find_late_rows(report, db, tree, unknown, paired)

    to_hash: list[tuple[str, os.stat_result, _Row | None]] = []
    for row, info in paired:
        if info.st_size != row.size:
            problems.append(_changed(row, info.st_size, None))
        elif not report.quick:
            to_hash.append((row.path, info, row))
    to_hash += [(rel, tree.files[rel], None) for rel in unknown]
    hashed = _hash_all(report, root, to_hash, progress)

    by_sha = {row.sha256: row for row in rows}
    missing_by_sha = {row.sha256: row for row in missing}
    unknown_by_sha: dict[str, str] = {}
    for rel, _info, row in to_hash:
        result = hashed[rel]
        if isinstance(result, str):
            problems.append(Finding("unreadable", _show(rel), f"cannot be read: {result}"))
        elif row is not None:
            if result.sha256 != row.sha256:
                problems.append(_changed(row, result.size, result.sha256))
        else:
            problems.append(_classify(rel, result, by_sha, missing_by_sha, unknown_by_sha))
    for row in missing:
        if row.sha256 in missing_by_sha:  # not found moved elsewhere
            message = (
                f"indexed (sha256 {row.sha256[:16]}…, {_size(row.size)}) but not on disk: "
                "restore it from a backup; the index row is kept. Sending the document again "
                "does not bring the file back, it is already indexed"
            )
            problems.append(Finding("missing", _show(row.path), message, _row_details(row)))
    for rel, target in sorted(tree.links.items()):
        real = os.path.realpath(root / rel)
        outside = not _inside(real, str(root))
        where = "outside the archive: refused" if outside else "inside the archive"
        indexed = through_links.get(rel, [])
        message = f"a symlink to {target} ({where}); verify never follows symlinks"
        if indexed:
            message += f"; the index names {len(indexed)} document(s) through it"
        message += ". Put the file itself here, or remove the link"
        details = {"target": target, "outside": outside, "indexed": indexed}
        problems.append(Finding("symlink", _show(rel), message, details))
    for rel, what in sorted(tree.special.items()):
        message = f"{what}, not a document: not read; remove it from the archive"
        problems.append(Finding("special", _show(rel), message, {"indexed": rel in named}))
    for rel, why in sorted(tree.unreadable.items()):
        problems.append(Finding("unreadable", _show(rel) or ".", f"folder not readable: {why}"))


def _now_regular(root: Path, rel: str) -> os.stat_result | None:
    """lstat rel now, as a regular file reached through no symlink; None otherwise."""
    parts = rel.split("/")
    try:
        for n in range(1, len(parts)):
            if stat.S_ISLNK(os.lstat(root.joinpath(*parts[:n])).st_mode):
                return None
        info = os.lstat(root / rel)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _find_late_rows(report, db, tree, unknown: list[str], paired) -> None:
    """Look unindexed files up in the index again: their rows may have come meanwhile."""
    deadline = time.monotonic() + GRACE_SECONDS
    while True:
        for row in _rows(db, unknown):
            unknown.remove(row.path)
            paired.append((row, tree.files[row.path]))
        recent = time.time() - RECENT_SECONDS
        waiting = [rel for rel in unknown if tree.files[rel].st_ctime > recent]
        if not (report.daemon_pid and waiting) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _hash_all(report, root, to_hash, progress) -> dict[str, _Hashed | str]:
    """Hash the files on a few threads (hashlib and reads release the GIL)."""
    total = len(to_hash)
    results: dict[str, _Hashed | str] = {}
    workers = max(1, min(4, os.cpu_count() or 1))
    last = 0.0
    pool = ThreadPoolExecutor(workers, thread_name_prefix="gmid-verify")
    try:
        # The head of a file is kept only where it is sniffed: files no row names.
        jobs = pool.map(lambda j: (j[0], _hash(root, j[0], j[1], j[2] is None)), to_hash)
        for n, (rel, result) in enumerate(jobs, 1):
            results[rel] = result
            if not isinstance(result, str):
                report.hashed += 1
                report.hashed_bytes += result.size
            if progress and (time.monotonic() - last > 0.2 or n == total):
                last = time.monotonic()
                progress(n, total, report.hashed_bytes)
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C: do not hash the rest first
    return results


def _row_details(row: _Row) -> dict[str, Any]:
    return {"id": row.id, "sha256": row.sha256, "size": row.size}


def _changed(row: _Row, size: int, sha: str | None) -> Finding:
    if sha is None:
        what = f"its size differs from the index ({_size(size)} on disk, {_size(row.size)} indexed)"
    else:
        what = (
            f"its sha256 differs from the index ({sha[:16]}… on disk, {row.sha256[:16]}… indexed)"
        )
    message = (
        f"{what}: the file was changed after it was archived. Restore the original from a "
        "backup; verify never rewrites the index to match a changed file"
    )
    details = {"id": row.id, "sha256": row.sha256, "size": row.size}
    details |= {"found_sha256": sha, "found_size": size}
    return Finding("changed", _show(row.path), message, details)


def _classify(rel, result: _Hashed, by_sha, missing_by_sha, unknown_by_sha) -> Finding:
    """Say what an unindexed file is: a moved document, a copy, a document, or something else."""
    details: dict[str, Any] = {"sha256": result.sha256, "size": result.size}
    if (row := missing_by_sha.pop(result.sha256, None)) is not None:
        message = (
            f"the indexed file {_show(row.path)} was moved or renamed here (same sha256): "
            "`gmid verify --repair` updates the index"
        )
        return Finding("moved", _show(rel), message, details | {"id": row.id, "from": row.path})
    same = by_sha.get(result.sha256)
    if same is not None or result.sha256 in unknown_by_sha:
        other = _show(same.path) if same is not None else unknown_by_sha[result.sha256]
        message = f"a copy of {other}: delete it if you do not need it"
        return Finding("copy", _show(rel), message, details | {"same_as": other})
    unknown_by_sha[result.sha256] = _show(rel)
    media_type = _media_type(rel, result.head)
    if media_type is not None and _show(rel) != rel:
        media_type = None  # a name that is not UTF-8 cannot go into the index
    details |= {"media_type": media_type, "adoptable": media_type is not None}
    if media_type is not None:
        message = f"a document ({media_type}) no index row names: `gmid verify --repair` indexes it"
    else:
        message = "no index row names it, and it is not a document gmid files: move it elsewhere"
    return Finding("unknown", _show(rel), message, details)


def _temp_findings(report, root, temps, quarantine_temps, quarantine: Path) -> None:
    old = time.time() - STALE_TEMP_SECONDS
    for folder, shown, found in (
        (root / TMP_DIR, f"{TMP_DIR}/", temps),
        (quarantine / TMP_DIR, f"{quarantine / TMP_DIR}/", quarantine_temps),
    ):
        for name, info in sorted(found, key=lambda t: t[0]):
            if report.daemon_pid and info.st_mtime > old:
                continue  # a write in progress
            why = "left by a crash" if not report.daemon_pid else "older than 10 minutes"
            message = (
                f"a temp file {why} ({_size(info.st_size)}): `gmid verify --repair` removes it"
            )
            if report.daemon_pid:
                message += " (with the daemon stopped; restarting the daemon does too)"
            details = {"size": info.st_size, "folder": str(folder)}
            report.problems.append(Finding("temp", _show(shown + name), message, details))


# Repairs


def _repair(report: Report, config: Config, index_path: Path) -> None:
    """Fix what loses nothing; called with the state lock held, so the daemon is stopped."""
    index = Index(index_path)
    try:
        archive = Archive(
            config.archive.dir,
            config.archive.name,
            index,
            config.tz,
            quarantine_dir=config.state_dir / "quarantine",
        )
        fixed: list[Finding] = []
        temps = [f for f in report.problems if f.kind == "temp"]
        if temps:
            archive.recover()  # removes every temp file: all stale, the daemon is stopped
            fixed += [_done(f, "removed", "temp file removed") for f in temps]
        for finding in report.problems:
            if finding.kind == "moved":
                _move_row(index, finding)
                fixed.append(
                    _done(finding, "moved", f"index updated: was {finding.details['from']}")
                )
            elif finding.kind == "unknown" and finding.details.get("adoptable"):
                _adopt(index, config, archive.root, finding)
                fixed.append(_done(finding, "adopted", "indexed"))
    finally:
        index.close()
    report.repaired = fixed
    report.rows += sum(1 for f in fixed if f.details["action"] == "adopted")
    done = {(f.kind, f.path) for f in fixed}
    report.problems = [f for f in report.problems if (f.kind, f.path) not in done]


def _done(finding: Finding, action: str, message: str) -> Finding:
    return Finding(finding.kind, finding.path, message, finding.details | {"action": action})


def _move_row(index: Index, finding: Finding) -> None:
    with index._transaction() as db:  # one UPDATE; Index has no public call for it
        db.execute(
            "UPDATE documents SET path = ? WHERE id = ? AND path = ?",
            (finding.path, finding.details["id"], finding.details["from"]),
        )


def _adopt(index: Index, config: Config, root: Path, finding: Finding) -> None:
    """Index a document file found in the archive, as the daemon adopts one after a crash."""
    rel = finding.path
    info = os.lstat(root / rel)
    parts = rel.split("/")
    # With the default template the first folder is the company; else the company is unknown.
    company = UNKNOWN_COMPANY
    if config.archive.name.startswith("{company}/") and len(parts) > 1:
        company = parts[0]
    index.add(
        sha256=finding.details["sha256"],
        path=rel,
        size=finding.details["size"],
        media_type=finding.details["media_type"],
        source=ADOPTED_SOURCE,
        source_name=ADOPTED_SOURCE_NAME,
        company=company,
        received_at=datetime.fromtimestamp(info.st_mtime, UTC),
        original_name=parts[-1],
    )


# Output


def print_report(report: Report, file=None) -> None:
    """Print the report for a person: one block per problem, then a summary line."""
    file = file or sys.stdout
    running = f"daemon running, pid {report.daemon_pid}" if report.daemon_pid else "daemon stopped"
    print(f"archive {report.archive}\nindex   {report.index} ({running})", file=file)
    for f in report.repaired:
        print(f"REPAIRED {f.kind:<8} {f.path}\n         {f.message}", file=file)
    for f in report.problems:
        print(f"{_LABELS.get(f.kind, f.kind.upper()):<8} {f.path}\n         {f.message}", file=file)
    hashed = "sizes only (--quick)" if report.quick else f"{report.hashed} hashed"
    checked = (
        f"{report.rows} index rows, {report.files} files ({hashed}, "
        f"{_size(report.hashed_bytes)}) in {report.seconds:.1f} s"
    )
    if report.in_flight:
        checked += f"; {len(report.in_flight)} being filed right now, skipped"
    if report.ok:
        repaired = f" after {len(report.repaired)} repairs" if report.repaired else ""
        print(f"OK{repaired}: the index matches the folder: {checked}", file=file)
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in report.counts().items())
    n = len(report.problems)
    print(f"{n} problem{'s' if n != 1 else ''} ({counts}): {checked}", file=file)


def run(config: Config, *, quick: bool, repair: bool, as_json: bool) -> int:
    """The `gmid verify` command: 0 when the index matches the folder, 1 when problems remain."""
    progress = _print_progress if sys.stderr.isatty() else None
    report = verify(config, quick=quick, repair=repair, progress=progress)
    if progress:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report)
    return 0 if report.ok else 1


def _print_progress(done: int, total: int, size: int) -> None:
    print(f"\rhashing {done}/{total} files ({_size(size)})", end="", file=sys.stderr, flush=True)
