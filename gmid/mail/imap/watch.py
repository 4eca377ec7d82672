"""Watch IMAP mailboxes: one connection per folder, IDLE where offered, polling otherwise.

Each folder is synced on connect, whenever the server reports new mail (IDLE) and at least
every `idle_check:` (IDLE ends, the folder is selected again: a server may report nothing while
idling, a folder may have been made anew), or every `poll:` without IDLE. A dropped connection
or a restarted server is retried with exponential backoff; wrong credentials are retried
slowly, and at once after `gmid reload`. The state that matters (how far each folder is read,
owed actions) is in the index, so nothing is lost or done twice across reconnects and restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aioimaplib import IMAP4, STOP_WAIT_SERVER_PUSH

from gmid.archive.index import Index
from gmid.config.imap import MailboxConfig
from gmid.errors import GmidError, SecretError, quoted
from gmid.events import EventBus
from gmid.mail.imap.client import Client, CountingProtocol, close, unless_lost
from gmid.mail.imap.folders import FolderMissing, ServerNames, namespace, server_folder
from gmid.mail.imap.store import ImapStore
from gmid.mail.imap.sync import FolderSync, ImapCommandError, select
from gmid.mail.imap.wire import parse_exists, parse_select, quote
from gmid.mail.ingest import Ingestor, IngestResult, Mail

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT = 60.0  # seconds without a byte from the server before a command fails
IDLE_RENEW = 28 * 60.0  # servers may drop an IDLE after 30 minutes (RFC 2177)
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
AUTH_RETRY = 15 * 60.0  # wrong credentials: retried this slowly (or at once on reload)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LoginRefused(GmidError):
    """The server refused the user name or password; the message is the server's."""


def _server_text(response) -> str:
    text = response.lines[-1] if response.lines else b""
    text = bytes(text).decode("utf-8", "replace") if isinstance(text, bytes | bytearray) else text
    return _CONTROL.sub(" ", str(text)).strip()[:200] or response.result


