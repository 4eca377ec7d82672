"""What the index keeps of each document beyond its row: sources, text, where fields came from.

Functions on an open connection, called by Index inside its transactions (see index.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from typing import Any

from gmid.archive.rows import (
    COLUMNS,
    READ_FIELDS,
    IndexedDocument,
    default_origin,
    fields_json,
    fts_values,
    problems_json,
    row_to_document,
    text_value,
    timestamp,
    values,
)

_SOURCE_COLUMNS = "source, source_name, ref, message_id, sha256, original_name, received_at"
_AMOUNT_AS_TYPED = re.compile(r"\d{1,3}(\.\d{3})*,\d{1,2}|\d+,\d{1,2}")
_WORD = re.compile(r"\S+")
MAX_SEARCH_WORDS = 16
# Columns update() changes as given: the company, the file (a PDF taking an XML's place), reader.
IDENTITY = ("company", "path", "xml_path", "sha256", "size", "media_type", "original_name")
IDENTITY += ("read_version",)


def insert(db: sqlite3.Connection, row: dict[str, Any]) -> IndexedDocument:
    """Insert a document row, its first source and its searched text; return it."""
    value = values(row)
    marks = ", ".join("?" * (len(value) + 2))
    cursor = db.execute(
        f"INSERT INTO documents ({COLUMNS.removeprefix('id, ')}, fields_from, problems) "
        f"VALUES ({marks})",
        (*value, fields_json(row.get("fields_from")), problems_json(row.get("problems"))),
    )
    assert cursor.lastrowid is not None
    doc = row_to_document((cursor.lastrowid, *value))
    add_source(
        db,
        doc.id,
        source=doc.source,
        source_name=doc.source_name,
        ref=doc.source_ref,
        message_id=doc.message_id,
        sha256=doc.sha256,
        original_name=doc.original_name,
        received_at=doc.received_at,
    )
    db.execute(
        "INSERT INTO documents_fts (rowid, number, company, seller, amount, text) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        fts_values(doc, row.get("text")),
    )
    return doc


def add_source(db: sqlite3.Connection, doc_id: int, **source: Any) -> None:
    """Record one more way a document came (unless this very one is recorded already)."""
    received = source["received_at"]
    params = (
        source["source"],
        source["source_name"],
        source.get("ref"),
        source.get("message_id"),
        source["sha256"],
        source.get("original_name"),
        timestamp(received) if isinstance(received, datetime) else received,
    )
    known = db.execute(
        "SELECT 1 FROM document_sources WHERE document_id = ? AND source_name = ? "
        "AND sha256 = ? AND ref IS ? AND message_id IS ?",
        (doc_id, params[1], params[4], params[2], params[3]),
    ).fetchone()
    if not known:
        db.execute(
            f"INSERT INTO document_sources (document_id, {_SOURCE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, *params),
        )


def update(db: sqlite3.Connection, doc_id: int, changes: dict[str, Any]) -> IndexedDocument:
    """Change a document's read fields (and those of IDENTITY, fields_from, problems and
    text, as given); keep its searched text in step; return it as it is now."""
    columns = {k: text_value(v) for k, v in changes.items() if k in READ_FIELDS}
    for key in IDENTITY:
        if key in changes:
            columns[key] = changes[key]
    if "fields_from" in changes:
        columns["fields_from"] = fields_json(changes["fields_from"])
    if "problems" in changes:
        columns["problems"] = problems_json(changes["problems"])
    if columns:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(f"UPDATE documents SET {assignments} WHERE id = ?", (*columns.values(), doc_id))
    row = db.execute(f"SELECT {COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
    doc = row_to_document(row)
    if "text" in changes:
        text = changes["text"]
    else:
        old = db.execute("SELECT text FROM documents_fts WHERE rowid = ?", (doc_id,)).fetchone()
        text = old[0] if old else None
    db.execute("DELETE FROM documents_fts WHERE rowid = ?", (doc_id,))
    db.execute(
        "INSERT INTO documents_fts (rowid, number, company, seller, amount, text) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        fts_values(doc, text),
    )
    return doc


def details(db: sqlite3.Connection, doc_id: int) -> dict | None:
    """A document with every field and where it came from, its check and its sources."""
    row = db.execute(
        f"SELECT {COLUMNS}, fields_from, problems FROM documents WHERE id = ?", (doc_id,)
    ).fetchone()
    if row is None:
        return None
    doc = row_to_document(row[:-2])
    fields_from = json.loads(row[-2]) if row[-2] else {}
    fallback = default_origin(doc.source)
    data = doc.to_dict()
    fields = {
        name: {"value": str(data[name]), "from": fields_from.get(name, fallback)}
        for name in READ_FIELDS
        if data[name] is not None
    }
    fields["company"] = {"value": doc.company, "from": fields_from.get("company", fallback)}
    problems = json.loads(row[-1]) if row[-1] is not None else None
    check = None if problems is None else {"ok": not problems, "problems": problems}
    sources = [
        dict(zip(_SOURCE_COLUMNS.split(", "), r, strict=True))
        for r in db.execute(
            f"SELECT {_SOURCE_COLUMNS} FROM document_sources WHERE document_id = ? ORDER BY id",
            (doc_id,),
        )
    ]
    return {
        "document": data,
        "fields": fields,
        "check": check,
        "sources": sources,
        "xml_path": doc.xml_path,
    }


def match_query(text: str) -> str | None:
    """An FTS5 query for what a user typed, searched as it is typed: every word must occur as
    the beginning of a word (so "Telek" finds Telekom and "4711" finds 4711-0815), each word a
    quoted phrase of its tokens (so "R-2026-0042" or "84,20" match as written, and quotes,
    `*`, NEAR, OR, `-` or parentheses typed are plain text); None when nothing searchable
    is left."""
    words = []
    for word in _WORD.findall(text)[:MAX_SEARCH_WORDS]:
        if _AMOUNT_AS_TYPED.fullmatch(word):
            word = word.replace(".", "").replace(",", ".")
        if any(ch.isalnum() for ch in word):
            words.append('"' + word.replace('"', '""') + '"*')
    return " ".join(words) or None
