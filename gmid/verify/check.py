"""The check of `gmid verify`: the folder compared with the index, each difference a Finding.

Works while the daemon runs. The daemon files a document in this order (gmid/archive/archive.py):
write and fsync a temp file in `<archive>/.gmid-tmp`, hard-link it to its final name, commit the
index row, unlink the temp file. So the folder is walked first and the index read after it; a file
still without a row is then looked for in the temp folder (same inode: being filed right now) and in
the index once more, and a row whose file the walk missed is looked for on disk again. A file the
daemon restores (the same document sent again after its file was deleted) is linked the same way
under its row, which exists already: it is paired, or missing, never unknown.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gmid.archive.fs import TMP_DIR, clean_relative, inside
from gmid.archive.sniff import MEDIA, sniff
from gmid.config.load import Config
from gmid.control.size import human_size
from gmid.mail.headers import summarize_headers
from gmid.verify.scan import (
    Hashed,
    Row,
    Tree,
    hash_all,
    open_index,
    read_rows,
    show,
    temp_files,
    walk,
)

# While the daemon runs, a temp file is a write in progress; one this old is one it lost.
STALE_TEMP_SECONDS = 600.0
# Without hard links the daemon renames its temp file into place and commits the row right
# after: an unindexed file this young may be that, and is looked up again for a moment.
RECENT_SECONDS = 30.0
GRACE_SECONDS = 2.0
# gmid never names a file or folder with a leading dot (naming.fit strips it): those and the
# desktop's own files are sync or OS metadata, not documents.
_OS_FILES = frozenset({"thumbs.db", "desktop.ini"})
# Extensions a sniffed type may carry, beyond the one gmid gives it.
_ALIASES = {".jpeg": "jpeg", ".tiff": "tiff"}
_KIND_ORDER = ("index", "changed", "missing", "moved", "outside", "symlink", "special")
_KIND_ORDER += ("unreadable", "unknown", "copy", "temp")


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


def check(report: Report, config: Config, root: Path, progress) -> None:
    """Compare the folder with the index; add what differs to report.problems, sorted."""
    tree = Tree()
    walk(root, tree)  # first the folder, then the index: see the module's docstring
    db = open_index(report.index)
    try:
        rows = read_rows(db)
        integrity = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        temps = temp_files(root / TMP_DIR)
        quarantine_temps = temp_files(config.state_dir / "quarantine" / TMP_DIR)
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


_ToHash = tuple[str, os.stat_result, Row | None]  # a file to read: its path, stat and row


@dataclass
class _Pairs:
    """The rows of the index and the files of the walk, matched up by path."""

    named: dict[str, Row] = field(default_factory=dict)  # every row, by its path
    paired: list[tuple[Row, os.stat_result]] = field(default_factory=list)  # a row, its file
    missing: list[Row] = field(default_factory=list)  # rows whose file is not there
    through_links: dict[str, list[str]] = field(default_factory=dict)  # symlink -> rows
    unknown: list[str] = field(default_factory=list)  # files no row names (not hidden ones)


def _check_with_db(report, db, root, tree, rows, temps, progress) -> None:
    """Pair rows with files, hash what is to be compared, and report what differs."""
    pairs = _pair(report, tree, rows)
    _drop_kept_beside(db, pairs)
    _pair_late(report, db, root, tree, temps, pairs)
    to_hash = _to_hash(report, tree, pairs)
    hashed = hash_all(root, to_hash, progress)
    read = [result for result in hashed.values() if not isinstance(result, str)]
    report.hashed, report.hashed_bytes = len(read), sum(result.size for result in read)
    missing_by_sha = {row.sha256: row for row in pairs.missing}
    _content_findings(report, rows, to_hash, hashed, missing_by_sha)
    _missing_findings(report, pairs.missing, missing_by_sha)
    _tree_findings(report, root, tree, pairs)


def _pair(report: Report, tree: Tree, rows: list[Row]) -> _Pairs:
    """Match each row with the file the walk found at its path; report rows naming outside."""
    pairs = _Pairs()
    for row in rows:
        pairs.named[row.path] = row
        if not clean_relative(row.path):
            message = "the index names a path outside the archive: refused, not read"
            report.problems.append(Finding("outside", show(row.path), message, {"id": row.id}))
        elif row.path in tree.files:
            pairs.paired.append((row, tree.files[row.path]))
        elif (link := _link_on(row.path, tree.links)) is not None:
            pairs.through_links.setdefault(link, []).append(show(row.path))
        elif row.path in tree.special:
            pass  # reported with the special files
        else:
            pairs.missing.append(row)
    unindexed = [rel for rel in tree.files if rel not in pairs.named]
    pairs.unknown = [rel for rel in unindexed if not _hidden(rel)]
    report.ignored = sorted(show(rel) for rel in unindexed if _hidden(rel))
    return pairs


def _drop_kept_beside(db, pairs: _Pairs) -> None:
    """An e-invoice XML kept beside its PDF (gmid/archive/merging.py) is no unknown file."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(documents)")}
    if "xml_path" in columns and pairs.unknown:
        beside = {r[0] for r in db.execute("SELECT xml_path FROM documents WHERE xml_path > ''")}
        pairs.unknown = [rel for rel in pairs.unknown if rel not in beside]


