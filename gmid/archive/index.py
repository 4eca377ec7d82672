"""The SQLite index of the archive: one row per stored document, plus mail dedup and quarantine.

The tables themselves, and the steps that create and upgrade them, are in gmid/archive/schema.py.
The documents, messages and quarantine tables are read and written through the methods of Index;
the tables other parts of gmid keep in the same database (IMAP folders, portal runs, suggestions)
through its `query` and `transaction`, by the module that owns them.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gmid.archive.schema import DOCUMENT_DAY, MIGRATIONS
from gmid.errors import IndexDbError

logger = logging.getLogger(__name__)

_COLUMNS = (
    "id, sha256, path, size, media_type, source, source_name, company, original_name, "
    "message_id, source_ref, received_at, date, number, amount"
)
# NUL between the fields keeps a search from matching across two of them.
_SEARCHED = (
    "gmid_fold(path || char(0) || company || char(0) || coalesce(original_name, '') "
    "|| char(0) || coalesce(number, '') || char(0) || coalesce(amount, ''))"
)
_FILTERS = {"company", "source", "source_name", "since", "received_since", "text"}
# An amount typed as many write it, "1.234,50" or "84,20", is stored as "1234.50", "84.20".
_AMOUNT_AS_TYPED = re.compile(r"\d{1,3}(\.\d{3})*,\d{1,2}|\d+,\d{1,2}")


@dataclass(frozen=True)
class IndexedDocument:
    """One archived document as the index knows it."""

    id: int
    sha256: str
    path: str
    size: int
    media_type: str
    source: str
    source_name: str
    company: str
    original_name: str | None
    message_id: str | None
    source_ref: str | None
    received_at: datetime
    date: date | None
    number: str | None
    amount: str | None

    def to_dict(self) -> dict:
        """Return the document as JSON-friendly values (dates as ISO 8601 strings)."""
        data = dict(self.__dict__)  # plain values only: no need for asdict's deep copy
        data["received_at"] = self.received_at.isoformat()
        data["date"] = self.date.isoformat() if self.date else None
        return data


def _fold(text: str | None) -> str | None:
    """Return text normalised for a case-insensitive match (Unicode-aware, unlike SQL LIKE)."""
    return None if text is None else unicodedata.normalize("NFC", text).casefold()


def _day(when: date | datetime) -> date:
    """The day of a filter's date, or of its aware datetime (in that datetime's zone)."""
    return when.date() if isinstance(when, datetime) else when


def _moment(when: date | datetime) -> str:
    """A filter's time as stored: a bare date is its midnight in UTC, a datetime is exact (an
    aware one at a local midnight is that day in the user's zone)."""
    return _timestamp(when) if isinstance(when, datetime) else when.isoformat()


