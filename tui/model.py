"""What the TUI knows of the daemon: its status, portals, codes asked for and document counts.

Plain data, changed only by the app's message handlers: a status answer or one event at a time.
Screens read it when they render; none of them holds a copy of their own.
"""

from __future__ import annotations

import collections
import math
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gmid.control import protocol as p

# Events after which the portals' next runs (or the portals themselves) may have changed.
REPLAN_EVENTS = (
    "portal.finished",
    "portal.added",
    "portal.updated",
    "portal.removed",
    "company.added",
    "config.reloaded",
    "events.lost",
    "daemon.started",
)

# A document's fields (documents.show), in the order a reader looks for them, named for people.
FIELD_LABELS = {
    "kind": "Kind",
    "number": "Number",
    "date": "Date",
    "company": "Company",
    "seller": "Seller",
    "seller_vat_id": "Seller VAT ID",
    "buyer": "Buyer",
    "net_total": "Net total",
    "tax_total": "Tax total",
    "amount": "Gross total",
    "currency": "Currency",
    "due_date": "Due date",
    "iban": "IBAN",
}
# Where a field's value came from, best first.
ORIGINS = {
    "einvoice": "e-invoice XML",
    "text": "document's text",
    "portal": "portal",
    "mail": "mail",
}
# What a sender's text must not bring to the terminal: controls (escape sequences) and the
# bidirectional overrides that can show an IBAN or a number turned around.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str | None) -> str:
    """A sender's text as it may be shown: controls and bidi overrides replaced by U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", text or "")


@dataclass
class Pending:
    """A challenge waiting for the user, and when the TUI heard of it (for the countdown)."""

    info: p.ChallengeInfo
    received: float  # time.monotonic()

    def left(self, now: float | None = None) -> float:
        """Seconds left to answer, counted on this machine's clock."""
        now = time.monotonic() if now is None else now
        return self.info.seconds_left - (now - self.received)

    def whole_seconds_left(self) -> int:
        return max(0, math.ceil(self.left()))


