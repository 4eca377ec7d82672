"""One pass over one selected IMAP folder: pick the new mails, file their documents, act on them.

The pass reads metadata first (size, BODYSTRUCTURE and a few header fields) and downloads a body
only for a mail that a rule can match and that may carry a document. Documents are durable
before the folder's state moves past a mail and before its `then:` action is sent; see
gmid/mail/imap/store.py for how an interrupted pass resumes. Bodies come in batches: while one batch
is filed, a few mails at a time, the next one downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from aioimaplib import IMAP4

from gmid import failpoints
from gmid.config.imap import Action, MailboxConfig, Rule
from gmid.errors import GmidError
from gmid.mail.headers import summarize_headers
from gmid.mail.imap.fetch import FetchedMessage, Part, parse_fetch
from gmid.mail.imap.folders import ServerNames
from gmid.mail.imap.store import Handled, ImapStore
from gmid.mail.imap.wire import mailbox_arg, parse_exists, parse_search, parse_select, uid_set
from gmid.mail.ingest import IngestResult, Mail
from gmid.mail.parse import Document

logger = logging.getLogger(__name__)

HEADER_FIELDS = "FROM SENDER REPLY-TO SUBJECT MESSAGE-ID"
FETCH_META = f"(UID RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])"
MAX_UID = 4294967295
META_CHUNK = 500  # UIDs per metadata FETCH
BODY_BATCH_BYTES = 8 * 2**20  # bodies per FETCH, by their RFC822.SIZE
BODY_BATCH_COUNT = 50
_SIGNATURES = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/pgp-keys",
    }
)
_DOCUMENT_SUFFIXES = (".pdf", ".xml")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".webp")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
EVERYTHING = Rule()  # the rule of a mailbox without rules: every mail with a document

Ingest = Callable[[list[Mail]], Awaitable[list[IngestResult]]]


class ImapCommandError(GmidError):
    """The server answered NO or BAD; the message is the server's."""


@dataclass(frozen=True)
class Decision:
    """What one mail's metadata decided."""

    uid: int
    size: int | None
    message_id: str | None
    rule: Rule | None  # None: not wanted, the body is never fetched


def may_carry_document(part: Part, types: tuple[str, ...]) -> bool:
    """Tell whether a MIME part could be filed, judging from BODYSTRUCTURE alone."""
    kind = part.media_type
    name = (part.filename or "").casefold()
    attached = part.disposition == "attachment"
    if kind in ("text/plain", "text/html") and not attached and not name:
        return False
    if kind in _SIGNATURES or kind.startswith("multipart/"):
        return False
    if name.endswith(_DOCUMENT_SUFFIXES) or kind in ("application/pdf", "application/xml"):
        return True
    if kind.startswith("image/") or name.endswith(_IMAGE_SUFFIXES):
        # an inline logo is not a document; parse_mail files images only as real attachments
        return "image" in types and (attached or (bool(name) and not part.content_id))
    if kind.startswith("text/"):
        return kind == "text/xml" or (attached and "xml" in types)
    return True  # application/octet-stream and the like: only the bytes can tell


def decide(
    meta: FetchedMessage, rules: tuple[Rule, ...], types: tuple[str, ...], keep_mail: bool
) -> Decision:
    """Pick the rule a mail falls under, from its headers and BODYSTRUCTURE; None if none."""
    summary = summarize_headers(meta.header or b"")
    chosen = None
    for rule in rules or (EVERYTHING,):
        if not (rule.sender_matches(summary.senders) and rule.subject_matches(summary.subject)):
            continue
        if meta.parts is None:  # an unreadable structure: only the body can tell
            chosen = rule
            break
        filtered = bool(rule.attachments or rule.exclude_attachments)
        documents = [p for p in meta.parts if may_carry_document(p, types)]
        if filtered:
            documents = [p for p in documents if rule.attachment_wanted(p.filename)]
        # A rule naming senders or subjects may keep a mail without documents whole (.eml);
        # the catch-all of a mailbox without rules never does: that would file every mail.
        if documents or (keep_mail and rules and not filtered):
            chosen = rule
            break
    return Decision(meta.uid, meta.size, summary.message_id, chosen)


