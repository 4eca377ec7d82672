"""The index's SQLite schema: the migration steps that create and upgrade its tables."""

from __future__ import annotations

# Each step moves the schema one version up; PRAGMA user_version records how many have run.
# Append new steps, never edit old ones: an index on disk may be at any earlier version.
# A document's day: its own date, else the (UTC) day it arrived; how lists sort and --since reads.
DOCUMENT_DAY = "coalesce(date, substr(received_at, 1, 10))"

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            source TEXT NOT NULL,
            source_name TEXT NOT NULL,
            company TEXT NOT NULL,
            original_name TEXT,
            message_id TEXT,
            source_ref TEXT,
            received_at TEXT NOT NULL,
            date TEXT,
            number TEXT,
            amount TEXT
        )""",
        "CREATE UNIQUE INDEX documents_sha256 ON documents (sha256)",
        "CREATE UNIQUE INDEX documents_path ON documents (path)",
        "CREATE INDEX documents_received_at ON documents (received_at, id)",
        "CREATE INDEX documents_company ON documents (company)",
        "CREATE INDEX documents_source_ref ON documents (source_name, source_ref)",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            raw_sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            source_name TEXT NOT NULL,
            documents INTEGER NOT NULL,
            seen_at TEXT NOT NULL,
            UNIQUE (message_id, raw_sha256)
        )""",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            reason TEXT NOT NULL,
            source TEXT NOT NULL,
            source_name TEXT NOT NULL,
            quarantined_at TEXT NOT NULL
        )""",
    ),
    (  # 2: portal runs (gmid/portals/runlog.py)
        """CREATE TABLE portal_refs (
            portal TEXT NOT NULL,
            ref TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (portal, ref)
        )""",
        """CREATE TABLE portal_runs (
            id INTEGER PRIMARY KEY,
            portal TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            message TEXT,
            portal_message TEXT,
            new_documents INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            manual INTEGER NOT NULL
        )""",
        "CREATE INDEX portal_runs_portal ON portal_runs (portal, id)",
        """CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            domain TEXT NOT NULL,
            suggested_at TEXT NOT NULL,
            draft TEXT
        )""",
    ),
    (  # 3: IMAP mailboxes (gmid/mail/imap/store.py)
        """CREATE TABLE imap_folders (
            mailbox TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            last_uid INTEGER NOT NULL,
            messages INTEGER NOT NULL DEFAULT 0,
            documents INTEGER NOT NULL DEFAULT 0,
            synced_at TEXT,
            PRIMARY KEY (mailbox, folder)
        )""",
        """CREATE TABLE imap_actions (
            mailbox TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            PRIMARY KEY (mailbox, folder, uidvalidity, uid)
        )""",
        "ALTER TABLE messages ADD COLUMN size INTEGER",
        "CREATE INDEX messages_message_id ON messages (message_id)",
    ),
    (
        # Lists sort by the document's own date, its arrival day where it has none.
        f"CREATE INDEX documents_by_date ON documents ({DOCUMENT_DAY} DESC, received_at DESC, "
        "id DESC)",
    ),
    (  # 5: what each document says (gmid/documents/understand.py), its sources, its text
        "ALTER TABLE documents ADD COLUMN kind TEXT",  # invoice, credit_note, receipt, other
        "ALTER TABLE documents ADD COLUMN currency TEXT",
        "ALTER TABLE documents ADD COLUMN seller TEXT",
        "ALTER TABLE documents ADD COLUMN seller_vat_id TEXT",
        "ALTER TABLE documents ADD COLUMN iban TEXT",
        "ALTER TABLE documents ADD COLUMN due_date TEXT",
        "ALTER TABLE documents ADD COLUMN buyer TEXT",
        "ALTER TABLE documents ADD COLUMN net_total TEXT",
        "ALTER TABLE documents ADD COLUMN tax_total TEXT",
        "ALTER TABLE documents ADD COLUMN xml_path TEXT",  # the e-invoice XML kept beside it
        # JSON {field: "einvoice" | "text" | "portal" | "mail"}: where each value came from.
        "ALTER TABLE documents ADD COLUMN fields_from TEXT",
        # JSON list of the e-invoice check's problems; NULL when there was no e-invoice.
        "ALTER TABLE documents ADD COLUMN problems TEXT",
        # The reader's version that read the document; 0: not read yet (`gmid reindex`).
        "ALTER TABLE documents ADD COLUMN read_version INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX documents_date ON documents (date)",  # the same invoice: same date first
        "CREATE INDEX documents_unread ON documents (read_version, id)",
        """CREATE TABLE document_sources (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents (id),
            source TEXT NOT NULL,
            source_name TEXT NOT NULL,
            ref TEXT,
            message_id TEXT,
            sha256 TEXT NOT NULL,
            original_name TEXT,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX document_sources_document ON document_sources (document_id)",
        "CREATE INDEX document_sources_sha256 ON document_sources (sha256)",
        """INSERT INTO document_sources (document_id, source, source_name, ref, message_id,
            sha256, original_name, received_at)
            SELECT id, source, source_name, source_ref, message_id, sha256, original_name,
            received_at FROM documents""",
        # rowid = documents.id; the text column holds the document's text (bounded).
        """CREATE VIRTUAL TABLE documents_fts USING fts5 (
            number, company, seller, amount, text, tokenize = 'unicode61 remove_diacritics 2'
        )""",
        """INSERT INTO documents_fts (rowid, number, company, seller, amount, text)
            SELECT id, coalesce(number, ''), company, '', coalesce(amount, ''),
            coalesce(original_name, '') FROM documents""",
        # A rename under way (archive.py _rename): finished or undone by Archive.recover().
        """CREATE TABLE renames (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL,
            field TEXT NOT NULL,
            old_path TEXT NOT NULL,
            new_path TEXT NOT NULL
        )""",
    ),
    (  # 6: the outbox: each document's delivery to each destination (gmid/deliver/outbox.py)
        """CREATE TABLE outbox (
            document_id INTEGER NOT NULL,
            destination TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try REAL,
            reference TEXT,
            error TEXT,
            queued_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (document_id, destination)
        )""",
        "CREATE INDEX outbox_due ON outbox (destination, state, next_try)",
        # Per destination, the last document looked at for queueing: what was filed after it
        # (a crash between filing and queueing included) is queued at the next look.
        """CREATE TABLE outbox_cursor (
            destination TEXT PRIMARY KEY,
            last_document INTEGER NOT NULL
        )""",
    ),
    (  # 7: search as you type: words' first one and two letters indexed (prefix queries)
        """CREATE VIRTUAL TABLE documents_fts_new USING fts5 (
            number, company, seller, amount, text, tokenize = 'unicode61 remove_diacritics 2',
            prefix = '1 2'
        )""",
        """INSERT INTO documents_fts_new (rowid, number, company, seller, amount, text)
            SELECT rowid, number, company, seller, amount, text FROM documents_fts""",
        "DROP TABLE documents_fts",
        "ALTER TABLE documents_fts_new RENAME TO documents_fts",
    ),
]