def _pair_late(report, db, root: Path, tree: Tree, temps, pairs: _Pairs) -> None:
    """Pair what the daemon filed while the walk ran: rows that came later, files in flight."""
    # A row committed after the walk: its file was linked before the commit, so it is there now.
    for row in list(pairs.missing):
        info = _now_regular(root, row.path)
        if info is not None:
            pairs.missing.remove(row)
            pairs.paired.append((row, info))
    # A file linked before the walk whose row came after the snapshot, or is coming right now.
    if pairs.unknown and report.daemon_pid:
        being_filed = {(info.st_dev, info.st_ino) for _, info in temps}
        for rel in list(pairs.unknown):
            info = tree.files[rel]
            if (info.st_dev, info.st_ino) in being_filed:
                pairs.unknown.remove(rel)
                report.in_flight.append(show(rel))
    if pairs.unknown:
        _find_late_rows(report, db, tree, pairs.unknown, pairs.paired)


def _to_hash(report: Report, tree: Tree, pairs: _Pairs) -> list[_ToHash]:
    """The files to read, as (path, stat, row or None); a size unlike the row's is reported.

    A file of its row's size is hashed unless the check is quick; every unindexed file is.
    """
    to_hash: list[_ToHash] = []
    for row, info in pairs.paired:
        if info.st_size != row.size:
            report.problems.append(_changed(row, info.st_size, None))
        elif not report.quick:
            to_hash.append((row.path, info, row))
    to_hash += [(rel, tree.files[rel], None) for rel in pairs.unknown]
    return to_hash


def _content_findings(report: Report, rows, to_hash, hashed, missing_by_sha) -> None:
    """Report what reading the files found: unreadable, changed, and what unindexed ones are."""
    by_sha = {row.sha256: row for row in rows}
    unknown_by_sha: dict[str, str] = {}
    for rel, _info, row in to_hash:
        result = hashed[rel]
        if isinstance(result, str):
            report.problems.append(Finding("unreadable", show(rel), f"cannot be read: {result}"))
        elif row is not None:
            if result.sha256 != row.sha256:
                report.problems.append(_changed(row, result.size, result.sha256))
        else:
            finding = _classify(rel, result, by_sha, missing_by_sha, unknown_by_sha)
            report.problems.append(finding)


def _missing_findings(report: Report, missing: list[Row], missing_by_sha) -> None:
    """Report the rows whose file is gone (and was not found moved elsewhere)."""
    for row in missing:
        if row.sha256 in missing_by_sha:  # not found moved elsewhere
            message = (
                f"indexed (sha256 {row.sha256[:16]}…, {human_size(row.size)}) but not on disk: "
                "restore it from a backup, or send the same document again (the mail once "
                "more; a portal's document comes with its next run): gmid then writes it back "
                "here. The index row is kept"
            )
            report.problems.append(Finding("missing", show(row.path), message, _row_details(row)))


def _tree_findings(report: Report, root: Path, tree: Tree, pairs: _Pairs) -> None:
    """Report what the walk found that is no document: symlinks, special files, bad folders."""
    problems = report.problems
    for rel, target in sorted(tree.links.items()):
        problems.append(_symlink(root, rel, target, pairs.through_links.get(rel, [])))
    for rel, what in sorted(tree.special.items()):
        message = f"{what}, not a document: not read; remove it from the archive"
        problems.append(Finding("special", show(rel), message, {"indexed": rel in pairs.named}))
    for rel, why in sorted(tree.unreadable.items()):
        problems.append(Finding("unreadable", show(rel) or ".", f"folder not readable: {why}"))


def _symlink(root: Path, rel: str, target: str, indexed: list[str]) -> Finding:
    """The finding of a symlink in the archive, and of the rows that name a path through it."""
    real = os.path.realpath(root / rel)
    outside = not inside(real, str(root))
    where = "outside the archive: refused" if outside else "inside the archive"
    message = f"a symlink to {target} ({where}); verify never follows symlinks"
    if indexed:
        message += f"; the index names {len(indexed)} document(s) through it"
    message += ". Put the file itself here, or remove the link"
    details = {"target": target, "outside": outside, "indexed": indexed}
    return Finding("symlink", show(rel), message, details)


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
        for row in read_rows(db, unknown):
            unknown.remove(row.path)
            paired.append((row, tree.files[row.path]))
        recent = time.time() - RECENT_SECONDS
        waiting = [rel for rel in unknown if tree.files[rel].st_ctime > recent]
        if not (report.daemon_pid and waiting) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _row_details(row: Row) -> dict[str, Any]:
    return {"id": row.id, "sha256": row.sha256, "size": row.size}


