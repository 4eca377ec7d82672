"""A test login of a portal not added yet: log in with what the user typed, and nothing else.

The TUI's add dialog tries the login before the portal is written anywhere. The test is a
PortalRun (gmid/portals/run.py) with the run's deadlines and the daemon's stop, that only logs
in: no document is listed or downloaded. Its session and the pages it saves for diagnosis are
kept apart, in `<state_dir>/trials/NAME` (emptied by the next test of that name; the cookies go
at the end), so that no saved session of a portal of that name is used, or left behind.

A code, captcha or approval the portal asks for ends the test there: nobody is asked, as the
portal is no portal of the daemon yet. A code asked after the password means the password was
accepted, and the test says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import ApprovalRequest, CodeRequest
from gmid.archive.archive import Archive
from gmid.archive.index import Index
from gmid.config.load import Config
from gmid.config.portals import PortalConfig
from gmid.control import protocol as p
from gmid.errors import Busy, GmidError, PortalError
from gmid.events import EventBus
from gmid.portals.halt import Halt
from gmid.portals.run import PortalRun

logger = logging.getLogger(__name__)

ASKS_CODE = "asks for a code"
ASKS_APPROVAL = "asks for an approval"
_busy: set[str] = set()  # the names whose test is under way
_busy_lock = threading.Lock()


class ChallengeReached(PortalError):
    """The portal asked for a code, a captcha or an approval: the test ends there."""

    outcome = ASKS_CODE

    def __init__(self, request: Any):
        if isinstance(request, CodeRequest):
            message = (
                "the portal accepted the user name and password, then asked for a code "
                f"(«{request.prompt}»); once the portal is added, its runs ask you for it"
            )
        elif isinstance(request, ApprovalRequest):
            self.outcome = ASKS_APPROVAL
            message = (
                "the portal accepted the user name and password and waits for the login "
                "to be confirmed in its app; once the portal is added, its runs wait for it"
            )
        else:
            self.outcome = "captcha"
            message = (
                "the portal shows a captcha before it checks the password: add the portal, "
                "then its Test login asks you to solve it"
            )
        super().__init__(message)


class _NoAnswers:
    """Stands in for the challenge broker: the first code, captcha or approval ends the test."""

    def ask(self, portal: str, request: Any, **_: Any) -> str:
        raise ChallengeReached(request)

    def wait_approval(self, portal: str, request: Any, poll: Any, **_: Any) -> None:
        raise ChallengeReached(request)


def try_login(
    portal: PortalConfig,
    config: Config,
    archive: Archive,
    index: Index,
    events: EventBus,
    halt: Halt | None = None,
) -> p.RunInfo:
    """Log in to a portal that is not configured, and say how it went (blocks)."""
    with one_trial(portal.name):
        return _try(portal, config, archive, index, events, halt)


@contextlib.contextmanager
def one_trial(name: str) -> Iterator[None]:
    """Hold the name's trial folder for one test login or `gmid try` at a time; Busy if one
    is under way."""
    key = name.casefold()
    with _busy_lock:
        if key in _busy:
            raise Busy(f"a trial of {name} is under way; try again when it has ended")
        _busy.add(key)
    try:
        yield
    finally:
        with _busy_lock:
            _busy.discard(key)


def trial_folder(config: Config, name: str) -> Path:
    """The name's trial folder, made empty (0700: its pages may show personal data)."""
    trials = config.state_dir / "trials"
    folder = trials / name
    try:
        trials.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700)
    except OSError as e:
        raise GmidError(f"could not make the trial's folder {folder}: {e.strerror}") from None
    return folder


def _try(
    portal: PortalConfig,
    config: Config,
    archive: Archive,
    index: Index,
    events: EventBus,
    halt: Halt | None,
) -> p.RunInfo:
    started = datetime.now(UTC)
    folder = trial_folder(config, portal.name)
    run = PortalRun(
        portal,
        dataclasses.replace(config, state_dir=folder),
        archive,
        index,
        _NoAnswers(),  # type: ignore[arg-type]
        events,
        progress=lambda text: None,
        deadline=time.monotonic() + config.runs.run_timeout,
        halt=halt,
    )
    try:
        outcome, message, portal_message, _ = run.attempt(login_only=True)
    finally:
        shutil.rmtree(folder / "sessions", ignore_errors=True)  # its cookies log in
    if outcome == "ok":
        message = "the portal accepted the user name and password"
    elif outcome == "stopped":
        message = "stopped when the daemon stopped"
    level = logging.INFO if outcome in ("ok", ASKS_CODE, ASKS_APPROVAL) else logging.WARNING
    logger.log(level, "portal %s: test login before adding: %s", portal.name, outcome)
    return p.RunInfo(
        portal=portal.name,
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        outcome=outcome,
        message=message,
        portal_message=portal_message,
        manual=True,
        test=True,
    )
