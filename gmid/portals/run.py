"""What one portal run does in its worker thread: the session, the login and the downloads.

The runner (gmid/portals/runner.py) starts runs, a few at a time, and records how each ended; a
PortalRun is the run itself. It opens the portal's browser on its saved cookies, logs in unless
the saved session is still valid (codes and captchas go through the challenge broker, or the
captcha solver, or a TOTP secret), downloads the documents not filed before, and saves the
cookies at the end, whatever happened. Everything here blocks: mechanicalsoup is synchronous.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import load_connector
from connectors.base import ApprovalRequest, PortalContext, Trace
from gmid.archive.archive import Archive, Incoming
from gmid.archive.index import Index
from gmid.config.load import Config, session_file
from gmid.config.portals import PortalConfig
from gmid.errors import GmidError, PortalError, RunTimeout, SecretError, SessionExpired
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.challenges.challenge import totp_for
from gmid.portals.halt import Halt
from gmid.portals.redact import Redactor, logged_without
from gmid.portals.runlog import filed_ref, filed_refs_under, record_ref
from gmid.portals.solver import asker, solver_for

logger = logging.getLogger(__name__)

SAVED_PAGE_CAP = 10**6  # bytes of a page saved for diagnosis
_REDACT_SLACK = 1 << 14  # bytes past the cap that are read for a secret cut by the cap
MIN_COOKIE = 16  # characters of a cookie value that is blanked as a session token
KEEP_PAGES = 10  # saved pages kept per portal, the newest


@dataclass
class PortalRun:
    """One run of one portal: the parts it works with and the deadline it must keep."""

    portal: PortalConfig
    config: Config
    archive: Archive
    index: Index
    broker: ChallengeBroker
    events: EventBus
    progress: Callable[[str], None]  # tells what the run is doing (the runner publishes it)
    deadline: float  # on the time.monotonic() clock
    halt: Halt | None = None  # the daemon's stop: ends the run's requests at once
    # the portal's secrets as the run uses them: blanked in what the portal says, saved pages
    redactor: Redactor = field(default_factory=Redactor)
    trace: Trace = field(default_factory=Trace)  # a trial's (gmid try) is told each step
    _cookies: Any = field(default=None, init=False, repr=False)  # the run's cookie jar
    notes: list[str] = field(default_factory=list)  # what the run left out (ZIP members)

    def __post_init__(self) -> None:
        portal = self.portal
        self.redactor.keep(portal.name, portal.company, portal.username)
        told = self.progress  # progress texts quote the portal (a document's title)
        self.progress = lambda text: told(self.redactor.text(text) or "")

    def expiry(self) -> float:
        """How long a code request may wait from now; RunTimeout once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RunTimeout(f"the run took longer than {self.config.runs.run_timeout:g} s")
        return min(self.config.runs.code_timeout, left)

    @contextlib.contextmanager
    def session(self) -> Iterator[tuple[Any, str]]:
        """Yield a logged-in connector and how it got there.

        The session (cookies) is saved at the end, whatever happened.
        """
        from gmid.portals.web import (  # requests: at first use
            HttpPolicy,
            make_browser,
            read_body,
            save_cookies,
        )

        portal, runs = self.portal, self.config.runs
        policy = HttpPolicy(
            timeout=runs.request_timeout,
            allow_http=portal.allow_http,
            ca_bundle=portal.ca_bundle,
            max_download=runs.max_download,
            max_page=runs.max_page,
            deadline=self.deadline,
            run_timeout=runs.run_timeout,
            halt=self.halt,
        )
        cookie_file = session_file(self.config.state_dir, portal.name)
        browser = make_browser(policy, cookie_file)
        self._cookies = browser.session.cookies
        try:
            totp = None
            if portal.totp_secret:
                secret = portal.totp_secret.resolve()
                self.redactor.add_totp_secret(secret)
                totp = totp_for(secret)
            ask = asker(
                self.broker,
                portal.name,
                solver_for(portal, self.config.captcha_solver),
                totp=totp,
                expiry=self.expiry,
                progress=self.progress,
            )
            ctx = PortalContext(
                portal=portal.name,
                username=portal.username,
                password=self._password,
                browser=browser,
                ask=lambda request: self._ask(ask, request),
                wait_approval=lambda request, poll: self.broker.wait_approval(
                    portal.name, self._redacted(request), poll, expiry=self.expiry()
                ),
                save_page=self.save_page,
                read_body=read_body,
                progress=self.progress,
                options=portal.options,
                secret=self._option_secret,
                learn_secret=self.redactor.add,
                known=self._known,
                trace=self.trace,
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
            yield connector, how
        finally:
            self._learn_cookies()
            try:
                save_cookies(browser, cookie_file)
            except OSError as e:
                logger.warning("portal %s: could not save its session: %s", portal.name, e)
            browser.close()

    def _learn_cookies(self) -> None:
        """Know the session's cookies that look like tokens as secrets: they belong in the
        cookie jar, not in a saved page nor in a message."""
        for cookie in self._cookies or ():
            if cookie.value and len(cookie.value) >= MIN_COOKIE:
                self.redactor.add(cookie.value)

    def _password(self) -> str:
        """The portal's password, read when the connector needs it, and known as a secret."""
        password = self.portal.password.resolve() if self.portal.password else ""
        self.redactor.add(password)
        return password

    def _option_secret(self, path: str) -> str:
        """A secret of the connector's options (an API key), resolved now, known as a secret."""
        ref = self.portal.secrets.get(path)
        if ref is None:
            raise SecretError(f"portal {self.portal.name}: no secret at option {path}")
        secret = ref.resolve()
        self.redactor.add(secret)
        return secret

    def _ask(self, ask: Callable[[Any], str], request: Any) -> str:
        """Ask for a code, captcha or token; the answer is a secret of the run from now on."""
        answer = ask(self._redacted(request))
        self.redactor.add(answer)
        return answer

    def _redacted(self, request: Any) -> Any:
        """A request whose words (the portal's) are without the run's secrets."""
        changes = {"prompt": self.redactor.text(request.prompt)}
        if not isinstance(request, ApprovalRequest):
            changes["retry_message"] = self.redactor.text(request.retry_message)
        return dataclasses.replace(request, **changes)

    def attempt(self, login_only: bool = False) -> tuple[str, str | None, str | None, int]:
        """Do the run: its outcome, message, the portal's words and how many documents are new.

        The run's secrets are blanked in what it logs meanwhile and in the message and words it
        returns (the portal may echo what it was sent). A run the daemon's stop ended is
        "stopped", with no message: the caller says what follows.
        """
        with logged_without(self.redactor):
            outcome, message, words, new = self._attempt(login_only)
        if outcome != "ok" and self.halt is not None and self.halt.event.is_set():
            return "stopped", None, None, new
        return outcome, self.redactor.text(message), self.redactor.text(words), new

    def _attempt(self, login_only: bool) -> tuple[str, str | None, str | None, int]:
        try:
            with self.session() as (connector, how):
                if login_only:
                    return "ok", how, None, 0
                new = self.download_all(connector)
                message = f"{new} new document{'s' if new != 1 else ''}" + self._notes()
                return "ok", message, None, new
        except PortalError as e:
            message = str(e)
            if getattr(e, "page", None):
                message += f"; the page is saved as {e.page}"
            return e.outcome, message, e.portal_message, 0
        except GmidError as e:  # a secret that cannot be read, the archive full...
            return "error", str(e), None, 0
        except Exception:
            logger.exception("portal %s: the run failed", self.portal.name)
            return "error", "internal error; see the daemon's log", None, 0

    def _notes(self) -> str:
        """The run's notes for its message: the first few, and how many more."""
        if not self.notes:
            return ""
        more = f"; {len(self.notes) - 3} more" if len(self.notes) > 3 else ""
        return f" (left out of ZIPs: {'; '.join(self.notes[:3])}{more})"

    def download_all(self, connector) -> int:
        """Download what is new; log in again once if the portal ends the session midway."""
        for attempt in range(2):
            try:
                return self._download_new(connector)
            except SessionExpired:
                if attempt:
                    raise
                self.progress("the session expired, logging in again")
                connector.login()
        raise AssertionError("unreachable")

    def _known(self, ref: str) -> bool:
        """Whether a document id (or, ending in "/", any id under it) is filed, its file kept."""
        if ref.endswith("/"):
            shas = filed_refs_under(self.index, self.portal.name, ref)
        else:
            shas = [sha] if (sha := filed_ref(self.index, self.portal.name, ref)) else []
        return bool(shas) and not any(self.archive.file_gone(sha) for sha in shas)

    def _filed(self, ref: str) -> bool:
        """Whether a listed document is filed, its file kept: by its id, or (a ZIP) as its
        members, whose ids are the ZIP's and a slash before their names."""
        sha = filed_ref(self.index, self.portal.name, ref)
        if sha is not None:
            return not self.archive.file_gone(sha)
        return self._known(f"{ref}/")

    def _documents(
        self, doc, data: bytes, content_type: str | None
    ) -> list[tuple[str, str | None, tuple[bytes, str, str]]]:
        """What a download files: itself, or (a ZIP) its documents, each with its own id and
        name; the members left out are noted in the run's message and the log."""
        from gmid.portals.unzip import documents_in, is_zip, member_ids
        from gmid.portals.web import check_document

        label = doc.title or doc.number
        if not is_zip(data):
            _kind, media_type, ext = check_document(data, content_type)
            return [(doc.id, label, (data, media_type, ext))]
        members, notes = documents_in(data, self.config.runs.max_download)
        for note in notes:
            logger.info("portal %s: %s: left out of the ZIP: %s", self.portal.name, doc.id, note)
            self.notes.append(note)
        refs = member_ids(doc.id, members)
        pairs = zip(refs, members, strict=True)
        return [(ref, m.basename, (m.data, m.media_type, m.ext)) for ref, m in pairs]

    def _download_new(self, connector) -> int:
        portal = self.portal
        new = listed = 0
        for doc in connector.documents():
            self.expiry()  # raises RunTimeout past the deadline
            listed += 1
            if self._filed(doc.id):
                continue  # filed before: not downloaded again (unless its file was deleted)
            self.progress(f"downloading {doc.number or doc.title or doc.id}")
            data, content_type = connector.download(doc)
            for ref, name, (body, media_type, ext) in self._documents(doc, data, content_type):
                stored = self.archive.store(
                    Incoming(
                        data=body,
                        media_type=media_type,
                        ext=ext,
                        source="portal",
                        source_name=portal.name,
                        company=portal.company,
                        original_name=name,
                        source_ref=ref,
                        date=doc.date,
                        number=doc.number,
                        amount=doc.amount,
                    )
                )
                record_ref(self.index, portal.name, ref, stored.document.sha256)
                if stored.created:
                    new += 1
                    self.events.publish("document.added", document=stored.document.to_dict())
        self.progress(f"{listed} listed, {new} new")
        return new

    def save_page(self, label: str, content: bytes) -> Path:
        """Keep a page for diagnosis (0600: it may show personal data); return its path.

        The run's secrets are blanked (an echoed password, a code typed). A page keeps its first
        SAVED_PAGE_CAP bytes; of a portal's pages, the newest KEEP_PAGES are kept, the older
        ones deleted.
        """
        self._learn_cookies()
        content = self.redactor.page(content[: SAVED_PAGE_CAP + _REDACT_SLACK])
        folder = self.config.state_dir / "pages" / self.portal.name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40] or "page"
        path = folder / f"{stamp}-{safe}.html"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content[:SAVED_PAGE_CAP])
        prune_pages(folder, KEEP_PAGES)
        return path


def prune_pages(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` saved pages of a folder (their names start with the
    time they were saved)."""
    pages = sorted(p for p in folder.iterdir() if p.suffix == ".html" and p.is_file())
    for old in pages[: max(0, len(pages) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