class FolderWatcher:
    """Keeps one folder of one mailbox synced, for as long as it runs."""

    def __init__(self, mailbox: MailboxWatcher, folder: str):
        self.mailbox = mailbox
        self.folder = folder
        self.state = "connecting"
        self.error: str | None = None
        self.synced = False  # a sync completed on the current connection
        self.received = 0  # bytes from the server, over all connections of this watcher
        self._protocol: CountingProtocol | None = None
        self.bodies = 0
        self.left_deleted = 0  # mails deleted or moved that the server could not expunge
        self.note: str | None = None  # what the user should know though all works
        self.wake = asyncio.Event()  # set by `gmid reload` or a test to retry at once

    @property
    def config(self) -> MailboxConfig:
        return self.mailbox.config

    async def run(self) -> None:
        """Connect, sync and wait for mail until cancelled; never raises."""
        delay = BACKOFF_FIRST
        while True:
            self.state, self.synced = "connecting", False
            try:
                client = await self._connect()
                try:
                    await unless_lost(client, self._watch(client))
                finally:
                    await self._close(client)
            except asyncio.CancelledError:
                raise
            except (LoginRefused, SecretError, FolderMissing) as e:
                # the config must change (or the folder be made): retried slowly, or on reload
                self._failing(f"login refused: {e}" if isinstance(e, LoginRefused) else str(e))
                await self._sleep(AUTH_RETRY)
            except Exception as e:  # any other failure: reconnect, more slowly each time
                if self.synced:
                    delay = BACKOFF_FIRST  # it worked until now: a fresh drop
                why = _describe(e)
                self._failing(why)
                logger.info("%s/%s: reconnecting in %.0fs", self.config.name, self.folder, delay)
                await self._sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX)

    def _failing(self, why: str) -> None:
        if self.error != why:
            logger.warning("%s/%s: %s", self.config.name, self.folder, why)
        self.state, self.error = "failing", why
        self.mailbox.changed()

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)

    @property
    def bytes_received(self) -> int:
        """Bytes the server sent, over all connections so far."""
        return self.received + (self._protocol.received if self._protocol else 0)

    async def _close(self, client: IMAP4) -> None:
        await close(client)
        if self._protocol is not None:
            self.received += self._protocol.received
            self._protocol = None

    async def _connect(self) -> IMAP4:
        config = self.config
        context = None
        if config.security == "tls":
            context = ssl.create_default_context(
                cafile=str(config.ca_bundle) if config.ca_bundle else None
            )
        lost = asyncio.Event()
        client = Client(
            config.host,
            config.port,
            timeout=COMMAND_TIMEOUT,
            conn_lost_cb=lambda exc: lost.set(),
            ssl_context=context,
        )
        client.gmid_lost = lost
        self._protocol = client.protocol
        try:
            await client.wait_hello_from_server()
            # A "* PREAUTH" greeting (a server started for this user, a tunnel) needs no login.
            if client.protocol.state != "AUTH":
                await self._login(client)
        except BaseException:
            await self._close(client)
            raise
        return client

    async def _login(self, client: IMAP4) -> None:
        config = self.config
        password = await self.mailbox.run(config.password.resolve) if config.password else ""
        if any(c in password for c in "\r\n\0"):
            raise SecretError(f"{config.password} holds a line break or NUL")
        response = await client.login(quote(config.username), password)
        if response.result != "OK":
            raise LoginRefused(_server_text(response))
        # the capabilities after login may differ from those in the greeting
        await asyncio.wait_for(client.protocol.capability(), COMMAND_TIMEOUT)

    async def _watch(self, client: IMAP4) -> None:
        config = self.config
        self.state = "syncing"
        self.mailbox.changed()
        sync = self.mailbox.folder_sync(client, self.folder, await self._server_names(client))
        can_idle = "IDLE" in client.protocol.capabilities
        while True:
            # SELECT again after every wait: a folder deleted and made anew (a new UIDVALIDITY)
            # is read again, and a server that tells nothing while idling shows its new mail.
            await self._select(client, sync)
            self.state = "syncing"
            try:
                await sync.sync()
            finally:
                self.bodies += sync.bodies
                self.mailbox.filed += sync.filed
                sync.bodies = sync.filed = 0
                if sync.left_deleted:
                    self._left_flagged(sync.left_deleted)
                    sync.left_deleted = 0
            self.synced = True
            self.mailbox.last_sync = datetime.now(UTC)
            if sync.problem:
                self.state, self.error = "blind", sync.problem
            else:
                self.state, self.error = ("idle" if can_idle else "polling"), None
            self.mailbox.changed()
            if can_idle:
                await self._idle(client)
            else:
                await asyncio.sleep(config.poll.total_seconds())

    async def _server_names(self, client: IMAP4) -> ServerNames:
        """The server's names of this folder and of the `move:` targets; FolderMissing if one
        does not exist (a target alike to none of the server's folders is made when used)."""
        ns = await namespace(client)
        names = {
            self.folder: await server_folder(
                client, ns, self.folder, what=f"folder {quoted(self.folder)}", create=False
            )
        }
        targets = {r.then.folder for r in self.config.rules if r.then.folder is not None}
        for target in sorted(targets):
            what = f"then: {{move: {target}}}: folder {quoted(target)}"
            names[target] = await server_folder(client, ns, target, what=what, create=True)
        return ServerNames(ns, names)

    def _left_flagged(self, count: int) -> None:
        """Note mails that stay flagged \\Deleted: said once in the log, always in the status."""
        if not self.left_deleted:
            logger.warning(
                "%s/%s: the server has no UIDPLUS: mails gmid deletes or moves stay in %s, "
                "flagged \\Deleted, until a mail program expunges the folder; with "
                "`expunge: true` gmid does (which also removes other mails flagged \\Deleted)",
                self.config.name,
                self.folder,
                self.folder,
            )
        self.left_deleted += count
        self.note = (
            f"{self.left_deleted} mail(s) deleted or moved stay flagged \\Deleted here "
            "(no UIDPLUS; `expunge: true` removes them)"
        )
        self.mailbox.changed()

    async def _select(self, client: IMAP4, sync: FolderSync) -> None:
        selected = parse_select((await select(client, sync.mailbox)).lines)
        if selected.get("uidvalidity") is None:
            raise ImapCommandError(f"SELECT {sync.mailbox}: the server gave no UIDVALIDITY")
        sync.exists = selected["exists"]
        if selected["uidvalidity"] != sync.uidvalidity:
            await sync.begin(selected["uidvalidity"])

    async def _idle(self, client: IMAP4) -> None:
        """IDLE until the server reports new mail or the check time (idle_check:) comes.

        Some servers (GNU imap4d) accept IDLE and report nothing until it ends: the check time
        bounds how long their mail waits. A lost connection ends it from outside: run() watches
        the connection (unless_lost).
        """
        check = min(self.config.idle_check.total_seconds(), IDLE_RENEW)
        idle = await client.idle_start(timeout=check)
        try:
            while True:
                lines = await client.wait_server_push(check + 60)
                if lines == STOP_WAIT_SERVER_PUSH or parse_exists(lines) is not None:
                    break
        finally:
            if client.has_pending_idle() and not client.gmid_lost.is_set():
                client.idle_done()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(idle, COMMAND_TIMEOUT)