def _changed(row: Row, size: int, sha: str | None) -> Finding:
    if sha is None:
        what = (
            f"its size differs from the index ({human_size(size)} on disk, "
            f"{human_size(row.size)} indexed)"
        )
    else:
        what = (
            f"its sha256 differs from the index ({sha[:16]}… on disk, {row.sha256[:16]}… indexed)"
        )
    message = (
        f"{what}: the file was changed after it was archived. Restore the original from a "
        "backup; verify never rewrites the index to match a changed file"
    )
    details = _row_details(row) | {"found_sha256": sha, "found_size": size}
    return Finding("changed", show(row.path), message, details)


def _classify(rel, result: Hashed, by_sha, missing_by_sha, unknown_by_sha) -> Finding:
    """Say what an unindexed file is: a moved document, a copy, a document, or something else."""
    details: dict[str, Any] = {"sha256": result.sha256, "size": result.size}
    if (row := missing_by_sha.pop(result.sha256, None)) is not None:
        message = (
            f"the indexed file {show(row.path)} was moved or renamed here (same sha256): "
            "`gmid verify --repair` updates the index"
        )
        return Finding("moved", show(rel), message, details | {"id": row.id, "from": row.path})
    same = by_sha.get(result.sha256)
    if same is not None or result.sha256 in unknown_by_sha:
        other = show(same.path) if same is not None else unknown_by_sha[result.sha256]
        message = f"a copy of {other}: delete it if you do not need it"
        return Finding("copy", show(rel), message, details | {"same_as": other})
    unknown_by_sha[result.sha256] = show(rel)
    media_type = _media_type(rel, result.head)
    if media_type is not None and show(rel) != rel:
        media_type = None  # a name that is not UTF-8 cannot go into the index
    details |= {"media_type": media_type, "adoptable": media_type is not None}
    if media_type is not None:
        message = f"a document ({media_type}) no index row names: `gmid verify --repair` indexes it"
    else:
        message = "no index row names it, and it is not a document gmid files: move it elsewhere"
    return Finding("unknown", show(rel), message, details)


def _temp_findings(report, root, temps, quarantine_temps, quarantine: Path) -> None:
    old = time.time() - STALE_TEMP_SECONDS
    # The archive's temp folder is reported by the walk; the quarantine is not walked.
    if (quarantine / TMP_DIR).is_symlink():
        target = os.readlink(quarantine / TMP_DIR)
        message = (
            f"a symlink to {target}; gmid never writes or cleans through it (the daemon refuses "
            "to start): remove the link and gmid makes the folder again"
        )
        path = str(quarantine / TMP_DIR)
        report.problems.append(Finding("symlink", path, message, {"target": target}))
    for folder, shown, found in (
        (root / TMP_DIR, f"{TMP_DIR}/", temps),
        (quarantine / TMP_DIR, f"{quarantine / TMP_DIR}/", quarantine_temps),
    ):
        for name, info in sorted(found, key=lambda t: t[0]):
            if report.daemon_pid and info.st_mtime > old:
                continue  # a write in progress
            why = "left by a crash" if not report.daemon_pid else "older than 10 minutes"
            message = (
                f"a temp file {why} ({human_size(info.st_size)}): `gmid verify --repair` removes it"
            )
            if report.daemon_pid:
                message += " (with the daemon stopped; restarting the daemon does too)"
            details = {"size": info.st_size, "folder": str(folder)}
            report.problems.append(Finding("temp", show(shown + name), message, details))


def _media_type(rel: str, head: bytes) -> str | None:
    """The media type of a file gmid could have filed (type from its bytes, name to match)."""
    ext = os.path.splitext(rel)[1].lower()
    if ext == ".eml":
        summary = summarize_headers(head)
        return "message/rfc822" if summary.message_id or summary.senders else None
    sniffed = sniff(head)
    if sniffed is None:
        return None
    media = MEDIA[sniffed]
    return media.media_type if ext == media.ext or _ALIASES.get(ext) == sniffed else None


def _hidden(rel: str) -> bool:
    return any(p.startswith(".") for p in rel.split("/")) or (
        rel.rsplit("/", 1)[-1].lower() in _OS_FILES
    )


def _link_on(path: str, links: dict[str, str]) -> str | None:
    """The symlink the path is reached through (itself, or a folder above it), if any."""
    parts = path.split("/")
    for n in range(1, len(parts) + 1):
        prefix = "/".join(parts[:n])
        if prefix in links:
            return prefix
    return None
