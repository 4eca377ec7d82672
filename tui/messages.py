"""The messages workers post to the app and its screens: small dataclasses, one line of doc each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from gmid.control import protocol as p


@dataclass
class Connected(Message):
    """The daemon answered on its socket; `status` is its first answer."""

    client: Any  # gmid.control.client.ControlClient
    status: p.Status


@dataclass
class DaemonDown(Message):
    """Nothing answers on the socket (any more); the worker retries by itself."""

    socket: str
    reason: str


@dataclass
class StatusLoaded(Message):
    """A fresh status: portals, their next runs, pending challenges."""

    status: p.Status


@dataclass
class DaemonEvent(Message, bubble=False):
    """One event from the daemon's stream (also forwarded to the screens)."""

    event: p.Event


@dataclass
class Counted(Message):
    """A scan of the index: every document's id -> (company, source, source name, received)."""

    seen: dict[int, tuple[str, str, str, str]]


@dataclass
class ModelChanged(Message, bubble=False):
    """The app's model changed: screens showing it re-render what differs."""


@dataclass
class DocumentsLoaded(Message):
    """A page of documents for the documents screen, for the query it was asked with."""

    page: p.DocumentPage
    query: tuple
    append: bool


@dataclass
class ScheduleLoaded(Message):
    """The coming runs and quiet periods (`schedule.preview`)."""

    plan: p.SchedulePreview


@dataclass
class RecentLoaded(Message):
    """The daemon's recent events, oldest first (`events.recent`)."""

    events: list[p.Event]


@dataclass
class ConnectorsLoaded(Message):
    """The connectors and form descriptions a portal can use (`connectors.list`)."""

    connectors: list[dict[str, Any]]


@dataclass
class Done(Message):
    """An action the user asked for has ended; `text` says how, in the user's words."""

    text: str
    ok: bool = True
    action: str = ""
    result: Any = None
