"""What the index remembers of portal runs: the portal ids already filed, and each run's outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from gmid.archive.index import Index


@dataclass(frozen=True)
class RunRecord:
    """How one portal run ended."""

    portal: str
    started_at: str
    finished_at: str
    outcome: str  # ok | wrong credentials | waiting for code | portal changed | unavailable ...
    message: str | None
    portal_message: str | None  # the portal's own words, when it gave any
    new_documents: int
    fingerprint: str  # of the portal's config: "wrong credentials" holds until it changes
    manual: bool

    def to_dict(self) -> dict:
        return asdict(self)


def filed_ref(index: Index, portal: str, ref: str) -> str | None:
    """Return the sha256 a portal's document id was filed as, or None if it never was."""
    rows = index.query("SELECT sha256 FROM portal_refs WHERE portal = ? AND ref = ?", (portal, ref))
    return rows[0][0] if rows else None


def filed_refs_under(index: Index, portal: str, prefix: str) -> list[str]:
    """Return the sha256s filed for a portal's document ids that start with `prefix`."""
    rows = index.query(
        "SELECT sha256 FROM portal_refs WHERE portal = ? AND substr(ref, 1, ?) = ?",
        (portal, len(prefix), prefix),
    )
    return [row[0] for row in rows]


def record_ref(index: Index, portal: str, ref: str, sha256: str) -> None:
    """Remember that a portal's document id is filed (as these bytes)."""
    now = datetime.now(UTC).isoformat()
    with index.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO portal_refs (portal, ref, sha256, seen_at) VALUES (?, ?, ?, ?)",
            (portal, ref, sha256, now),
        )


def record_run(index: Index, run: RunRecord) -> None:
    """Keep a run's outcome (the last ones survive a restart)."""
    with index.transaction() as db:
        db.execute(
            "INSERT INTO portal_runs (portal, started_at, finished_at, outcome, message,"
            " portal_message, new_documents, fingerprint, manual)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.portal,
                run.started_at,
                run.finished_at,
                run.outcome,
                run.message,
                run.portal_message,
                run.new_documents,
                run.fingerprint,
                int(run.manual),
            ),
        )


def last_runs(index: Index) -> dict[str, RunRecord]:
    """The latest run of every portal that ever ran."""
    rows = index.query(
        "SELECT portal, started_at, finished_at, outcome, message, portal_message,"
        " new_documents, fingerprint, manual FROM portal_runs"
        " WHERE id IN (SELECT max(id) FROM portal_runs GROUP BY portal)"
    )
    return {row[0]: RunRecord(*row[:8], manual=bool(row[8])) for row in rows}


def consecutive_failures(index: Index) -> dict[str, int]:
    """Per portal, how many runs since its last ok run (or ever) did not end ok."""
    rows = index.query(
        "SELECT portal, count(*) FROM portal_runs AS r WHERE id > coalesce("
        " (SELECT max(id) FROM portal_runs AS o WHERE o.portal = r.portal AND o.outcome = 'ok'),"
        " 0) GROUP BY portal"
    )
    return {portal: count for portal, count in rows}


def record_suggestion(index: Index, url: str, domain: str, draft: str | None) -> None:
    """Remember a suggested portal (its URL, domain and the draft written for it)."""
    with index.transaction() as db:
        db.execute(
            "INSERT INTO suggestions (url, domain, suggested_at, draft) VALUES (?, ?, ?, ?)",
            (url, domain, datetime.now(UTC).isoformat(), draft),
        )
