"""`gmid verify`: check the archive folder against the index, and repair what is safe to repair.

Works while the daemon runs; --repair needs it stopped. The work is split in three:
gmid/verify/scan.py reads the daemon's lock, the folder, the index and the files' hashes,
changing nothing; gmid/verify/check.py compares them (and says why that is safe while the daemon
files documents) into a Report of Findings; gmid/verify/repair.py fixes what loses nothing.
This module runs them in order and prints the report, for a person or as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gmid.config.load import Config
from gmid.control.size import human_size
from gmid.verify import repair as verifyrepair
from gmid.verify.check import Finding, Report, check
from gmid.verify.scan import VerifyRefused, daemon_pid

__all__ = ["Finding", "Report", "VerifyRefused", "daemon_pid", "print_report", "run", "verify"]

_LABELS = {"unknown": "UNKNOWN", "changed": "CHANGED", "missing": "MISSING", "moved": "MOVED"}


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
    lock_fd = verifyrepair.take_lock(config.state_dir) if repair else None
    try:
        pid = None if repair else daemon_pid(config.state_dir)
        report = Report(root, index_path, pid, quick)
        check(report, config, root, progress)
        if repair:
            verifyrepair.repair(report, config, index_path)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    report.seconds = time.monotonic() - started
    return report


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
        f"{human_size(report.hashed_bytes)}) in {report.seconds:.1f} s"
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
    text = f"\rhashing {done}/{total} files ({human_size(size)})"
    print(text, end="", file=sys.stderr, flush=True)