class Model:
    """The daemon as the TUI sees it."""

    def __init__(self, log_size: int = 500):
        self.connected = False
        self.socket = ""
        self.down_reason = ""
        self.status: p.Status | None = None
        self.tz: tzinfo = UTC
        self.portals: dict[str, p.PortalInfo] = {}
        self.companies: list[str] = []  # companies the daemon names (when its status has them)
        self.mailboxes: dict[str, p.MailboxInfo] = {}  # the watched IMAP mailboxes, in order
        self.challenges: dict[str, Pending] = {}
        self.company_docs: dict[str, int] | None = None
        self.portal_docs: dict[str, int] | None = None
        self.company_last: dict[str, str] = {}  # company -> when its newest document came
        self.documents = 0
        self.log: collections.deque[p.Event] = collections.deque(maxlen=log_size)
        self._counting = False
        self._added_while_counting: dict[int, dict[str, Any]] = {}

    # -- status ----------------------------------------------------------------------------

    def load_status(self, status: p.Status) -> None:
        """Take a fresh status: portals, companies, pending challenges, totals."""
        self.status = status
        try:
            self.tz = ZoneInfo(status.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.tz = UTC
        self.portals = {portal.name: portal for portal in status.portals}
        self.mailboxes = {box.name: box for box in status.mailboxes}
        self.companies = [company.name for company in status.companies]
        self.documents = status.documents
        seen = {c.id for c in status.challenges}
        self.challenges = {k: v for k, v in self.challenges.items() if k in seen}
        for challenge in status.challenges:
            if challenge.id not in self.challenges:
                self.challenges[challenge.id] = Pending(challenge, time.monotonic())

    def disconnect(self, socket: str, reason: str) -> None:
        """The daemon is gone: nothing it said can be acted on any more."""
        self.connected = False
        self.socket = socket
        self.down_reason = reason
        self.challenges.clear()

    # -- counts ----------------------------------------------------------------------------

    def start_counting(self) -> None:
        """A scan of the index begins: remember documents added meanwhile."""
        self._counting = True
        self._added_while_counting = {}

    def load_counts(self, seen: dict[int, tuple[str, str, str, str]]) -> None:
        """Take the scan's documents (id -> company, source, source name, received), plus those
        added since it began."""
        merged = dict(seen)
        for doc in self._added_while_counting.values():
            merged.setdefault(doc.get("id", -1), _doc_key(doc))
        companies: dict[str, int] = collections.Counter()
        portals: dict[str, int] = collections.Counter()
        last: dict[str, str] = {}
        for company, source, source_name, received in merged.values():
            companies[company] += 1
            if source == "portal":
                portals[source_name] += 1
            if received > last.get(company, ""):
                last[company] = received
        self.company_docs, self.portal_docs = dict(companies), dict(portals)
        self.company_last = last
        self._counting = False
        self._added_while_counting = {}

    # -- events ----------------------------------------------------------------------------

    def apply(self, event: p.Event) -> bool:
        """Take one event into account; True when a fresh status should be asked for.

        A mailbox's state and counts come only with the status (its event names the mailbox and
        no more): its change, and a document filed from IMAP, ask for a fresh one."""
        self.log.append(event)
        kind, data = event.type, event.data
        name = data.get("portal", "")
        portal = self.portals.get(name)
        if kind == "portal.queued" and portal:
            self.portals[name] = replace(portal, state="queued", progress="queued")
        elif kind == "portal.started" and portal:
            progress = "testing the login" if data.get("test") else "starting"
            self.portals[name] = replace(portal, state="running", progress=progress)
        elif kind == "portal.progress" and portal:
            progress = data.get("progress")
            if data.get("test"):
                progress = f"test: {progress}"
            self.portals[name] = replace(portal, state="running", progress=progress)
        elif kind == "portal.finished" and portal and data.get("test"):
            # A test login leaves the last run as it was.
            last = portal.last_run
            state = last.outcome if last else ("never run" if portal.enabled else "disabled")
            self.portals[name] = replace(portal, state=state, progress=None)
        elif kind == "portal.finished" and portal:
            run = p.RunInfo.from_dict(data)
            self.portals[name] = replace(portal, state=run.outcome, progress=None, last_run=run)
        elif kind == "document.added":
            self._document_added(data.get("document") or {})
        elif kind == "challenge.pending":
            challenge = p.ChallengeInfo.from_dict(data)
            self.challenges[challenge.id] = Pending(challenge, time.monotonic())
        elif kind == "company.added" and data.get("company") not in self.companies:
            self.companies.append(data.get("company", ""))
        elif kind in ("challenge.answered", "challenge.expired"):
            self.challenges.pop(data.get("id", ""), None)
        return (
            kind in REPLAN_EVENTS
            or (kind.startswith("portal.") and portal is None)
            or kind == "mailbox.changed"
            or (kind == "document.added" and (data.get("document") or {}).get("source") == "imap")
        )

    def _document_added(self, doc: dict[str, Any]) -> None:
        self.documents += 1
        if self._counting:
            self._added_while_counting[doc.get("id", -1)] = doc
        company, source, source_name, received = _doc_key(doc)
        if received > self.company_last.get(company, ""):
            self.company_last[company] = received
        if self.company_docs is not None:
            self.company_docs[company] = self.company_docs.get(company, 0) + 1
        if self.portal_docs is not None and source == "portal":
            self.portal_docs[source_name] = self.portal_docs.get(source_name, 0) + 1

    # -- reading ---------------------------------------------------------------------------

    def waiting(self, portal: str) -> p.ChallengeInfo | None:
        """The oldest challenge a portal waits on, if any."""
        for pending in self.challenges.values():
            if pending.info.portal == portal:
                return pending.info
        return None

    def company_rows(self) -> list[str]:
        """Companies shown as rows of their own: those with documents or named by the daemon, but
        without a portal (a company with a portal is its portal's row)."""
        with_portal = {portal.company for portal in self.portals.values()}
        names = list(self.companies) + sorted(self.company_docs or {})
        seen: set[str] = set()
        rows = []
        for name in names:
            if name and name not in with_portal and name not in seen:
                seen.add(name)
                rows.append(name)
        return rows


def _doc_key(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        doc.get("company", "unknown"),
        doc.get("source", ""),
        doc.get("source_name", ""),
        doc.get("received_at", ""),
    )


# -- delivery (gmid/deliver/) ---------------------------------------------------------------------

DELIVERY_STATES = {"done": ("delivered", "green"), "pending": ("on its way", "yellow")}
DELIVERY_STATES["failed"] = ("failed", "red")


def sent_summary(states: dict[str, str], width: int = 12) -> tuple[str, str]:
    """A document's deliveries (destination -> state) in a few characters, with their style:
    the failed destinations ("✗ paperless"), else how many are on their way ("… 1"), else how
    many were delivered ("✓ 2"); "" when it goes nowhere."""
    failed = sorted(name for name, state in states.items() if state == "failed")
    if failed:
        text = "✗ " + ", ".join(failed)
        return (text if len(text) <= width else text[: width - 1] + "…"), "red"
    pending = sum(state == "pending" for state in states.values())
    if pending:
        return f"… {pending}", "yellow"
    if states:
        return f"✓ {len(states)}", "green"
    return "", ""
