"""The SQLite index of the archive: one row per stored document, plus mail dedup and quarantine.

The tables themselves, and the steps that create and upgrade them, are in gmid/archive/schema.py.
The documents, messages and quarantine tables are read and written through the methods of Index;
the tables other parts of gmid keep in the same database (IMAP folders, portal runs, suggestions)
through its `query` and `transaction`, by the module that owns them.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gmid.archive import reads
from gmid.archive.rows import COLUMNS as _COLUMNS
from gmid.archive.rows import IndexedDocument
from gmid.archive.rows import row_to_document as _row_to_document
from gmid.archive.rows import timestamp as _timestamp
from gmid.archive.schema import DOCUMENT_DAY, MIGRATIONS
from gmid.errors import IndexDbError

logger = logging.getLogger(__name__)

# NUL between the fields keeps a search from matching across two of them.
_SEARCHED = (
    "gmid_fold(path || char(0) || company || char(0) || coalesce(original_name, '') "
    "|| char(0) || coalesce(number, '') || char(0) || coalesce(amount, ''))"
)
DENSE_MATCHES = 500  # a search matching more is listed by walking the date order (see _where)
_FILTERS = {"company", "source", "source_name", "since", "received_since", "text", "search"}
# An amount typed as many write it, "1.234,50" or "84,20", is stored as "1234.50", "84.20".
_AMOUNT_AS_TYPED = re.compile(r"\d{1,3}(\.\d{3})*,\d{1,2}|\d+,\d{1,2}")


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
        """Return the mail kept whole (.eml) with this Message-ID, company and date, if any.

        A mail no rule gave a company ("unknown") was filed under the one its reading gave it
        (its sender): any company is its own then.
        """
        rows = self.query(
            f"SELECT {_COLUMNS} FROM documents WHERE (company = ? OR ? = 'unknown') "
            "AND message_id = ? AND media_type = 'message/rfc822' AND date IS ? LIMIT 1",
            (company, company, message_id, day.isoformat() if day else None),
        )
        return _row_to_document(rows[0]) if rows else None

    def by_path(self, path: str) -> IndexedDocument | None:
        """Return the document filed under this archive-relative path, if any."""
        rows = self.query(f"SELECT {_COLUMNS} FROM documents WHERE path = ?", (path,))
        return _row_to_document(rows[0]) if rows else None

    def get(self, doc_id: int) -> IndexedDocument | None:
        """Return the document with this id, if any."""
        rows = self.query(f"SELECT {_COLUMNS} FROM documents WHERE id = ?", (doc_id,))
        return _row_to_document(rows[0]) if rows else None

    def details(self, doc_id: int) -> dict | None:
        """Return a document with every field and where it came from, its check, its sources
        and the e-invoice XML kept beside it (see gmid/archive/reads.py), or None."""
        with self._lock:
            try:
                return reads.details(self._db, doc_id)
            except sqlite3.Error as exc:
                raise IndexDbError(f"index {self.path}: {exc}") from exc

    def text(self, doc_id: int) -> str | None:
        """Return the text kept of a document for search, if any."""
        rows = self.query("SELECT text FROM documents_fts WHERE rowid = ?", (doc_id,))
        return rows[0][0] if rows and rows[0][0] else None

    def by_any_sha256(self, sha: str) -> IndexedDocument | None:
        """Return the document these bytes were filed as: its own file, or another way the
        same invoice came (a source recorded with these bytes)."""
        found = self.by_sha256(sha)
        if found is not None:
            return found
        rows = self.query(
            f"SELECT {_COLUMNS} FROM documents WHERE id = "
            "(SELECT document_id FROM document_sources WHERE sha256 = ? LIMIT 1)",
            (sha,),
        )
        return _row_to_document(rows[0]) if rows else None

    def dated(self, day: date, limit: int = 1000) -> builtins.list[IndexedDocument]:
        """Return the documents of this date that have a number (same-invoice candidates)."""
        rows = self.query(
            f"SELECT {_COLUMNS} FROM documents WHERE date = ? AND number IS NOT NULL "
            "ORDER BY id LIMIT ?",
            (day.isoformat(), limit),
        )
        return [_row_to_document(row) for row in rows]

    def fields_from(self, doc_id: int) -> dict[str, str]:
        """Return where each read field of a document came from ({field: origin})."""
        rows = self.query("SELECT fields_from, source FROM documents WHERE id = ?", (doc_id,))
        if not rows:
            return {}
        return json.loads(rows[0][0]) if rows[0][0] else {}

    def update(self, doc_id: int, **changes: Any) -> IndexedDocument:
        """Change a document's fields in one committed transaction (see reads.update)."""
        with self.transaction() as db:
            return reads.update(db, doc_id, changes)

    def add_source(self, doc_id: int, **source: Any) -> None:
        """Record one more way a document came (see reads.add_source)."""
        with self.transaction() as db:
            reads.add_source(db, doc_id, **source)

    def unread(
        self, version: int, after: int = 0, limit: int = 100
    ) -> builtins.list[IndexedDocument]:
        """Return documents read by an older reader than version (0: never), oldest first,
        from the id after `after` on."""
        rows = self.query(
            f"SELECT {_COLUMNS} FROM documents WHERE read_version < ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (version, after, limit),
        )
        return [_row_to_document(row) for row in rows]

    def unread_count(self, version: int) -> int:
        """Return how many documents an older reader than version read."""
        return self.query("SELECT count(*) FROM documents WHERE read_version < ?", (version,))[0][0]

    def add(self, **row: Any) -> IndexedDocument:
        """Insert one document row (the fields of IndexedDocument but id) and return it."""
        return self.add_many([row])[0]

    def add_many(self, rows: Sequence[dict[str, Any]]) -> builtins.list[IndexedDocument]:
        """Insert document rows in one committed transaction and return them.

        Each row has the fields of IndexedDocument but id; all but sha256, path, size,
        media_type, source, source_name, company and received_at may be left out. A row may
        also carry fields_from ({field: origin}), problems (the e-invoice check's, a list) and
        text (what is searched besides the fields). Each row's source is recorded as its first.
        """
        documents = []
        try:
            with self.transaction() as db:
                documents = [reads.insert(db, row) for row in rows]
        except sqlite3.IntegrityError as exc:
            paths = ", ".join(row["path"] for row in rows)
            raise IndexDbError(
                f"index {self.path}: {paths} or its content is already indexed"
            ) from exc
        return documents

    @staticmethod
    def _where(filters: dict[str, Any]) -> tuple[str, builtins.list]:
        """Return the WHERE clause and parameters shared by list() and count().

        A search's matches are looked up once, as a set; where they are many, list() walks
        the date order through it (a page needs a few dozen) rather than sorting them all.
        """
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
        if search := filters.get("search"):
            query = reads.match_query(search)
            # Nothing searchable (only punctuation) matches nothing rather than everything.
            # Looked up once: a prefix's matches are merged from many words' lists.
            if not query:
                clauses.append("0")
            else:
                clauses.append(
                    "id IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)"
                )
            params += [query] if query else []
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def list(
        self, *, limit: int | None = 100, offset: int = 0, **filters: Any
    ) -> builtins.list[IndexedDocument]:
        """Return matching documents, newest first: by the document's day (its date, else
        its arrival), then arrival, then id.

        The filters: company (any case), source, source_name, since (the document's date
        from this day on; one without a date by its arrival), received_since (its arrival) and
        text (in the path, company, original name, number or amount, any case), search (every
        word in the number, company, seller, amount or the document's text: FTS5). A day is a
        date (its midnight in UTC) or an aware datetime (a midnight in the user's zone).
        """
        dense = self._matches(filters, DENSE_MATCHES + 1) > DENSE_MATCHES
        where, params = self._where(filters)
        hint = " INDEXED BY documents_by_date" if dense else ""
        sql = (
            f"SELECT {_COLUMNS} FROM documents{hint}{where} "
            f"ORDER BY {DOCUMENT_DAY} DESC, received_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        params += [-1 if limit is None else max(0, limit), max(0, offset)]
        return [_row_to_document(row) for row in self.query(sql, params)]

    def count(self, **filters: Any) -> int:
        """Return how many documents match, with the same filters as list()."""
        if set(filters) == {"search"}:
            return self._matches(filters)
        where, params = self._where(filters)
        return self.query(f"SELECT count(*) FROM documents{where}", params)[0][0]

    def _matches(self, filters: dict[str, Any], up_to: int = -1) -> int:
        """How many documents the search of filters matches (0 without one), counted up to
        up_to (-1: all)."""
        query = reads.match_query(filters.get("search") or "")
        if not query:
            return 0
        sql = (
            "SELECT count(*) FROM (SELECT 1 FROM documents_fts WHERE documents_fts MATCH ? LIMIT ?)"
        )
        return self.query(sql, (query, up_to))[0][0]

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


def _now() -> str:
    """Return the current time as an index timestamp."""
    return _timestamp(datetime.now(UTC))
