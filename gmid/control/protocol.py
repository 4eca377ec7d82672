"""What travels on the control socket: JSON-RPC 2.0, one JSON object per line, and its payloads."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Self

MAX_LINE = 1 << 20  # a request line longer than this is refused, the connection stays usable

# JSON-RPC 2.0 error codes, and ours in the implementation-defined range.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
FORBIDDEN = -32001


def encode(message: dict[str, Any]) -> bytes:
    """Serialise one message as a line."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def request(id_: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a request object."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params:
        message["params"] = params
    return message


def result(id_: Any, value: Any) -> dict[str, Any]:
    """Build a success response."""
    return {"jsonrpc": "2.0", "id": id_, "result": value}


def error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """Build an error response."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Build a notification (no id, no answer expected): how events are pushed."""
    return {"jsonrpc": "2.0", "method": method, "params": params}


class _Wire:
    """Mixin: build a dataclass from a dict, ignoring fields a newer daemon may add."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class SmtpStatus(_Wire):
    """The SMTP listener: where it listens and what it has done since start."""

    enabled: bool
    listen: str | None
    accepted: int = 0
    rejected: int = 0
    quarantined: int = 0


@dataclass(frozen=True)
class MailboxInfo(_Wire):
    """One watched IMAP mailbox: connection state and what it has done."""

    name: str
    host: str
    username: str
    state: str  # connecting | syncing | idle | polling | failing | disabled
    error: str | None = None  # why it is failing, in the server's words where it gave any
    folders: list[dict[str, Any]] = field(default_factory=list)  # folder, state, error, bytes
    last_sync: str | None = None
    messages: int = 0  # mails looked at, over all time
    documents: int = 0  # documents filed from this mailbox, over all time
    bodies: int = 0  # mail bodies downloaded since the daemon started
    bytes: int = 0  # bytes the servers sent since the daemon started


@dataclass(frozen=True)
class Status(_Wire):
    """The daemon as a whole."""

    version: str
    pid: int
    started_at: str
    uptime: float
    config: str
    archive: str
    state_dir: str
    timezone: str
    documents: int
    quarantined: int
    smtp: SmtpStatus
    components: dict[str, str] = field(default_factory=dict)
    portals: list[PortalInfo] = field(default_factory=list)
    challenges: list[ChallengeInfo] = field(default_factory=list)
    companies: list[dict[str, Any]] = field(default_factory=list)  # name and senders
    mailboxes: list[MailboxInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        data = dict(data)
        data["smtp"] = SmtpStatus.from_dict(data.get("smtp") or {"enabled": False, "listen": None})
        data["portals"] = [PortalInfo.from_dict(p) for p in data.get("portals", [])]
        data["challenges"] = [ChallengeInfo.from_dict(c) for c in data.get("challenges", [])]
        data["mailboxes"] = [MailboxInfo.from_dict(m) for m in data.get("mailboxes", [])]
        return super().from_dict(data)


@dataclass(frozen=True)
class Document(_Wire):
    """One archived document as the index knows it."""

    id: int
    sha256: str
    path: str
    size: int
    media_type: str
    source: str
    source_name: str
    company: str
    received_at: str
    original_name: str | None = None
    message_id: str | None = None
    source_ref: str | None = None
    date: str | None = None
    number: str | None = None
    amount: str | None = None


@dataclass(frozen=True)
class DocumentPage(_Wire):
    """A page of `documents.list`, newest first."""

    documents: list[Document]
    total: int
    offset: int
    limit: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        docs = [Document.from_dict(d) for d in data.get("documents", [])]
        return cls(docs, data.get("total", len(docs)), data.get("offset", 0), data.get("limit", 0))


@dataclass(frozen=True)
class Event(_Wire):
    """Something that happened in the daemon, pushed to subscribers."""

    type: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)


NOT_FOUND = -32004
BUSY = -32005  # a portal's run (or test login) is under way: try again when it has ended


@dataclass(frozen=True)
class RunInfo(_Wire):
    """How a portal run ended."""

    portal: str
    started_at: str
    finished_at: str
    outcome: str
    message: str | None = None
    portal_message: str | None = None
    new_documents: int = 0
    manual: bool = False


@dataclass(frozen=True)
class PortalInfo(_Wire):
    """A configured portal, its state and its last run."""

    name: str
    company: str
    connector: str
    enabled: bool
    state: str
    progress: str | None = None
    last_run: RunInfo | None = None
    credentials_changed: bool = False
    next_run: str | None = None  # ISO time, None when not planned (see next_reason)
    next_reason: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        data = dict(data)
        if data.get("last_run"):
            data["last_run"] = RunInfo.from_dict(data["last_run"])
        return super().from_dict(data)


@dataclass(frozen=True)
class ChallengeInfo(_Wire):
    """A portal waiting for the user: a code, a captcha (an image, or a widget's token) or an
    approval."""

    id: str
    portal: str
    kind: str
    prompt: str
    medium: str = ""
    expires_at: str = ""
    seconds_left: float = 0
    retry_message: str | None = None
    image_path: str | None = None
    media_type: str | None = None
    widget: str | None = None  # kind "token": recaptcha | hcaptcha | turnstile
    site_key: str | None = None
    page_url: str | None = None
    response_field: str | None = None  # the field the widget fills in the browser

    def token_steps(self) -> list[str]:
        """How to get a token by hand, for the CLI and the TUI ([] for other kinds)."""
        if self.kind != "token":
            return []
        field = self.response_field or "g-recaptcha-response"
        return [
            f"open {self.page_url or 'the login page'} in a browser, solve the check there "
            "(but do not log in: a token counts once), then run in the browser's console (F12):",
            f"  document.querySelector('[name={field}]').value",
            "and paste what it prints",
        ]
