"""The daemon: starts the components, serves the control socket, reloads and stops cleanly.

`Daemon` owns the components; the control socket's methods are gmid/daemon/rpc/, and
gmid/daemon/serve.py runs it as a process (signals, systemd notifications).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gmid import __version__
from gmid.archive.archive import Archive, Stored
from gmid.archive.index import Index
from gmid.archive.reindex import Reindexer
from gmid.archive.statelock import StateLocked, lock_state
from gmid.config.load import Config, load_config
from gmid.daemon.rpc.methods import METHODS
from gmid.daemon.rpc.server import ControlServer
from gmid.daemon.rpc.services import Services
from gmid.errors import ConfigError, GmidError
from gmid.events import EventBus
from gmid.mail.imap.watch import ImapWatchers
from gmid.mail.ingest import Ingestor
from gmid.mail.smtp import SmtpListener
from gmid.portals.alert import Notifier
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.runner import PortalRunner
from gmid.schedule.scheduler import PortalScheduler

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


class Daemon:
    """Owns the components; start() brings them up in order, stop() takes them down in reverse."""

    def __init__(self, config: Config):
        self.config = config
        self.events = EventBus()
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gmid-io")
        self.started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        self.index: Index | None = None
        self.archive: Archive | None = None
        self.reindexer: Reindexer | None = None
        self.ingestor: Ingestor | None = None
        self.smtp: SmtpListener | None = None
        self.broker: ChallengeBroker | None = None
        self.runner: PortalRunner | None = None
        self.scheduler: PortalScheduler | None = None
        self.imap: ImapWatchers | None = None
        self.control = ControlServer(
            config.control.socket, METHODS, max_connections=config.control.max_connections
        )
        self.reload_refused: str | None = None  # why the last reload was refused
        self._stack: list[Any] = []  # started components, stopped in reverse order
        self._lock_fd: int | None = None

    async def start(self) -> None:
        """Take the state lock, check the control socket's folder, open the index and archive,
        then the listeners.

        A failure stops whatever had started.
        """
        loop = asyncio.get_running_loop()
        self.events.bind(loop)
        config = self.config
        try:
            # The lock first: a second daemon on the same state must not even clean temp files.
            self._lock_fd = _lock_state(config.state_dir)
            # Every check that can refuse the start comes before any listener opens.
            await self.control.prepare()
            self.index = await loop.run_in_executor(
                self.executor, Index, config.state_dir / "index.sqlite"
            )
            self.archive = Archive(
                config.archive.dir,
                config.archive.name,
                self.index,
                config.tz,
                quarantine_dir=config.state_dir / "quarantine",
            )
            self.archive.companies = config.companies
            removed = await loop.run_in_executor(self.executor, self.archive.recover)
            if removed:
                logger.warning("removed %d unfinished temporary file(s) left by a crash", removed)
            self.reindexer = Reindexer(self.archive)
            self.reindexer.start()  # documents filed unread, in a thread of its own
            self._stack.append(self.reindexer)
            self.ingestor = Ingestor(config, self.archive, self.index, on_stored=self._stored)
            self.broker = ChallengeBroker(
                self.events,
                image_dir=config.state_dir / "challenges",
                expiry=config.runs.code_timeout,
                notify=Notifier(config.notify),
            )
            self.runner = PortalRunner(config, self.archive, self.index, self.broker, self.events)
            await self.runner.start()
            self._stack.append(self.runner)
            self.scheduler = PortalScheduler(self.runner, self.events)
            await self.scheduler.start()
            self._stack.append(self.scheduler)
            if config.smtp.enabled:
                self.smtp = SmtpListener(self.ingestor, self.executor, self.events)
                await self.smtp.start()
                self._stack.append(self.smtp)
            self.imap = ImapWatchers(
                config.mailboxes, self.ingestor, self.index, self.executor, self.events
            )
            await self.imap.start()
            self._stack.append(self.imap)
            # The socket last: once `status` answers, everything it reports is up.
            self.control.context = Services(
                daemon=self,
                index=self.index,
                runner=self.runner,
                broker=self.broker,
                scheduler=self.scheduler,
                imap=self.imap,
            )
            await self.control.start()
            self._stack.append(self.control)
        except BaseException:
            await self.stop()
            raise
        self.events.publish("daemon.started", version=__version__)

    async def stop(self) -> None:
        """Stop the components in reverse order, each within a timeout, then close the index."""
        while self._stack:
            component = self._stack.pop()
            try:
                await asyncio.wait_for(component.stop(), STOP_TIMEOUT)
            except Exception:
                logger.exception("stopping %s failed", type(component).__name__)
        self.executor.shutdown(wait=True)
        if self.archive is not None:
            self.archive.reader.close()
        if self.runner is not None and not self.runner.idle():
            # A portal thread still busy may still write: the index stays open and the lock
            # held until the process ends (its exit releases the lock).
            logger.warning("a portal run has not ended; the state stays locked until exit")
            return
        if self.index is not None:
            self.index.close()
            self.index = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def reload(self) -> bool:
        """Load the config again; an invalid one keeps the running config and logs why."""
        try:
            new = await asyncio.get_running_loop().run_in_executor(
                self.executor, load_config, self.config.path
            )
        except ConfigError as e:
            logger.error("config reload refused, keeping the running config:\n%s", e)
            self.reload_refused = "the new config has problems; see `gmid check-config`"
            return False
        for warning in new.warnings:
            logger.warning("%s", warning)
        old = self.config
        for what, before, after in (
            ("control.socket", old.control.socket, new.control.socket),
            ("state_dir", old.state_dir, new.state_dir),
            ("archive.dir", old.archive.dir, new.archive.dir),
        ):
            if before != after:
                logger.warning("%s changed: takes effect after a restart", what)
        # The new SMTP address is bound before anything changes: one that cannot be bound
        # refuses the reload, and the old listener goes on.
        if self.smtp is not None and (new.smtp.host, new.smtp.port) != (
            old.smtp.host,
            old.smtp.port,
        ):
            try:
                await self.smtp.rebind(new.smtp.host, new.smtp.port)
            except GmidError as e:
                self.reload_refused = str(e)
                logger.error("config reload refused, keeping the running config: %s", e)
                return False
        self.reload_refused = None
        # Options that need no restart take effect at once; the rest keep their running value.
        new = _keep(new, old)
        self.config = new
        assert self.ingestor is not None and self.archive is not None
        self.ingestor.config = new
        if self.runner is not None:
            if new.runs.concurrency != old.runs.concurrency:
                logger.warning("runs.concurrency changed: takes effect after a restart")
            self.runner.config = new
        if self.scheduler is not None:
            self.scheduler.replan()
        if self.imap is not None:
            await self.imap.reload(new.mailboxes)
        self.archive.template = new.archive.name
        self.archive.companies = new.companies
        self.events.publish("config.reloaded")
        logger.info("config reloaded from %s", new.path)
        return True

    def uptime(self) -> float:
        """Seconds since the daemon started (a monotonic clock: a change of time does not count)."""
        return time.monotonic() - self._started_monotonic

    def summary(self, documents: int) -> str:
        """One line for `systemctl status`: portals, codes waited for, mailboxes, documents.

        Cheap: read from memory; the document count is the caller's (one query per change).
        """
        portals = self.config.portals
        parts = [_count(len(portals), "portal")]
        if self.runner is not None:
            running = sum(self.runner.running(portal.name) for portal in portals)
            if running:
                parts.append(f"{running} running")
        pending = self.broker.pending() if self.broker is not None else []
        if pending:
            what = "a code" if all(c.kind == "code" for c in pending) else "an answer"
            parts.append(f"{len(pending)} waiting for {what}")
        text = ", ".join(parts)
        watchers = [w for w in self.imap.watchers if w.config.enabled] if self.imap else []
        text += "; " + _count(len(watchers), "mailbox", "mailboxes")
        failing = sum(any(f.state == "failing" for f in w.folders) for w in watchers)
        if failing:
            text += f", {failing} failing"
        return f"{text}; {_count(documents, 'document')}"

    async def document_count(self) -> int:
        assert self.index is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.index.count)

    def _stored(self, stored: Stored) -> None:
        self.events.publish("document.added", document=stored.document.to_dict())


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _lock_state(state_dir: Path) -> int:
    """Hold an exclusive lock on the state folder for the daemon's lifetime."""
    try:
        return lock_state(state_dir)
    except StateLocked as e:
        raise GmidError(
            f"another gmid daemon (pid {e.pid}) is using {state_dir}; stop it first"
        ) from None


def _keep(new: Config, old: Config) -> Config:
    """Keep the options that only a restart can change."""
    return dataclasses.replace(
        new,
        control=old.control,
        state_dir=old.state_dir,
        archive=dataclasses.replace(new.archive, dir=old.archive.dir),
    )