def _timestamp(moment: datetime) -> str:
    """Return an aware datetime as a fixed-width UTC string, so text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware one (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _row_to_document(row: tuple) -> IndexedDocument:
    """Build an IndexedDocument from a row selected with _COLUMNS."""
    (id_, sha, path, size, media_type, source, source_name, company, original_name) = row[:9]
    message_id, source_ref, received_at, day, number, amount = row[9:]
    return IndexedDocument(
        id=id_,
        sha256=sha,
        path=path,
        size=size,
        media_type=media_type,
        source=source,
        source_name=source_name,
        company=company,
        original_name=original_name,
        message_id=message_id,
        source_ref=source_ref,
        received_at=datetime.fromisoformat(received_at),
        date=date.fromisoformat(day) if day else None,
        number=number,
        amount=amount,
    )


class Index:
    """The archive's SQLite index; safe to share between threads."""

    def __init__(self, path: Path):
        """Open (creating and migrating as needed) the index database at path."""
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The index names companies and file names: owner-only. SQLite gives its -wal and
            # -shm files the mode of the database file, so creating it 0600 covers all three.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise IndexDbError(f"cannot open the index {self.path}: {exc}") from exc
        try:
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise IndexDbError(f"index {self.path}: cannot switch to WAL mode (got {mode})")
            # FULL: a committed row survives a power cut, as the SMTP 250 promises.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.create_function("gmid_fold", 1, _fold, deterministic=True)
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise IndexDbError(f"cannot open the index {self.path}: {exc}") from exc
        except IndexDbError:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the database; the index cannot be used afterwards."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction, committed on success, rolled back on error.

        The block executes its statements on the connection it is given, and holds the index
        for itself meanwhile (other threads wait). sqlite3.IntegrityError passes through as it
        is, for the caller that knows which constraint it may hit; any other SQLite error
        becomes an IndexDbError.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise IndexDbError(f"index {self.path}: {exc}") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._rollback()
                raise  # the caller knows which constraint it may hit and says so
            except sqlite3.Error as exc:
                self._rollback()
                raise IndexDbError(f"index {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not already done so."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def query(self, sql: str, params: tuple | builtins.list = ()) -> builtins.list[tuple]:
        """Run one read statement (SQL with ? placeholders for params) and return all rows."""
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise IndexDbError(f"index {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        """Bring the schema up to the newest version, one committed step at a time."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise IndexDbError(
                f"index {self.path} has schema version {version}, newer than this gmid knows "
                f"({len(MIGRATIONS)}); upgrade gmid"
            )
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                for statement in statements:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            logger.info("index %s migrated to schema version %d", self.path, number)

    def by_sha256(self, sha: str) -> IndexedDocument | None:
        """Return the document with these bytes, if archived."""
        rows = self.query(f"SELECT {_COLUMNS} FROM documents WHERE sha256 = ?", (sha,))
        return _row_to_document(rows[0]) if rows else None

    def kept_mail(self, message_id: str, company: str, day: date | None) -> IndexedDocument | None:
        """Return the mail kept whole (.eml) with this Message-ID, company and date, if any."""
        rows = self.query(
            f"SELECT {_COLUMNS} FROM documents WHERE company = ? AND message_id = ?"
            " AND media_type = 'message/rfc822' AND date IS ? LIMIT 1",
            (company, message_id, day.isoformat() if day else None),
        )
        return _row_to_document(rows[0]) if rows else None

    def by_path(self, path: str) -> IndexedDocument | None:
        """Return the document filed under this archive-relative path, if any."""
        rows = self.query(f"SELECT {_COLUMNS} FROM documents WHERE path = ?", (path,))
        return _row_to_document(rows[0]) if rows else None

    def add(self, **row: Any) -> IndexedDocument:
        """Insert one document row (the fields of IndexedDocument but id) and return it."""
        return self.add_many([row])[0]

    def add_many(self, rows: Sequence[dict[str, Any]]) -> builtins.list[IndexedDocument]:
        """Insert document rows in one committed transaction and return them.

        Each row has the fields of IndexedDocument but id; original_name, message_id,
        source_ref, date, number and amount may be left out.
        """
        values = [_values(row) for row in rows]
        documents = []
        try:
            with self.transaction() as db:
                for value in values:
                    cursor = db.execute(
                        f"INSERT INTO documents ({_COLUMNS.removeprefix('id, ')}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        value,
                    )
                    assert cursor.lastrowid is not None
                    documents.append(_row_to_document((cursor.lastrowid, *value)))
        except sqlite3.IntegrityError as exc:
            paths = ", ".join(row["path"] for row in rows)
            raise IndexDbError(
                f"index {self.path}: {paths} or its content is already indexed"
            ) from exc
        return documents

    @staticmethod
    def _where(filters: dict[str, Any]) -> tuple[str, builtins.list]:
        """Return the WHERE clause and parameters shared by list() and count()."""
        if unknown := set(filters) - _FILTERS:
            raise TypeError(f"unknown document filter {', '.join(sorted(unknown))}")
        clauses: builtins.list[str] = []
        params: builtins.list = []
        for column in ("source", "source_name"):
            if filters.get(column) is not None:
                clauses.append(f"{column} = ?")
                params.append(filters[column])
        if filters.get("company") is not None:  # as the user types it: any case
            clauses.append("gmid_fold(company) = ?")
            params.append(_fold(filters["company"]))
        if (since := filters.get("since")) is not None:  # the document's date, else arrival
            clauses.append("(date >= ? OR (date IS NULL AND received_at >= ?))")
            params += [_day(since).isoformat(), _moment(since)]
        if (received := filters.get("received_since")) is not None:
            clauses.append("received_at >= ?")
            params.append(_moment(received))
        if text := filters.get("text"):
            forms = {_fold(text)}
            if _AMOUNT_AS_TYPED.fullmatch(text.strip()):
                forms.add(text.strip().replace(".", "").replace(",", "."))
            clauses.append("(" + " OR ".join([f"instr({_SEARCHED}, ?) > 0"] * len(forms)) + ")")
            params += sorted(forms)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def list(
        self, *, limit: int | None = 100, offset: int = 0, **filters: Any
    ) -> builtins.list[IndexedDocument]:
        """Return matching documents, newest first: by the document's day (its date, else
        its arrival), then arrival, then id.

        The filters: company (any case), source, source_name, since (the document's date
        from this day on; one without a date by its arrival), received_since (its arrival) and
        text (in the path, company, original name, number or amount, any case). A day is a
        date (its midnight in UTC) or an aware datetime (a midnight in the user's zone).
        """
        where, params = self._where(filters)
        sql = (
            f"SELECT {_COLUMNS} FROM documents{where} "
            f"ORDER BY {DOCUMENT_DAY} DESC, received_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        params += [-1 if limit is None else max(0, limit), max(0, offset)]
        return [_row_to_document(row) for row in self.query(sql, params)]

    def count(self, **filters: Any) -> int:
        """Return how many documents match, with the same filters as list()."""
        where, params = self._where(filters)
        return self.query(f"SELECT count(*) FROM documents{where}", params)[0][0]

    def record_quarantine(self, path: str, reason: str, source: str, source_name: str) -> None:
        """Remember a quarantined mail: where it lies and why."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO quarantine (path, reason, source, source_name, quarantined_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (path, reason, source, source_name, _now()),
            )

    def quarantine_count(self) -> int:
        """Return how many mails were quarantined."""
        return self.query("SELECT count(*) FROM quarantine")[0][0]


def _values(row: dict[str, Any]) -> tuple:
    """A document row's values in _COLUMNS order (without id), as stored."""
    day = row.get("date")
    return (
        row["sha256"],
        row["path"],
        row["size"],
        row["media_type"],
        row["source"],
        row["source_name"],
        row["company"],
        row.get("original_name"),
        row.get("message_id"),
        row.get("source_ref"),
        _timestamp(row["received_at"]),
        day.isoformat() if day else None,
        row.get("number"),
        row.get("amount"),
    )


def _now() -> str:
    """Return the current time as an index timestamp."""
    return _timestamp(datetime.now(UTC))
