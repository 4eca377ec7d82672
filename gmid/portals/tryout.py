"""`gmid try NAME`: a trial of a portal's description, step by step, that records nothing.

Writing a description is trial and error; a trial makes each attempt cheap and clear. It logs
in and lists as a run does, with the run's own code (a PortalRun: its deadlines, the daemon's
stop, codes asked through the challenge broker), and is told each step by the connector
(connectors/form/trace.py): every request, what every selector or path matched, the rows. It
stops at the first problem, naming the description's option to change (gmid/portals/tryhints.py).

Nothing is recorded: no run in the portal's history, no document id, no document in the archive,
and no session of the portal's. Its cookies and the pages it saves for diagnosis live in
`<state_dir>/trials/NAME` (emptied by the next trial of that name; the cookies go at the end).
Documents are downloaded only when asked, into a folder the user names or that trial folder,
never into the archive. A disabled draft (from `gmid suggest`) is tried the same way.

The run's secrets (the password, codes typed, session cookies) are blanked in everything the
trial tells, as in a run's messages and saved pages.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import RemoteDocument, Trace
from connectors.form.extract import page_url
from connectors.form.trace import hide_query
from gmid.archive.archive import Archive
from gmid.archive.index import Index
from gmid.config.load import Config
from gmid.config.portals import PortalConfig
from gmid.control import protocol as p
from gmid.errors import DownloadRejected, GmidError, PortalError
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.halt import Halt
from gmid.portals.redact import Redactor, logged_without
from gmid.portals.run import PortalRun
from gmid.portals.trial import one_trial, trial_folder
from gmid.portals.tryhints import problem

logger = logging.getLogger(__name__)

TRY_ROWS = 20  # documents listed by default: a run lists them all
MAX_ROWS = 1000
MAX_DOWNLOADS = 20
MAX_STEPS = 2000  # steps kept of a trial; a list that goes on and on is cut


class Steps(Trace):
    """The trace of a trial: each step the connector tells, in order, bounded."""

    active = True

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.dropped = 0

    def step(self, kind: str, **facts: Any) -> None:
        """Keep one step; the same probe looked at again on the same page is kept once."""
        entry = {"kind": kind} | {k: v for k, v in facts.items() if v is not None}
        if self.steps and self.steps[-1] == entry:
            return
        if len(self.steps) >= MAX_STEPS:
            self.dropped += 1
            return
        self.steps.append(entry)


class TrialRun(PortalRun):
    """A run for which no document is known: every row is read as new, its detail page too."""

    def _known(self, ref: str) -> bool:
        return False


@dataclasses.dataclass
class Outcome:
    """What a trial found: the documents listed, and the first problem (None: none)."""

    listed: list[RemoteDocument] = dataclasses.field(default_factory=list)
    more: bool = False
    error: GmidError | None = None


def try_portal(
    portal: PortalConfig,
    config: Config,
    archive: Archive,
    index: Index,
    broker: ChallengeBroker,
    events: EventBus,
    halt: Halt | None = None,
    *,
    download: int = 0,
    into: Path | None = None,
    rows: int = TRY_ROWS,
) -> p.TryReport:
    """Try a portal's login and list step by step; download `download` documents (blocks).

    Its progress and end are published as a test login's are (`test: true`, and `trial:
    true`): a client that answered its code hears how the portal took it, and the portal's
    last run stays as it was.
    """
    mark = {"portal": portal.name, "test": True, "trial": True}
    started = datetime.now(UTC)
    with one_trial(portal.name):
        folder = trial_folder(config, portal.name)
        target = downloads_dir(config, folder, into) if download else None
        steps = Steps()
        run = TrialRun(
            portal,
            dataclasses.replace(config, state_dir=folder),
            archive,
            index,
            broker,
            events,
            progress=lambda text: events.publish("portal.progress", progress=text, **mark),
            deadline=time.monotonic() + config.runs.run_timeout,
            halt=halt,
            trace=steps,
        )
        try:
            with logged_without(run.redactor):
                found = _trial(run, steps, min(download, MAX_DOWNLOADS), target, rows)
        finally:
            shutil.rmtree(folder / "sessions", ignore_errors=True)  # its cookies log in
    stopped = halt is not None and halt.event.is_set()
    report = _report(portal, run.redactor, steps, found, target, stopped)
    logger.info("portal %s: tried: %s", portal.name, report.outcome)
    events.publish(
        "portal.finished",
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        outcome=report.outcome,
        message=f"trial: {report.message}" if report.message else "trial",
        portal_message=report.portal_message,
        manual=True,
        **mark,
    )
    return report


def downloads_dir(config: Config, folder: Path, into: Path | None) -> Path:
    """Where a trial's downloads go: the folder named, made if missing, or the trial folder's
    `downloads`; never the archive, nor a folder in it."""
    target = folder / "downloads" if into is None else into
    if not target.is_absolute():
        raise GmidError(f"{target}: give the folder for the downloads as an absolute path")
    archive = config.archive.dir.resolve()
    if target.resolve().is_relative_to(archive):
        raise GmidError(f"{target} is in the archive: a trial never saves there; name another")
    try:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise GmidError(f"cannot make the folder {target}: {e.strerror or e}") from None
    if not target.is_dir():
        raise GmidError(f"{target} is not a folder")
    return target


def _trial(run: TrialRun, steps: Steps, download: int, target: Path | None, rows: int) -> Outcome:
    found = Outcome()
    try:
        with run.session() as (connector, how):
            steps.step("note", text=how)
            for doc in connector.documents():
                run.expiry()  # raises RunTimeout past the deadline
                if len(found.listed) >= rows:
                    found.more = True
                    break
                found.listed.append(doc)
            for number, doc in enumerate(found.listed[:download], 1):
                assert target is not None
                _download(run, connector, doc, number, target, steps)
    except GmidError as e:  # PortalError, a secret that cannot be read...
        found.error = e
    except Exception:
        logger.exception("portal %s: the trial failed", run.portal.name)
        found.error = GmidError("internal error; see the daemon's log")
    return found


def _download(
    run: TrialRun, connector: Any, doc: RemoteDocument, number: int, target: Path, steps: Steps
) -> None:
    """Download one document and save it as the file its bytes say it is."""
    from gmid.portals.unzip import documents_in, is_zip
    from gmid.portals.web import check_document

    run.expiry()
    data, content_type = connector.download(doc)
    label = doc.number or doc.title or doc.id
    if is_zip(data):  # its documents, each saved as a file of its own
        members, notes = documents_in(data, run.config.runs.max_download)
        for m in members:
            path = save(target, number, m.basename.rpartition(".")[0] or "document", m.ext, m.data)
            size = len(m.data)
            text = f"{label}: {m.name}"
            steps.step("download", text=text, content_type=m.media_type, size=size, path=str(path))
        for note in notes:
            steps.step("note", text=f"{label}: left out of the ZIP: {note}")
        return
    try:
        _kind, media_type, ext = check_document(data, content_type)
    except DownloadRejected as e:
        raise DownloadRejected(
            f"documents.download: {e} for {page_url(doc.url)}; the link must lead to the file"
        ) from None
    path = save(target, number, doc.number or doc.title or "document", ext, data)
    steps.step("download", text=label, content_type=media_type, size=len(data), path=str(path))


def save(folder: Path, number: int, label: str, ext: str, data: bytes) -> Path:
    """Write a download as a new owner-only file (never over one, never through a link)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip(".-")[:60]
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        path = folder / f"{number:02d}-{safe or 'document'}{suffix}{ext}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        except OSError as e:
            raise GmidError(f"cannot save the download as {path}: {e.strerror or e}") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path
    raise GmidError(f"{folder} already has the files the downloads would be saved as")


def _report(
    portal: PortalConfig,
    redactor: Redactor,
    steps: Steps,
    found: Outcome,
    target: Path | None,
    stopped: bool,
) -> p.TryReport:
    """The trial as the client shows it, with the run's secrets blanked everywhere."""

    def clean(key: str, value: Any) -> Any:
        if isinstance(value, list):
            return [clean(key, v) for v in value]
        if not isinstance(value, str):
            return value
        return redactor.text(page_url(value) if key == "url" else hide_query(value))

    shown = [p.TryStep(**{k: clean(k, v) for k, v in step.items()}) for step in steps.steps]
    if steps.dropped:
        shown.append(p.TryStep("note", text=f"{steps.dropped} more steps not shown"))
    rows = [
        p.TryRow(
            id=clean("url" if doc.id == doc.url else "id", doc.id),
            date=doc.date.isoformat() if doc.date else None,
            number=clean("number", doc.number),
            amount=doc.amount,
            title=clean("title", doc.title),
            url=clean("url", doc.url),
        )
        for doc in found.listed
    ]
    error = found.error
    outcome, message, words, option, hint, page = "ok", None, None, None, None, None
    if stopped:
        outcome, message = "stopped", "stopped when the daemon stopped"
    elif error is not None:
        outcome = error.outcome if isinstance(error, PortalError) else "error"
        message = str(error)
        words = getattr(error, "portal_message", None)
        page = getattr(error, "page", None)
        option, hint = problem(error, portal.name)
    else:
        n = len(found.listed)
        message = f"logged in; {n} document{'s' * (n != 1)} listed"
    return p.TryReport(
        portal=portal.name,
        outcome=outcome,
        message=redactor.text(message),
        portal_message=redactor.text(words),
        option=option,
        hint=hint,
        page=page,
        steps=shown,
        rows=rows,
        more_rows=found.more,
        downloads_dir=str(target) if target is not None else None,
    )