def imap_date(day: date) -> str:
    """Format a date for SEARCH SINCE: 1-Jan-2026."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def _checked(response, what: str):
    if response.result != "OK":
        text = response.lines[-1] if response.lines else b""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        raise ImapCommandError(f"{what}: {response.result} {str(text)[:200]}".strip())
    return response


class FolderSync:
    """Syncs one folder over a connection that has it selected."""

    def __init__(
        self,
        client: IMAP4,
        config: MailboxConfig,
        folder: str,
        store: ImapStore,
        ingest: Ingest,
        *,
        types: tuple[str, ...],
        keep_mail: bool,
        run: Callable[..., Awaitable],
        server_names: ServerNames | None = None,
    ):
        self.client = client
        self.config = config
        self.folder = folder  # as the config names it: the index and the documents know it so
        # the server's names of the folder and of the `move:` targets (gmid/mail/imap/folders.py)
        self.server_names = server_names or ServerNames()
        self.mailbox = self.server_names[folder]
        self.store = store
        self.ingest = ingest
        self.types = types
        self.keep_mail = keep_mail
        self.run = run  # runs a blocking call in the daemon's executor
        self.uidvalidity = 0
        self.bodies = 0  # bodies downloaded by this connection
        self.filed = 0  # new documents filed by this connection
        self.seen = 0
        self.exists: int | None = None  # the folder's mail count, as the server last said
        self.problem: str | None = None  # why new mail cannot be seen, when it cannot
        self.again = False  # the folder is read again after its UIDVALIDITY changed
        self.left_deleted = 0  # mails deleted or moved that stay flagged \Deleted (no UIDPLUS)

    async def begin(self, uidvalidity: int) -> None:
        """Take the folder's UIDVALIDITY from SELECT; a change means every UID is new."""
        self.uidvalidity = uidvalidity
        state = await self.run(self.store.folder, self.folder)
        if state is None or state.uidvalidity != uidvalidity:
            if state is not None:
                self.again = True
                logger.warning(
                    "%s/%s: UIDVALIDITY changed (%d -> %d): reading the folder again; "
                    "mails already filed are recognised and not filed twice",
                    self.config.name,
                    self.folder,
                    state.uidvalidity,
                    uidvalidity,
                )
            await self.run(self.store.start_over, self.folder, uidvalidity)

    async def sync(self) -> int:
        """Handle owed actions, then every mail above the last UID; return new documents."""
        filed_before = self.filed
        owed = await self.run(self.store.owed, self.folder, self.uidvalidity)
        if owed:
            await self._act(owed)
        state = await self.run(self.store.folder, self.folder)
        last = state.last_uid if state else 0
        uids = await self._new_uids(last)
        if not uids:
            await self.run(self.store.touch, self.folder)
            return 0
        # One download runs ahead of the filing: the next batch of bodies, or the next chunk's
        # metadata, while the current batch is filed. Never more than one command is in flight.
        chunks = [uids[i : i + META_CHUNK] for i in range(0, len(uids), META_CHUNK)]
        ahead = asyncio.ensure_future(self._plan(chunks[0]))
        try:
            for i, chunk in enumerate(chunks):
                wanted, ahead = await ahead, None
                following = chunks[i + 1] if i + 1 < len(chunks) else None
                ahead = await self._chunk(chunk, wanted, following)
        finally:
            await _drop(ahead)
        return self.filed - filed_before

    async def _search(self, *criteria: str) -> list[int]:
        response = _checked(await self.client.uid_search(*criteria, charset=None), "UID SEARCH")
        self._note_exists(response.lines)
        return sorted(parse_search(response.lines))

    def _note_exists(self, lines) -> None:
        exists = parse_exists(lines)
        if exists is not None:
            self.exists = exists

    async def _new_uids(self, last: int) -> list[int]:
        """The UIDs above last that are to be read, found even where the server's SEARCH fails.

        The range ends in the highest UID there can be, not in "*": GNU imap4d 3.15 answers
        `UID SEARCH UID n:*` with nothing at all. When the search finds nothing, a FETCH of
        "n:*" (the mails from n up, or the highest one when all are below n) checks it.
        """
        since = ["SINCE", imap_date(self.config.since)] if self.config.since else []
        uids = [u for u in await self._search("UID", f"{last + 1}:{MAX_UID}", *since) if u > last]
        if uids:
            self.problem = None
            return uids
        response = _checked(await self.client.uid("fetch", f"{last + 1}:*", "(UID)"), "FETCH")
        self._note_exists(response.lines)
        found = [m.uid for m in parse_fetch(response.lines)]
        if not found and self.exists:
            # the count may be from before the mails were moved or deleted: ask it again
            self.exists = parse_select((await select(self.client, self.mailbox)).lines)["exists"]
        if not found and self.exists:
            # a FETCH of "n:*" in a folder that is not empty names one mail at least
            self.problem = (
                f"the server counts {self.exists} mail(s) in {self.folder} but finds none: "
                "new mail cannot be seen"
            )
            logger.warning("%s/%s: %s", self.config.name, self.folder, self.problem)
            return []
        self.problem = None
        above = sorted(u for u in found if u > last)
        if not above:
            return []
        # Mail above last that the search left out: older than since:, or missed by the search.
        if since and set(above) <= set(await self._search("UID", uid_set(above))):
            await self.run(self.store.advance, self.folder, self.uidvalidity, max(above))
            return []
        logger.warning(
            "%s/%s: the server's SEARCH missed new mail (UID %d and up); found it by FETCH",
            self.config.name,
            self.folder,
            above[0],
        )
        return above

    async def _plan(self, uids: list[int]) -> list[Decision]:
        """Read the metadata of a chunk of mails; return those whose bodies are wanted."""
        response = _checked(await self.client.uid("fetch", uid_set(uids), FETCH_META), "FETCH")
        metas = {m.uid: m for m in parse_fetch(response.lines) if m.uid in set(uids)}
        decisions = [
            decide(metas[u], self.config.rules, self.types, self.keep_mail)
            for u in uids
            if u in metas
        ]
        candidates = [d for d in decisions if d.rule is not None]
        # Mails read before are skipped. (One that the previous chunk's last batch is filing
        # right now is not known yet: it is downloaded again, and its documents are recognised.)
        return await self.run(self._unknown, candidates) if candidates else []

    async def _chunk(
        self, uids: list[int], wanted: list[Decision], following: list[int] | None
    ) -> asyncio.Future | None:
        """File the wanted mails of a chunk; return the download of the following chunk's
        metadata, started while the last batch was filed.

        Each batch is durable and recorded before the folder moves past it. Actions wait for
        the download running ahead, so that it is the only command on the connection.
        """
        batches = _batches(wanted)

        def start(i: int) -> asyncio.Future | None:
            if i < len(batches):
                return asyncio.ensure_future(self._fetch(batches[i]))
            return asyncio.ensure_future(self._plan(following)) if following else None

        done_up_to = uids[0] - 1
        ahead = start(0)
        try:
            for i, batch in enumerate(batches):
                assert ahead is not None
                bodies, ahead = await ahead, None
                ahead = start(i + 1)
                handled = await self._bodies(batch, bodies)
                if ahead is not None and any(h.action.kind != "none" for h in handled):
                    await asyncio.wait({ahead})
                below_next = _next_uid(wanted, batch[-1].uid) - 1
                await self._record(min(below_next, uids[-1]), handled, uids, done_up_to)
                done_up_to = min(below_next, uids[-1])
            if done_up_to < uids[-1]:
                await self._record(uids[-1], [], uids, done_up_to)
        except BaseException:
            await _drop(ahead)  # the sync failed: the connection is closed after it
            raise
        return ahead

    def _unknown(self, decisions: list[Decision]) -> list[Decision]:
        """The decisions whose mails were not read before (blocking: reads the index)."""
        folder = self.folder if self.again else None
        return [d for d in decisions if not self.store.known(d.message_id, d.size, folder)]

    async def _record(self, up_to: int, handled: list[Handled], uids: list[int], after: int):
        seen = sum(1 for u in uids if after < u <= up_to)
        new = sum(h.documents for h in handled)
        await self.run(
            self.store.advance,
            self.folder,
            self.uidvalidity,
            up_to,
            handled,
            seen=seen,
            new_documents=new,
        )
        self.seen += seen
        failpoints.hit("imap-before-action")
        owed = [(h.uid, h.action) for h in handled if h.action.kind != "none"]
        if owed:
            await self._act(owed)

    async def _fetch(self, batch: list[Decision]) -> dict[int, bytes]:
        """Download the bodies of a batch, by UID; a mail expunged meanwhile is missing."""
        response = _checked(
            await self.client.uid("fetch", uid_set(d.uid for d in batch), "(UID BODY.PEEK[])"),
            "FETCH",
        )
        return {m.uid: m.body for m in parse_fetch(response.lines) if m.body is not None}

    async def _bodies(self, batch: list[Decision], bodies: dict[int, bytes]) -> list[Handled]:
        """File the documents of a batch in one archive batch; durable when it returns."""
        present = [(d, bodies[d.uid]) for d in batch if d.uid in bodies]
        self.bodies += len(present)
        mails = [self._mail(d, raw) for d, raw in present]
        results, digests = await asyncio.gather(
            self.ingest(mails), self.run(lambda: [_sha256(raw) for _, raw in present])
        )
        handled = []
        for (d, raw), result, digest in zip(present, results, digests, strict=True):
            rule = d.rule
            assert rule is not None
            # A mail is acted on only when all of it is kept: not one left in quarantine.
            kept = bool(result.stored) and result.quarantined is None
            handled.append(
                Handled(
                    uid=d.uid,
                    message_id=d.message_id,
                    raw_sha256=digest,
                    size=d.size if d.size is not None else len(raw),
                    documents=result.new_documents,
                    action=rule.then if kept else Action(),
                )
            )
        self.filed += sum(h.documents for h in handled)
        failpoints.hit("imap-after-archive")
        return handled

    def _mail(self, d: Decision, raw: bytes) -> Mail:
        rule = d.rule
        assert rule is not None
        keep = None
        if rule.attachments or rule.exclude_attachments:

            def keep(doc: Document, rule: Rule = rule) -> bool:
                return rule.attachment_wanted(doc.original_name)

        return Mail(
            raw,
            source="imap",
            source_name=f"{self.config.name}/{self.folder}",
            company=rule.company,
            keep=keep,
            eml_fallback=bool(self.config.rules),
        )

    async def _act(self, owed: list[tuple[int, Action]]) -> None:
        """Send the owed actions, grouped; forget those the server confirmed."""
        groups: dict[Action, list[int]] = {}
        for uid, action in owed:
            groups.setdefault(action, []).append(uid)
        for action, uids in groups.items():
            try:
                await self._send_action(action, uids)
            except ImapCommandError as e:
                logger.warning(
                    "%s/%s: could not %s %d mail(s), will try again: %s",
                    self.config.name,
                    self.folder,
                    action,
                    len(uids),
                    e,
                )
                continue
            await self.run(self.store.done, self.folder, self.uidvalidity, uids)

    async def _send_action(self, action: Action, uids: list[int]) -> None:
        c = self.client
        caps = c.protocol.capabilities
        given = uid_set(uids)
        if action.kind in ("seen", "flag", "delete"):
            flag = {"seen": "\\Seen", "flag": "\\Flagged", "delete": "\\Deleted"}[action.kind]
            _checked(await c.uid("store", given, "+FLAGS.SILENT", f"({flag})"), "STORE")
            if action.kind == "delete":
                await self._expunge(given, len(uids))
            return
        assert action.kind == "move" and action.folder is not None
        name = self.server_names[action.folder]
        target = mailbox_arg(name)
        for attempt in (1, 2):
            if "MOVE" in caps:
                response = await c.uid("move", given, target)
            else:
                response = await c.uid("copy", given, target)
            text = bytes(response.lines[-1]) if response.lines else b""
            if response.result != "OK" and b"TRYCREATE" in text.upper() and attempt == 1:
                _checked(await c.create(target), f"CREATE {name}")
                continue
            _checked(response, f"MOVE to {name}")
            break
        if "MOVE" not in caps:
            _checked(await c.uid("store", given, "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
            await self._expunge(given, len(uids))

    async def _expunge(self, uids: str, count: int) -> None:
        """Remove mails flagged \\Deleted: these alone with UIDPLUS, the folder's with expunge:."""
        if "UIDPLUS" in self.client.protocol.capabilities:
            _checked(await self.client.uid("expunge", uids), "UID EXPUNGE")
        elif self.config.expunge:
            _checked(await self.client.expunge(), "EXPUNGE")
        else:
            self.left_deleted += count


async def _drop(task: asyncio.Future | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _batches(wanted: list[Decision]) -> list[list[Decision]]:
    batches: list[list[Decision]] = []
    size = 0
    for d in wanted:
        if not batches or len(batches[-1]) >= BODY_BATCH_COUNT or size >= BODY_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(d)
        size += d.size or 0
    return batches


def _next_uid(wanted: list[Decision], uid: int) -> int:
    for d in wanted:
        if d.uid > uid:
            return d.uid
    return 2**32


async def select(client: IMAP4, folder: str):
    """SELECT a folder; ImapCommandError (with the server's words) if it cannot be."""
    return _checked(await client.select(mailbox_arg(folder)), f"SELECT {folder}")
