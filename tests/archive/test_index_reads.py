"""The index's reading part: fields and where they came from, sources, text, full-text search."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from gmid.archive.index import Index
from gmid.archive.schema import MIGRATIONS

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def index(tmp_path):
    idx = Index(tmp_path / "index.sqlite")
    yield idx
    idx.close()


def row(n: int, **fields):
    return {
        "sha256": f"{n:064x}",
        "path": f"Acme/doc-{n}.pdf",
        "size": 100 + n,
        "media_type": "application/pdf",
        "source": "smtp",
        "source_name": "smtp",
        "company": "Acme",
        "received_at": T0 + timedelta(hours=n),
    } | fields


def test_details_name_where_each_field_came_from(index):
    doc = index.add(
        **row(
            1,
            number="R-2026-0042",
            date=date(2026, 3, 4),
            amount="1014.00",
            currency="EUR",
            kind="invoice",
            seller="Telekom Deutschland GmbH",
            seller_vat_id="DE123456789",
            fields_from={"number": "einvoice", "date": "einvoice", "amount": "text"},
            problems=["sums: net 100.00 + tax 19.00 is not gross 120.00"],
            text="Rechnung für Anschluss",
            message_id="<m@x>",
        )
    )
    details = json.loads(json.dumps(index.details(doc.id)))
    assert details["document"]["number"] == "R-2026-0042"
    assert details["document"]["seller_vat_id"] == "DE123456789"
    assert details["fields"]["number"] == {"value": "R-2026-0042", "from": "einvoice"}
    assert details["fields"]["amount"] == {"value": "1014.00", "from": "text"}
    assert details["fields"]["currency"]["from"] == "mail"  # not said: the mail's
    assert details["check"] == {
        "ok": False,
        "problems": ["sums: net 100.00 + tax 19.00 is not gross 120.00"],
    }
    assert [s["source_name"] for s in details["sources"]] == ["smtp"]
    assert details["sources"][0]["message_id"] == "<m@x>"
    assert details["xml_path"] is None
    assert "Anschluss" in index.text(doc.id)
    assert index.details(doc.id + 1) is None and index.get(doc.id + 1) is None
    assert index.get(doc.id) == doc


def test_search_by_a_word_of_the_text_the_number_and_the_amount(index):
    a = index.add(**row(1, number="R-2026-0042", amount="1014.00", text="Glasfaser Anschluss"))
    b = index.add(**row(2, number="INV-7", amount="84.20", text="Strom für Müllerstraße"))
    assert [d.id for d in index.list(search="glasfaser")] == [a.id]
    assert [d.id for d in index.list(search="R-2026-0042")] == [a.id]
    assert [d.id for d in index.list(search="84,20")] == [b.id]
    assert [d.id for d in index.list(search="1.014,00")] == [a.id]
    assert [d.id for d in index.list(search="mullerstrasse strom")] == []  # ß is not ss
    assert [d.id for d in index.list(search="müllerstraße strom")] == [b.id]
    assert [d.id for d in index.list(search="mullerstraße")] == [b.id]  # diacritics folded
    assert index.count(search="acme") == 2
    assert index.count(search="Glasfaser Strom") == 0  # every word must occur
    assert index.count(search='"") *') == 0  # FTS syntax typed is no error, matches nothing
    assert index.count(search="Anschluss", company="Acme") == 1


def test_search_as_you_type_matches_the_beginnings_of_words_and_no_syntax(index):
    a = index.add(**row(1, number="R-2026-0042", amount="1014.00", text="Glasfaser Anschluss"))
    b = index.add(**row(2, number="4711-0815", amount="84.20", text="Telekom Mobilfunk"))
    for typed, found in [
        ("Telek", [b.id]),
        ("4711", [b.id]),
        ("R-2026-00", [a.id]),
        ("84,2", [b.id]),
        ("glas ansch", [a.id]),
        ("Telek Glas", []),  # every word still
        ("elekom", []),  # the beginning of a word, not any part
    ]:
        assert [d.id for d in index.list(search=typed)] == found, typed
    for hostile in ['"', "*", "NEAR(", "a OR b", "-x", "Telek*", '"Telek', "(Telek)", "^T", ":"]:
        index.list(search=hostile)  # never an error
        assert index.count(search=hostile) in (0, 1), hostile
    assert index.count(search="NEAR(Telek Glas)") == 0  # NEAR is a word here: none has it
    assert index.count(search="(Telek)") == index.count(search="-Telek*") == 1


def test_update_changes_fields_and_what_is_searched(index):
    doc = index.add(**row(1))
    assert index.count(search="Vodafone") == 0
    index.update(
        doc.id,
        seller="Vodafone GmbH",
        number="V-1",
        date=date(2026, 2, 1),
        fields_from={"seller": "text", "number": "text"},
        text="Mobilfunk",
        read_version=1,
    )
    assert [d.id for d in index.list(search="vodafone mobilfunk")] == [doc.id]
    assert index.get(doc.id).date == date(2026, 2, 1)
    assert index.unread(1) == [] and index.unread_count(2) == 1
    index.update(doc.id, amount="9.99")  # the text stays
    assert index.count(search="mobilfunk 9,99") == 1


def test_another_source_of_the_same_document(index):
    doc = index.add(**row(1, source="portal", source_name="telekom", source_ref="A1"))
    index.add_source(
        doc.id,
        source="smtp",
        source_name="smtp",
        sha256="e" * 64,
        message_id="<x@y>",
        received_at=T0,
    )
    index.add_source(doc.id, source="smtp", source_name="smtp", sha256="e" * 64,
                     message_id="<x@y>", received_at=T0)  # fmt: skip
    sources = index.details(doc.id)["sources"]
    assert [(s["source_name"], s["ref"]) for s in sources] == [("telekom", "A1"), ("smtp", None)]
    assert index.by_any_sha256("e" * 64) == doc
    assert index.details(doc.id)["fields"]["company"]["from"] == "portal"


def test_an_index_of_schema_4_gains_sources_and_search(tmp_path):
    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path)
    for statements in MIGRATIONS[:4]:
        for statement in statements:
            raw.execute(statement)
    raw.execute(
        "INSERT INTO documents (sha256, path, size, media_type, source, source_name, company, "
        "original_name, message_id, received_at, number) VALUES "
        "(?, 'Acme/a.pdf', 1, 'application/pdf', 'smtp', 'smtp', 'Acme', 'Jahresabrechnung.pdf',"
        " '<m@x>', '2026-01-01T00:00:00.000000+00:00', 'J-9')",
        ("a" * 64,),
    )
    raw.execute("PRAGMA user_version = 4")
    raw.commit()
    raw.close()
    index = Index(path)
    try:
        [doc] = index.list()
        assert doc.read_version == 0 and index.unread_count(1) == 1
        assert index.details(doc.id)["sources"][0]["message_id"] == "<m@x>"
        assert index.count(search="jahresabrechnung") == 1
        assert index.count(search="J-9") == 1
    finally:
        index.close()


def test_the_index_and_its_unread_count_do_not_load_the_readers(tmp_path):
    """The daemon looks at start whether anything is unread; lxml and pypdf wait for a read."""
    code = (
        "import sys; from pathlib import Path; from gmid.archive.index import Index; "
        "from gmid.documents.fields import READER_VERSION; "
        "index = Index(Path(sys.argv[1])); print(index.unread_count(READER_VERSION)); "
        "print(sorted(m for m in ('pypdf', 'lxml.etree') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "index.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split("\n")[:2] == ["0", "[]"], done.stderr


def test_a_search_matching_most_documents_lists_them_newest_first(index):
    rows = [
        row(n, date=date(2026, 1, 1) + timedelta(days=n % 300), text="Strom" if n % 3 else "Gas")
        for n in range(900)
    ]
    rows[5]["company"] = "Stadtwerke"
    index.add_many(rows)
    found = index.list(search="strom", limit=50)
    assert index.count(search="strom") == 600 > 500  # listed by walking the date order
    assert [d.date for d in found] == sorted((d.date for d in found), reverse=True)
    newest = sorted((r for r in rows if r["text"] == "Strom"), key=lambda r: r["date"])[-1]
    assert found[0].date == newest["date"] and all(index.text(d.id) == "Strom" for d in found)
    assert [d.company for d in index.list(search="strom", company="Stadtwerke")] == ["Stadtwerke"]
    assert index.count(search="strom", company="stadtwerke") == 1
