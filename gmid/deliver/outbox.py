"""The outbox: per document and destination, pending, done (with the remote reference) or failed
(with the destination's words), kept in the index so that a crash loses no delivery.

Queueing reads the documents filed after a cursor kept per destination, and moves the cursor in
the same transaction as the rows it adds: a document filed just before a crash is queued at the
next start. A destination new to the config starts at the newest document (what was filed
before it goes there with `gmid deliver NAME --all`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from gmid.archive.fs import clean_relative
from gmid.archive.index import Index
from gmid.config.deliver import DestinationConfig
from gmid.deliver.base import Delivery

BATCH = 500  # documents looked at in one transaction while queueing
STATES = ("pending", "done", "failed")
# The columns of the documents table a delivery reads, in this order.
_KEYS = (
    "id", "sha256", "path", "media_type", "source", "source_name", "company",
    "received_at", "date", "number", "amount", "kind", "currency",
)  # fmt: skip
_COLUMNS = ", ".join(_KEYS)


@dataclass(frozen=True)
class Claimed:
    """A pending row taken for one attempt."""

    document_id: int
    destination: str
    item: Delivery | None  # None: its file is not a path in the archive (a broken row)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended."""

    document_id: int
    destination: str
    state: str  # done | failed | pending (tried again at next_try)
    reference: str | None = None
    error: str | None = None
    next_try: float | None = None


