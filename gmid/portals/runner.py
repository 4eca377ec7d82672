"""Portal runs: each in a worker thread (mechanicalsoup is synchronous), a few at a time.

The runner is the daemon's component: it starts runs on request (the scheduler's, the CLI's,
the TUI's), tells which are queued or under way and how far they got, and records how each
ended, with a fingerprint of what the run depended on. What a run does in its thread, the
session, the login and the downloads, is gmid/portals/run.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from gmid.archive.archive import Archive
from gmid.archive.fs import write_atomic
from gmid.archive.index import Index
from gmid.config.load import Config
from gmid.config.portals import PortalConfig
from gmid.config.secretref import SecretRef
from gmid.control import protocol as p
from gmid.errors import Busy, GmidError, NotFound
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.halt import Halt
from gmid.portals.run import PortalRun
from gmid.portals.runlog import RunRecord, consecutive_failures, last_runs, record_run
from gmid.schedule.planner import LastRun

logger = logging.getLogger(__name__)

STOP_WAIT = 8.0  # seconds stop() waits for the runs' threads (within the daemon's STOP_TIMEOUT)
STOPPED = "stopped when the daemon stopped; it runs again after the restart"


def fingerprint(portal: PortalConfig, key: bytes) -> str:
    """A digest of what a run depends on: a "wrong credentials" verdict holds until it changes.

    Keyed (HMAC with a random key of this installation): a plain-text password in the config
    must not become a hash in the index that a dictionary attack could reverse.
    """
    parts = [
        portal.connector,
        portal.username,
        _secret_part(portal.password),
        json.dumps(portal.options, sort_keys=True, default=str),
    ]
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:16]


def _secret_part(ref: SecretRef | None) -> str:
    """A password reference as the fingerprint sees it."""
    if ref is None:
        return ""
    part = repr((ref.kind, ref.value))
    if ref.kind == "file":
        # A new password written into the same file (as the TUI does) is a change too.
        with contextlib.suppress(OSError):
            st = os.stat(ref.value)
            part += f":{st.st_ino}:{st.st_mtime_ns}"
    return part


def _fingerprint_key(state_dir: Path) -> bytes:
    """This installation's fingerprint key, made (0600) on first use."""
    path = state_dir / "fingerprint.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        write_atomic(path, key, 0o600, replace=False)
        return key


def run_info(record: RunRecord, *, test: bool = False) -> p.RunInfo:
    """How a run ended, as the control socket tells it (a test login's marked)."""
    return p.RunInfo.from_dict(record.to_dict() | {"test": test})


def schedule_text(rules) -> dict[str, Any]:
    """A portal's rules as the config writes them ("7d", "tue 09:30"), for the TUI."""

    def span(delta) -> str:
        seconds = int(delta.total_seconds())
        parts = []
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if seconds >= size:
                parts.append(f"{seconds // size}{unit}")
                seconds %= size
        return "".join(parts) or "0s"

    text: dict[str, Any] = {}
    if rules.at:
        text["at"] = [slot.text for slot in rules.at]
    elif rules.every:
        text["every"] = span(rules.every)
    text["windows"] = [w.text for w in rules.windows]
    text["quiet"] = [q.text for q in rules.quiet]
    if rules.jitter:
        text["jitter"] = span(rules.jitter)
    return text


