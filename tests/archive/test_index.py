"""The SQLite index: rows, filters, mail dedup, schema versions, on a real database file."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gmid.archive.index import Index
from gmid.archive.schema import MIGRATIONS
from gmid.errors import IndexDbError

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def index(tmp_path):
    idx = Index(tmp_path / "state" / "index.sqlite")
    yield idx
    idx.close()


def add(index: Index, n: int, **fields):
    """Add document number n with plausible defaults."""
    values = {
        "sha256": f"{n:064x}",
        "path": f"Acme/doc-{n}.pdf",
        "size": 100 + n,
        "media_type": "application/pdf",
        "source": "smtp",
        "source_name": "smtp",
        "company": "Acme",
        "received_at": T0 + timedelta(hours=n),
    }
    return index.add(**(values | fields))


def test_add_and_look_up(index):
    doc = add(index, 1, original_name="Rechnung.pdf", message_id="<m@x>", number="R-1")
    assert doc.id > 0
    assert index.by_sha256(f"{1:064x}") == doc
    assert index.by_path("Acme/doc-1.pdf") == doc
    assert index.by_sha256("f" * 64) is None
    assert doc.received_at == T0 + timedelta(hours=1)
    assert doc.received_at.tzinfo is not None
    assert doc.date is None and doc.amount is None


def test_received_at_is_stored_in_utc(index):
    berlin = datetime(2026, 11, 1, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    doc = add(index, 1, received_at=berlin)
    assert index.by_sha256(doc.sha256).received_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert index.by_sha256(doc.sha256).received_at.utcoffset() == timedelta(0)


def test_naive_received_at_is_refused(index):
    with pytest.raises(ValueError, match="naive"):
        add(index, 1, received_at=datetime(2026, 1, 1))
    assert index.count() == 0


def test_same_content_twice_is_refused(index):
    add(index, 1)
    with pytest.raises(IndexDbError, match="already indexed"):
        add(index, 1, path="Other/place.pdf")
    assert index.count() == 1


def test_to_dict_is_json(index):
    doc = add(index, 1, date=date(2026, 10, 31), number="42", amount="12.50")
    data = json.loads(json.dumps(doc.to_dict()))
    assert data["received_at"] == "2026-11-01T10:00:00+00:00"
    assert data["date"] == "2026-10-31"
    assert data["number"] == "42" and data["path"] == "Acme/doc-1.pdf"
    assert index.by_sha256(doc.sha256).date == date(2026, 10, 31)


def test_list_newest_first_and_paging(index):
    for n in range(1, 6):
        add(index, n)
    # Same received time: the later insert comes first.
    add(index, 6, received_at=T0 + timedelta(hours=5))
    paths = [d.path for d in index.list()]
    assert paths == [f"Acme/doc-{n}.pdf" for n in (6, 5, 4, 3, 2, 1)]
    assert [d.path for d in index.list(limit=2, offset=1)] == ["Acme/doc-5.pdf", "Acme/doc-4.pdf"]
    assert index.list(limit=2, offset=10) == []
    assert len(index.list(limit=None)) == 6


def test_list_filters(index):
    add(index, 1, company="Stadtwerke München", source="smtp", source_name="smtp")
    add(index, 2, company="Telekom", source="portal", source_name="telekom", number="RE-2026-77")
    add(index, 3, company="Telekom", source="imap", source_name="INBOX", original_name="Bill.PDF")
    add(index, 4, company="Acme", path="Acme/quarterly report.pdf")

    assert {d.sha256[-1] for d in index.list(company="Telekom")} == {"2", "3"}
    assert [d.source_name for d in index.list(source="portal")] == ["telekom"]
    assert [d.company for d in index.list(source_name="INBOX")] == ["Telekom"]
    assert [d.company for d in index.list(company="Telekom", source="imap")] == ["Telekom"]
    # received_since: a date is its midnight in UTC; a datetime is exact.
    assert index.count(received_since=date(2026, 11, 1)) == 4
    assert index.count(received_since=date(2026, 11, 2)) == 0
    assert index.count(received_since=T0 + timedelta(hours=3)) == 2
    # a company as the user types it
    assert {d.sha256[-1] for d in index.list(company="telekom")} == {"2", "3"}
    assert [d.company for d in index.list(company="STADTWERKE MÜNCHEN")] == ["Stadtwerke München"]
    # text: path, company, original name, number; case-insensitive, Unicode included.
    assert [d.company for d in index.list(text="MÜNCHEN")] == ["Stadtwerke München"]
    assert [d.company for d in index.list(text="re-2026")] == ["Telekom"]
    assert [d.original_name for d in index.list(text="bill.pdf")] == ["Bill.PDF"]
    assert [d.path for d in index.list(text="QUARTERLY REP")] == ["Acme/quarterly report.pdf"]
    assert index.list(text="nowhere") == []
    assert index.count(text="telekom", source="imap") == 1
    assert index.count() == 4


def test_lists_go_by_the_documents_own_date_and_find_amounts_as_typed(index):
    """A March invoice that arrived in November is listed after April's, and --since is about
    the invoice's date; a document without one goes by the day it arrived."""
    add(index, 1, date=date(2026, 3, 31), amount="1234.50", number="M")  # arrived first
    add(index, 2, date=date(2026, 4, 30), amount="84.20", number="A")
    add(index, 3, number="X")  # no date of its own: arrived 2026-11-01
    assert [d.number for d in index.list()] == ["X", "A", "M"]
    assert [d.number for d in index.list(since=date(2026, 4, 1))] == ["X", "A"]
    assert [d.number for d in index.list(since=date(2026, 11, 2))] == []
    # a day in the user's zone: Y arrived on 1 November in UTC, on the 2nd in Tokyo
    add(index, 4, number="Y", received_at=datetime(2026, 11, 1, 23, 30, tzinfo=UTC))
    assert [d.number for d in index.list(since=date(2026, 11, 2))] == []
    tokyo = datetime(2026, 11, 2, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert [d.number for d in index.list(since=tokyo)] == ["Y"]
    assert index.count(received_since=T0 + timedelta(hours=2)) == 3
    assert [d.number for d in index.list(text="84,20")] == ["A"]
    assert [d.number for d in index.list(text="1.234,50")] == ["M"]
    assert [d.number for d in index.list(text="1234.5")] == ["M"]
    with pytest.raises(TypeError):
        index.list(sinse=date(2026, 1, 1))


def test_quarantine_count(index):
    assert index.quarantine_count() == 0
    index.record_quarantine("/q/1.eml", "broken MIME", "smtp", "smtp")
    index.record_quarantine("/q/2.eml", "broken MIME", "imap", "INBOX")
    assert index.quarantine_count() == 2


def test_everything_survives_reopen(tmp_path):
    path = tmp_path / "index.sqlite"
    first = Index(path)
    doc = add(first, 1)
    first.record_quarantine("/q/1.eml", "broken MIME", "smtp", "smtp")
    first.close()

    second = Index(path)
    try:
        assert second.query("PRAGMA user_version") == [(len(MIGRATIONS),)]
        assert second.by_sha256(doc.sha256) == doc
        assert second.quarantine_count() == 1
        add(second, 2)
        assert second.count() == 2
    finally:
        second.close()


def test_wal_mode_and_private_files(tmp_path):
    path = tmp_path / "state" / "index.sqlite"
    index = Index(path)
    add(index, 1)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    index.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "index.sqlite"
    Index(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(IndexDbError, match="newer than this gmid"):
        Index(path)


def test_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexDbError, match=r"cannot open the index .*index\.sqlite"):
        Index(path)


def test_threads_share_one_index(index):
    errors = []

    def work(base):
        try:
            for n in range(base, base + 25):
                add(index, n)
                assert index.by_sha256(f"{n:064x}") is not None
                index.list(limit=5)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert index.count() == 200