@dataclass(frozen=True)
class Entry:
    """One row of the outbox with its document, as `gmid outbox` shows it."""

    document_id: int
    destination: str
    state: str
    attempts: int
    next_try: float | None
    reference: str | None
    error: str | None
    updated_at: str
    path: str
    company: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Outbox:
    """The outbox tables of the index, and the documents they deliver from archive_root."""

    def __init__(self, index: Index, archive_root: Path):
        self.index = index
        self.root = Path(archive_root)

    def _fields(self, row: tuple) -> dict[str, Any]:
        fields = dict(zip(_KEYS, row, strict=True))
        fields["title"] = PurePosixPath(fields["path"]).stem
        return fields

    def queue_new(self, destinations: Sequence[DestinationConfig]) -> int:
        """Queue what was filed since each destination last looked; return how many rows."""
        queued = 0
        for destination in destinations:
            while True:
                added, more = self._queue_batch(destination)
                queued += added
                if not more:
                    break
        return queued

    def _queue_batch(self, destination: DestinationConfig) -> tuple[int, bool]:
        name = destination.name
        with self.index.transaction() as db:
            top = db.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()[0]
            row = db.execute(
                "SELECT last_document FROM outbox_cursor WHERE destination = ?", (name,)
            ).fetchone()
            if row is None:  # new: from the newest document on
                db.execute("INSERT INTO outbox_cursor VALUES (?, ?)", (name, top))
                return 0, False
            last = min(row[0], top)  # a last document removed: its id may come again
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE id > ? ORDER BY id LIMIT ?",
                (last, BATCH),
            ).fetchall()
            if not rows:
                return 0, False
            added = 0
            now = _now()
            for doc in rows:
                if destination.when.matches(self._fields(doc)):
                    added += db.execute(
                        "INSERT OR IGNORE INTO outbox (document_id, destination, state, "
                        "next_try, queued_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?)",
                        (doc[0], name, now, now),
                    ).rowcount
                last = doc[0]
            db.execute(
                "UPDATE outbox_cursor SET last_document = ? WHERE destination = ?", (last, name)
            )
        return added, len(rows) == BATCH

    def queue_filed(self, destination: DestinationConfig, since: date | None) -> int:
        """Queue documents filed before (all, or those of `since` and later) that match the
        destination and were never queued for it; return how many."""
        where, params = "", []
        if since is not None:
            where = " WHERE coalesce(date, substr(received_at, 1, 10)) >= ?"
            params.append(since.isoformat())
        rows = self.index.query(f"SELECT {_COLUMNS} FROM documents{where}", params)
        ids = [row[0] for row in rows if destination.when.matches(self._fields(row))]
        now = _now()
        added = 0
        for start in range(0, len(ids), BATCH):
            with self.index.transaction() as db:
                for document_id in ids[start : start + BATCH]:
                    added += db.execute(
                        "INSERT OR IGNORE INTO outbox (document_id, destination, state, "
                        "next_try, queued_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?)",
                        (document_id, destination.name, now, now),
                    ).rowcount
        return added

    def retry(self, destination: str | None = None, document_id: int | None = None) -> int:
        """Make failed rows (and pending ones waiting for their next try) due now; how many."""
        clauses, params = ["state IN ('failed', 'pending')"], []
        if destination is not None:
            clauses.append("destination = ?")
            params.append(destination)
        if document_id is not None:
            clauses.append("document_id = ?")
            params.append(document_id)
        with self.index.transaction() as db:
            return db.execute(
                "UPDATE outbox SET state = 'pending', next_try = 0, updated_at = ? WHERE "
                + " AND ".join(clauses),
                [_now(), *params],
            ).rowcount

    def claim(self, destination: str, limit: int, busy: Collection[int]) -> list[Claimed]:
        """Up to limit due rows that are not busy already, oldest due first.

        Nothing is written: what is on its way is the caller's to remember (a crash forgets
        it, and the row is due again). An attempt is counted when it ends (record).
        """
        columns = ", ".join("d." + c.strip() for c in _COLUMNS.split(","))
        marks = ",".join("?" * len(busy))
        rows = self.index.query(
            f"SELECT o.attempts, {columns}"
            " FROM outbox o JOIN documents d ON d.id = o.document_id"
            " WHERE o.destination = ? AND o.state = 'pending' AND o.next_try <= ?"
            # By next_try alone, the index's order: no sort of every pending row.
            f" AND o.document_id NOT IN ({marks}) ORDER BY o.next_try LIMIT ?",
            [destination, time.time(), *busy, limit],
        )
        return [self._claimed(destination, row[0] + 1, self._fields(row[1:])) for row in rows]

    def _claimed(self, destination: str, attempt: int, fields: dict[str, Any]) -> Claimed:
        document_id = fields.pop("id")
        path = fields.pop("path")
        if not clean_relative(path):
            return Claimed(document_id, destination, None)
        sha = fields.pop("sha256")
        media_type = fields.pop("media_type")
        item = Delivery(
            key=f"{sha}:{destination}",
            path=self.root / path,
            name=PurePosixPath(path).name,
            media_type=media_type,
            sha256=sha,
            fields={k: None if v is None else str(v) for k, v in fields.items()} | {"path": path},
            attempt=attempt,
        )
        return Claimed(document_id, destination, item)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write how attempts ended, in one transaction."""
        now = _now()
        with self.index.transaction() as db:
            db.executemany(
                "UPDATE outbox SET state = ?, reference = ?, error = ?, next_try = ?,"
                " attempts = attempts + 1, updated_at = ?"
                " WHERE document_id = ? AND destination = ?",
                [
                    (o.state, o.reference, o.error, o.next_try, now, o.document_id, o.destination)
                    for o in outcomes
                ],
            )

    def next_due(self, destination: str, busy: Collection[int]) -> float | None:
        """When the next pending row not busy is due (a time.time()), None if there is none."""
        marks = ",".join("?" * len(busy))
        rows = self.index.query(
            "SELECT min(next_try) FROM outbox WHERE destination = ? AND state = 'pending'"
            f" AND document_id NOT IN ({marks})",
            [destination, *busy],
        )
        return rows[0][0]

    def entries(
        self,
        states: Sequence[str] = ("pending", "failed"),
        destination: str | None = None,
        document_id: int | None = None,
        limit: int = 200,
    ) -> list[Entry]:
        """Rows of the outbox with their document's path and company, by destination."""
        clauses = [f"o.state IN ({','.join('?' * len(states))})"]
        params: list[Any] = list(states)
        for column, value in (("o.destination", destination), ("o.document_id", document_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        rows = self.index.query(
            "SELECT o.document_id, o.destination, o.state, o.attempts, o.next_try, o.reference,"
            " o.error, o.updated_at, d.path, d.company FROM outbox o"
            " JOIN documents d ON d.id = o.document_id WHERE " + " AND ".join(clauses) + " ORDER BY"
            " o.destination, o.state, o.document_id LIMIT ?",
            [*params, limit],
        )
        return [Entry(*row) for row in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """How many rows each destination has in each state."""
        found: dict[str, dict[str, int]] = {}
        for name, state, n in self.index.query(
            "SELECT destination, state, count(*) FROM outbox GROUP BY destination, state"
        ):
            found.setdefault(name, dict.fromkeys(STATES, 0))[state] = n
        return found