class PortalRunner:
    """A component: starts portal runs on request and remembers how each ended."""

    def __init__(
        self,
        config: Config,
        archive: Archive,
        index: Index,
        broker: ChallengeBroker,
        events: EventBus,
    ):
        self.config = config
        self.archive = archive
        self.index = index
        self.broker = broker
        self.events = events
        self._executor = ThreadPoolExecutor(
            max_workers=config.runs.concurrency, thread_name_prefix="gmid-portal"
        )
        self._runs: dict[str, asyncio.Future[RunRecord]] = {}
        self._progress: dict[str, str] = {}  # per running portal: what it is doing
        self.last: dict[str, RunRecord] = {}
        self.failures: dict[str, int] = {}  # consecutive runs that did not end ok
        self._active: set[str] = set()  # portals whose run has started and not yet ended
        self._tests: set[str] = set()  # portals whose run under way is a test login
        self._key = b""
        self.halt = Halt()  # at stop, ends the requests of the runs under way

    async def start(self) -> None:
        """Load the last outcome of every portal."""
        self._key = await asyncio.to_thread(_fingerprint_key, self.config.state_dir)
        self.last = await asyncio.to_thread(last_runs, self.index)
        self.failures = await asyncio.to_thread(consecutive_failures, self.index)

    async def stop(self) -> None:
        """Unblock runs waiting for codes, end their requests, then wait for them to end.

        A run's thread cannot be killed: one that is still busy after STOP_WAIT seconds (in
        something else than a request or a wait for a code) is reported by `idle()`.
        """
        self.halt.halt()  # the requests under way end now, and no new one is sent
        self.broker.cancel()  # after the halt: a run woken here sees it was stopped
        pending = [f for f in self._runs.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_WAIT)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def idle(self) -> bool:
        """Tell whether no run's thread is busy (after stop: whether the state is left alone)."""
        return all(f.done() for f in self._runs.values())

    def portal(self, name: str) -> PortalConfig:
        """Find a configured portal by name (case-insensitively); NotFound names the known ones."""
        for portal in self.config.portals:
            if portal.name.casefold() == name.casefold():
                return portal
        known = ", ".join(portal.name for portal in self.config.portals) or "none configured"
        raise NotFound(f"no portal named {name!r} (known: {known})")

    def fetch(
        self, name: str, *, manual: bool = True, login_only: bool = False
    ) -> asyncio.Future[RunRecord]:
        """Start a run of a portal, or return the one already under way.

        With login_only, a test: it only logs in (or finds the saved session valid), downloads
        nothing, and leaves the last run that the scheduler plans from as it was. Busy when a
        run of the other kind (a test, a download) is under way.
        """
        portal = self.portal(name)
        running = self._runs.get(portal.name)
        if running is not None and not running.done():
            test = portal.name in self._tests
            # The scheduler's start during a test waits: the test's end re-plans the portal.
            if test == login_only or not manual:
                return running
            what = "a test login" if test else "a download"
            raise Busy(f"{what} of {portal.name} is under way; try again when it has ended")
        loop = asyncio.get_running_loop()
        self._progress[portal.name] = "queued"
        self._active.add(portal.name)
        if login_only:
            self._tests.add(portal.name)
        future = loop.run_in_executor(self._executor, self._run, portal, manual, login_only)
        self._runs[portal.name] = future
        future.add_done_callback(partial(self._finished, portal.name))
        self.events.publish("portal.queued", portal=portal.name, manual=manual, **_test(login_only))
        return future

    def _finished(self, name: str, future: asyncio.Future[RunRecord]) -> None:
        self._progress.pop(name, None)
        self._active.discard(name)
        self._tests.discard(name)

    def running(self, name: str) -> bool:
        """Tell whether a run of the portal is queued or under way."""
        # Not the future: it completes a little after the run's end event has gone out.
        return name in self._active

    def last_run(self, name: str) -> LastRun | None:
        """The last run of a portal as the planner needs it."""
        record = self.last.get(name)
        if record is None:
            return None
        portal = self.portal(name)
        return LastRun(
            started_at=datetime.fromisoformat(record.started_at),
            finished_at=datetime.fromisoformat(record.finished_at),
            outcome=record.outcome,
            failures=self.failures.get(name, 0),
            credentials_changed=record.fingerprint != fingerprint(portal, self._key),
        )

    def states(self) -> list[p.PortalInfo]:
        """Every configured portal with its state and its last run (the next is the scheduler's)."""
        return [self._state(portal) for portal in self.config.portals]

    def _state(self, portal: PortalConfig) -> p.PortalInfo:
        running = self._runs.get(portal.name)
        last = self.last.get(portal.name)
        if running is not None and not running.done():
            state = self._progress.get(portal.name, "running")
            state = "queued" if state == "queued" else "running"
        elif last is not None:
            state = last.outcome  # a disabled portal fetched by hand has one too
        else:
            state = "never run" if portal.enabled else "disabled"
        return p.PortalInfo(
            name=portal.name,
            company=portal.company,
            connector=portal.connector,
            enabled=portal.enabled,
            state=state,
            progress=self._progress.get(portal.name),
            last_run=run_info(last) if last else None,
            username=portal.username,
            schedule=schedule_text(portal.rules),
            credentials_changed=bool(last and last.fingerprint != fingerprint(portal, self._key)),
            read_only=(
                f"in {Path(portal.file).name}, line {portal.line}: change it there"
                if portal.file == str(self.config.path)
                else None
            ),
        )

    # in the worker thread

    def _run(self, portal: PortalConfig, manual: bool, login_only: bool = False) -> RunRecord:
        started = datetime.now(UTC)
        test = _test(login_only)
        self._set_progress(portal.name, "starting")
        self.events.publish("portal.started", portal=portal.name, manual=manual, **test)
        run = PortalRun(
            portal,
            self.config,
            self.archive,
            self.index,
            self.broker,
            self.events,
            progress=partial(self._set_progress, portal.name),
            deadline=time.monotonic() + self.config.runs.run_timeout,
            halt=self.halt,
        )
        outcome, message, portal_message, new = run.attempt(login_only)
        if outcome == "stopped":
            # Neither the portal's doing nor the user's (a code asked was not missed): say so,
            # and the planner tries again after the restart.
            message = STOPPED
        record = RunRecord(
            portal=portal.name,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            outcome=outcome,
            message=message,
            portal_message=portal_message,
            new_documents=new,
            fingerprint=fingerprint(portal, self._key),
            manual=manual,
        )
        level = logging.INFO if outcome == "ok" else logging.WARNING
        kind = "test login: " if login_only else ""
        logger.log(level, "portal %s: %s%s (%s)", portal.name, kind, outcome, message)
        if not login_only:  # a test is not a run the scheduler plans from
            try:
                record_run(self.index, record)
            except GmidError as e:
                logger.error("portal %s: could not record the run: %s", portal.name, e)
            # Before the event: whoever it wakes (the scheduler) must see the run as ended.
            self.last[portal.name] = record
            failed = self.failures.get(portal.name, 0) + 1
            self.failures[portal.name] = 0 if outcome == "ok" else failed
        self._active.discard(portal.name)
        self.events.publish("portal.finished", **record.to_dict(), **test)
        return record

    def _set_progress(self, name: str, text: str) -> None:
        self._progress[name] = text
        self.events.publish("portal.progress", portal=name, progress=text)


def _test(login_only: bool) -> dict[str, bool]:
    """The mark of a test login's events: `test: true`; a real run's carry none."""
    return {"test": True} if login_only else {}
