"""What gmid remembers about IMAP folders, in the index: how far each is read, and what is owed.

Per folder: its UIDVALIDITY and the highest UID handled. Per handled mail: its Message-ID and
size (so that a rescan skips it before downloading) and, until it is done, the `then:` action
owed to it. The action is recorded in the same transaction that moves the folder past the mail,
after the mail's documents are durable; it is cleared once the server confirmed it. A crash in
between leaves it recorded, and it is done again after a restart: every action is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gmid.archive.index import Index
from gmid.config.imap import Action


@dataclass(frozen=True)
class FolderState:
    """How far one folder of a mailbox has been read."""

    uidvalidity: int
    last_uid: int
    messages: int = 0
    documents: int = 0
    synced_at: str | None = None


@dataclass(frozen=True)
class Handled:
    """One mail that was read: what it gave and what is owed to it."""

    uid: int
    message_id: str | None
    raw_sha256: str | None
    size: int | None
    documents: int
    action: Action


class ImapStore:
    """Reads and writes the IMAP tables of the index; blocking, safe from worker threads."""

    def __init__(self, index: Index, mailbox: str):
        self.index = index
        self.mailbox = mailbox

    def folder(self, folder: str) -> FolderState | None:
        """Return what is known of a folder, or None if it was never read."""
        rows = self.index.query(
            "SELECT uidvalidity, last_uid, messages, documents, synced_at FROM imap_folders "
            "WHERE mailbox = ? AND folder = ?",
            (self.mailbox, folder),
        )
        return FolderState(*rows[0]) if rows else None

    def totals(self) -> tuple[int, int, str | None]:
        """Return messages seen, documents filed and the last sync over all folders."""
        rows = self.index.query(
            "SELECT coalesce(sum(messages), 0), coalesce(sum(documents), 0), max(synced_at) "
            "FROM imap_folders WHERE mailbox = ?",
            (self.mailbox,),
        )
        return rows[0][0], rows[0][1], rows[0][2]

    def start_over(self, folder: str, uidvalidity: int) -> None:
        """Forget a folder's UIDs (new or changed UIDVALIDITY); documents and dedup records stay.

        The count of mails starts again too: the folder is read again, and a mail is one mail.
        """
        with self.index.transaction() as db:
            db.execute(
                "DELETE FROM imap_actions WHERE mailbox = ? AND folder = ? AND uidvalidity != ?",
                (self.mailbox, folder, uidvalidity),
            )
            db.execute(
                "INSERT INTO imap_folders (mailbox, folder, uidvalidity, last_uid) "
                "VALUES (?, ?, ?, 0) ON CONFLICT (mailbox, folder) DO UPDATE SET "
                "uidvalidity = excluded.uidvalidity, last_uid = 0, messages = 0",
                (self.mailbox, folder, uidvalidity),
            )

    def known(self, message_id: str | None, size: int | None, folder: str | None = None) -> bool:
        """Tell whether a mail with this Message-ID and size was read before, from any source.

        With a folder (one read again after its UIDVALIDITY changed), a mail with this
        Message-ID read from that folder before is known whatever its size: some servers
        (GNU imap4d) write headers of their own into a mail, which change its size.
        """
        if not message_id:
            return False
        source_name = f"{self.mailbox}/{folder}" if folder is not None else None
        rows = self.index.query(
            "SELECT 1 FROM messages WHERE message_id = ? AND (size = ? OR source_name = ?) LIMIT 1",
            (message_id, size, source_name),
        )
        return bool(rows)

    def advance(
        self,
        folder: str,
        uidvalidity: int,
        last_uid: int,
        handled: Iterable[Handled] = (),
        *,
        seen: int = 0,
        new_documents: int = 0,
    ) -> None:
        """Move the folder past last_uid, recording the mails read and the actions owed them."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        source_name = f"{self.mailbox}/{folder}"
        with self.index.transaction() as db:
            for h in handled:
                if h.raw_sha256 is not None:
                    db.execute(
                        "INSERT OR IGNORE INTO messages (message_id, raw_sha256, source, "
                        "source_name, documents, seen_at, size) VALUES (?, ?, 'imap', ?, ?, ?, ?)",
                        (h.message_id or "", h.raw_sha256, source_name, h.documents, now, h.size),
                    )
                if h.action.kind != "none":
                    db.execute(
                        "INSERT OR REPLACE INTO imap_actions "
                        "(mailbox, folder, uidvalidity, uid, action, target) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (self.mailbox, folder, uidvalidity, h.uid, h.action.kind, h.action.folder),
                    )
            db.execute(
                "UPDATE imap_folders SET last_uid = max(last_uid, ?), messages = messages + ?, "
                "documents = documents + ?, synced_at = ? "
                "WHERE mailbox = ? AND folder = ? AND uidvalidity = ?",
                (last_uid, seen, new_documents, now, self.mailbox, folder, uidvalidity),
            )

    def touch(self, folder: str) -> None:
        """Note that the folder was found up to date just now."""
        with self.index.transaction() as db:
            db.execute(
                "UPDATE imap_folders SET synced_at = ? WHERE mailbox = ? AND folder = ?",
                (datetime.now(UTC).isoformat(timespec="seconds"), self.mailbox, folder),
            )

    def owed(self, folder: str, uidvalidity: int) -> list[tuple[int, Action]]:
        """Return the actions recorded but not yet confirmed, by UID."""
        rows = self.index.query(
            "SELECT uid, action, target FROM imap_actions "
            "WHERE mailbox = ? AND folder = ? AND uidvalidity = ? ORDER BY uid",
            (self.mailbox, folder, uidvalidity),
        )
        return [(uid, Action(kind, target)) for uid, kind, target in rows]

    def done(self, folder: str, uidvalidity: int, uids: Iterable[int]) -> None:
        """Forget the actions the server has confirmed."""
        uids = list(uids)
        if not uids:
            return
        with self.index.transaction() as db:
            db.executemany(
                "DELETE FROM imap_actions "
                "WHERE mailbox = ? AND folder = ? AND uidvalidity = ? AND uid = ?",
                [(self.mailbox, folder, uidvalidity, uid) for uid in uids],
            )
