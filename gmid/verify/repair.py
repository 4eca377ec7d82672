"""The repairs of `gmid verify --repair`: only what loses nothing, with the daemon stopped.

verify takes the daemon's state lock for them. Temp files left by a crash are removed, a
document file no row names is indexed (adopted, as the daemon adopts a file a crash left between
its link and its row), and a row whose file was moved inside the archive gets the new path. A
missing file's row and a file whose content changed are reported, never "fixed": the row is the
only record left of the document (sending the document again writes its file back, see
Archive.store), and a changed file must be restored from a backup, not blessed.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from gmid.archive.archive import Archive
from gmid.archive.index import Index
from gmid.archive.statelock import StateLocked, lock_state
from gmid.config.load import Config
from gmid.mail.ingest import UNKNOWN_COMPANY
from gmid.verify.check import Finding, Report
from gmid.verify.scan import VerifyRefused

ADOPTED_SOURCE = "archive"
ADOPTED_SOURCE_NAME = "gmid verify"


def take_lock(state_dir: Path) -> int:
    """Hold the daemon's state lock, so that no daemon starts while we repair."""
    try:
        return lock_state(state_dir)
    except StateLocked as e:
        raise VerifyRefused(
            f"the daemon (pid {e.pid}) is running on {state_dir}: --repair needs it stopped "
            "(e.g. systemctl --user stop gmid); verify without --repair works while it runs"
        ) from None


def repair(report: Report, config: Config, index_path: Path) -> None:
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
    with index.transaction() as db:
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
