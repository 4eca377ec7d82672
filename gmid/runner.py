"""Portal runs: each in a worker thread (mechanicalsoup is synchronous), a few at a time."""

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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from connectors import load_connector
from connectors.base import PortalContext
from gmid.archive import Archive, Incoming
from gmid.challenges import ChallengeBroker, totp_for
from gmid.config import Config
from gmid.errors import GmidError, PortalError, RunTimeout, SessionExpired
from gmid.events import EventBus
from gmid.index import Index
from gmid.planner import LastRun
from gmid.portalconfig import PortalConfig
from gmid.runlog import (
    RunRecord,
    consecutive_failures,
    known_ref,
    last_runs,
    record_ref,
    record_run,
)
from gmid.secrets import SecretRef
from gmid.solver import asker, solver_for

logger = logging.getLogger(__name__)


class PortalBusy(GmidError):
    """A run of the portal is under way, of another kind than the one asked for."""


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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


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

    async def start(self) -> None:
        """Load the last outcome of every portal."""
        self._key = await asyncio.to_thread(_fingerprint_key, self.config.state_dir)
        self.last = await asyncio.to_thread(last_runs, self.index)
        self.failures = await asyncio.to_thread(consecutive_failures, self.index)

    async def stop(self) -> None:
        """Unblock runs waiting for codes, then wait a little for running ones to end."""
        self.broker.cancel()
        pending = [f for f in self._runs.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def portal(self, name: str) -> PortalConfig:
        """Find a configured portal by name (case-insensitively); KeyError names the known ones."""
        for portal in self.config.portals:
            if portal.name.casefold() == name.casefold():
                return portal
        known = ", ".join(p.name for p in self.config.portals) or "none configured"
        raise KeyError(f"no portal named {name!r} (known: {known})")

    def fetch(
        self, name: str, *, manual: bool = True, login_only: bool = False
    ) -> asyncio.Future[RunRecord]:
        """Start a run of a portal, or return the one already under way.

        With login_only, a test: it only logs in (or finds the saved session valid), downloads
        nothing, and leaves the last run that the scheduler plans from as it was.
        """
        portal = self.portal(name)
        running = self._runs.get(portal.name)
        if running is not None and not running.done():
            test = portal.name in self._tests
            # The scheduler's start during a test waits: the test's end re-plans the portal.
            if test == login_only or not manual:
                return running
            what = "a test login" if test else "a download"
            raise PortalBusy(f"{what} of {portal.name} is under way; try again when it has ended")
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

    def states(self) -> list[dict[str, Any]]:
        """Every configured portal with its state and its last run, for `status`."""
        states = []
        for portal in self.config.portals:
            running = self._runs.get(portal.name)
            last = self.last.get(portal.name)
            if running is not None and not running.done():
                state = self._progress.get(portal.name, "running")
                state = "queued" if state == "queued" else "running"
            elif last is not None:
                state = last.outcome  # a disabled portal fetched by hand has one too
            else:
                state = "never run" if portal.enabled else "disabled"
            states.append(
                {
                    "name": portal.name,
                    "company": portal.company,
                    "connector": portal.connector,
                    "enabled": portal.enabled,
                    "state": state,
                    "progress": self._progress.get(portal.name),
                    "last_run": last.to_dict() if last else None,
                    "username": portal.username,
                    "schedule": schedule_text(portal.rules),
                    "credentials_changed": bool(
                        last and last.fingerprint != fingerprint(portal, self._key)
                    ),
                }
            )
        return states

    # in the worker thread

    def _run(self, portal: PortalConfig, manual: bool, login_only: bool = False) -> RunRecord:
        started = datetime.now(UTC)
        test = _test(login_only)
        self._set_progress(portal.name, "starting")
        self.events.publish("portal.started", portal=portal.name, manual=manual, **test)
        outcome, message, portal_message, new = "ok", None, None, 0
        deadline = time.monotonic() + self.config.runs.run_timeout
        try:
            with self._session(portal, deadline) as (connector, how, expiry):
                if login_only:
                    message = how
                else:
                    new = self._download_all(portal, connector, deadline, expiry)
                    message = f"{new} new document{'s' if new != 1 else ''}"
        except PortalError as e:
            outcome, message, portal_message = e.outcome, str(e), e.portal_message
            if getattr(e, "page", None):
                message += f"; the page is saved as {e.page}"
        except GmidError as e:  # a secret that cannot be read, the archive full...
            outcome, message = "error", str(e)
        except Exception:
            logger.exception("portal %s: the run failed", portal.name)
            outcome, message = "error", "internal error; see the daemon's log"
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

    @contextlib.contextmanager
    def _session(self, portal: PortalConfig, deadline: float) -> Iterator[tuple[Any, str, Any]]:
        """Yield a logged-in connector, how it got there, and the expiry of a code request.

        The session (cookies) is saved at the end, whatever happened.
        """
        from gmid.http import HttpPolicy, make_browser, save_cookies  # requests: at first use

        runs = self.config.runs
        policy = HttpPolicy(
            timeout=runs.request_timeout,
            allow_http=portal.allow_http,
            ca_bundle=portal.ca_bundle,
            max_download=runs.max_download,
        )
        cookie_file = self.config.state_dir / "sessions" / f"{portal.name}.cookies"
        browser = make_browser(policy, cookie_file)

        def expiry() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunTimeout(f"the run took longer than {runs.run_timeout:g} s")
            return min(runs.code_timeout, left)

        try:
            totp = totp_for(portal.totp_secret.resolve()) if portal.totp_secret else None
            password = portal.password
            ctx = PortalContext(
                portal=portal.name,
                username=portal.username,
                password=password.resolve if password else (lambda: ""),
                browser=browser,
                ask=asker(
                    self.broker,
                    portal.name,
                    solver_for(portal, self.config.captcha_solver),
                    totp=totp,
                    expiry=expiry,
                    progress=partial(self._set_progress, portal.name),
                ),
                wait_approval=lambda request, poll: self.broker.wait_approval(
                    portal.name, request, poll, expiry=expiry()
                ),
                save_page=partial(self._save_page, portal.name),
                progress=partial(self._set_progress, portal.name),
                options=portal.options,
            )
            connector = load_connector(portal.connector)(ctx)
            # Without saved cookies no session can be valid: spare the portal the probe.
            if cookie_file.exists() and connector.session_valid():
                how = "the saved session is still valid"
            else:
                ctx.progress("logging in")
                connector.login()
                how = "logged in"
            ctx.progress(how)
            yield connector, how, expiry
        finally:
            try:
                save_cookies(browser, cookie_file)
            except OSError as e:
                logger.warning("portal %s: could not save its session: %s", portal.name, e)
            browser.close()

    def _download_all(self, portal: PortalConfig, connector, deadline: float, expiry) -> int:
        """Download what is new; log in again once if the portal ends the session midway."""
        for attempt in range(2):
            try:
                return self._download_new(portal, connector, deadline, expiry)
            except SessionExpired:
                if attempt:
                    raise
                self._set_progress(portal.name, "the session expired, logging in again")
                connector.login()
        raise AssertionError("unreachable")

    def _download_new(self, portal: PortalConfig, connector, deadline: float, expiry) -> int:
        from gmid.http import check_document

        new = listed = 0
        for doc in connector.documents():
            expiry()  # raises RunTimeout past the deadline
            listed += 1
            if known_ref(self.index, portal.name, doc.id):
                continue  # filed before: not downloaded again
            self._set_progress(portal.name, f"downloading {doc.number or doc.title or doc.id}")
            data, content_type = connector.download(doc)
            _kind, media_type, ext = check_document(data, content_type)
            stored = self.archive.store(
                Incoming(
                    data=data,
                    media_type=media_type,
                    ext=ext,
                    source="portal",
                    source_name=portal.name,
                    company=portal.company,
                    original_name=doc.title or doc.number,
                    source_ref=doc.id,
                    date=doc.date,
                    number=doc.number,
                    amount=doc.amount,
                )
            )
            record_ref(self.index, portal.name, doc.id, stored.document.sha256)
            if stored.created:
                new += 1
                self.events.publish("document.added", document=stored.document.to_dict())
        self._set_progress(portal.name, f"{listed} listed, {new} new")
        return new

    def _set_progress(self, name: str, text: str) -> None:
        self._progress[name] = text
        self.events.publish("portal.progress", portal=name, progress=text)

    def _save_page(self, name: str, label: str, content: bytes) -> Path:
        """Keep a page for diagnosis (0600: it may show personal data); return its path."""
        folder = self.config.state_dir / "pages" / name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40] or "page"
        path = folder / f"{stamp}-{safe}.html"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        return path


def _test(login_only: bool) -> dict[str, bool]:
    """The mark of a test login's events: `test: true`; a real run's carry none."""
    return {"test": True} if login_only else {}