def _describe(e: BaseException) -> str:
    if isinstance(e, ImapCommandError):
        return str(e)
    if isinstance(e, TimeoutError | asyncio.TimeoutError):
        return "the server did not answer in time"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS: the server's certificate is not trusted ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


class MailboxWatcher:
    """The folders of one mailbox, their connections and what they have done."""

    def __init__(self, config: MailboxConfig, owner: ImapWatchers):
        self.config = config
        self.owner = owner
        self.store = ImapStore(owner.index, config.name)
        self.folders = [FolderWatcher(self, f) for f in config.folders]
        self.tasks: list[asyncio.Task] = []
        self.filed = 0
        self.last_sync: datetime | None = None

    def start(self) -> None:
        self.tasks = [
            asyncio.get_running_loop().create_task(
                f.run(), name=f"imap {self.config.name}/{f.folder}"
            )
            for f in self.folders
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []

    async def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking call (index, secret command) in the daemon's executor."""
        return await asyncio.get_running_loop().run_in_executor(
            self.owner.executor, partial(fn, *args, **kwargs)
        )

    def folder_sync(
        self, client: IMAP4, folder: str, server_names: ServerNames | None = None
    ) -> FolderSync:
        ingestor = self.owner.ingestor

        async def ingest(mails: list[Mail]) -> list[IngestResult]:
            return await self.run(ingestor.ingest_many, mails)

        return FolderSync(
            client,
            self.config,
            folder,
            self.store,
            ingest,
            types=ingestor.config.ingest.types,
            keep_mail=ingestor.config.ingest.keep_mail_without_documents,
            run=self.run,
            server_names=server_names,
        )

    def changed(self) -> None:
        self.owner.events.publish("mailbox.changed", mailbox=self.config.name)

    def status(self) -> dict[str, Any]:
        """This mailbox as `status` and `gmid mailboxes` show it (blocking: reads the index)."""
        messages, documents, synced_at = self.store.totals()
        folders = [
            {
                "folder": f.folder,
                "state": f.state,
                "error": f.error or f.note,
                "bytes": f.bytes_received,
            }
            for f in self.folders
        ]
        failing = [f for f in self.folders if f.state in ("failing", "blind")]
        notes = [f"{f.folder}: {f.note}" for f in self.folders if f.note and f not in failing]
        states = {f.state for f in self.folders}
        order = ("failing", "blind", "connecting", "syncing", "polling", "idle")
        state = next((s for s in order if s in states), "idle")
        return {
            "name": self.config.name,
            "host": self.config.host,
            "username": self.config.username,
            "folders": folders,
            "state": state if self.config.enabled else "disabled",
            "error": "; ".join([*(f"{f.folder}: {f.error}" for f in failing), *notes]) or None,
            "last_sync": synced_at,
            "messages": messages,
            "documents": documents,
            "bodies": sum(f.bodies for f in self.folders),
            "bytes": sum(f.bytes_received for f in self.folders),
        }


class ImapWatchers:
    """The daemon component that runs a MailboxWatcher per enabled mailbox."""

    def __init__(
        self, mailboxes, ingestor: Ingestor, index: Index, executor: Executor, events: EventBus
    ):
        self.ingestor = ingestor
        self.index = index
        self.executor = executor
        self.events = events
        self.watchers = [MailboxWatcher(m, self) for m in mailboxes]

    async def start(self) -> None:
        for watcher in self.watchers:
            if watcher.config.enabled:
                watcher.start()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.watchers))

    async def reload(self, mailboxes) -> None:
        """Start again with a new list: every connection is new, failing ones retry at once."""
        await self.stop()
        self.watchers = [MailboxWatcher(m, self) for m in mailboxes]
        await self.start()

    def status(self) -> list[dict[str, Any]]:
        return [w.status() for w in self.watchers]
