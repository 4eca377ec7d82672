"""What travels on the control socket: JSON-RPC 2.0, one JSON object per line, and its payloads."""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable
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
NOT_FOUND = -32004  # no such portal, no challenge pending for it
BUSY = -32005  # a portal's run (or test login) is under way: try again when it has ended


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


class Wire:
    """Base of the payloads: a dataclass to its JSON form and back.

    The daemon answers with these and the server encodes them once (`to_dict`); the client
    reads them with `from_dict`, which decodes nested payloads by the fields' types and
    ignores fields a newer daemon may add.
    """

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build the payload from its JSON form."""
        values = {}
        for name, decode in _plan(cls):
            if name in data:
                value = data[name]
                values[name] = value if decode is None or value is None else decode(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: nested payloads as mappings."""
        return {name: _encode(getattr(self, name)) for name, _ in _plan(type(self))}


Decoder = Callable[[Any], Any]


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, Decoder | None], ...]:
    """Each field's name and how to decode it (None: as JSON gives it), worked out once a class:
    a page of documents is decoded field by field."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls))


def _decoder(hint: Any) -> Decoder | None:
    """How a JSON value becomes a field of this type: payloads (also in a list) decoded."""
    origin = typing.get_origin(hint)
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if origin in (types.UnionType, typing.Union) and len(args) == 1:
        return _decoder(args[0])
    if origin is list and args and (item := _decoder(args[0])) is not None:
        return lambda value: [item(v) for v in value] if isinstance(value, list) else value
    if isinstance(hint, type) and issubclass(hint, Wire):
        return lambda value: hint.from_dict(value) if isinstance(value, dict) else value
    return None


def _encode(value: Any) -> Any:
    """A payload field's JSON form: payloads (also in a list or a mapping) as mappings."""
    if isinstance(value, Wire):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


# -- the daemon: `status`, `mailboxes.list`, `config.reload` --------------------------------------


@dataclass(frozen=True)
class SmtpStatus(Wire):
    """The SMTP listener: where it listens and what it has done since start."""

    enabled: bool
    listen: str | None
    accepted: int = 0
    rejected: int = 0
    quarantined: int = 0


@dataclass(frozen=True)
class FolderInfo(Wire):
    """One folder of a watched mailbox."""

    folder: str
    state: str  # as the mailbox's
    error: str | None = None  # why it is failing, in the server's words
    bytes: int = 0  # bytes the server sent for it since the daemon started


@dataclass(frozen=True)
class MailboxInfo(Wire):
    """One watched IMAP mailbox: connection state and what it has done."""

    name: str
    host: str
    username: str
    state: str  # connecting | syncing | idle | polling | failing | blind | disabled
    error: str | None = None  # why it is failing, in the server's words where it gave any
    folders: list[FolderInfo] = field(default_factory=list)
    last_sync: str | None = None
    messages: int = 0  # mails looked at, over all time
    documents: int = 0  # documents filed from this mailbox, over all time
    bodies: int = 0  # mail bodies downloaded since the daemon started
    bytes: int = 0  # bytes the servers sent since the daemon started


@dataclass(frozen=True)
class CompanyInfo(Wire):
    """A company whose documents come by e-mail, and the addresses (or @domains) it sends from."""

    name: str
    senders: list[str] = field(default_factory=list)
    file: str | None = None  # the config file that names it


@dataclass(frozen=True)
class Status(Wire):
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
    # Mails kept in the quarantine since start because the archive could not be written,
    # and the last such failure (ISO time, error): the archive needs the user's attention.
    archive_failures: int = 0
    archive_failed_at: str | None = None
    archive_error: str | None = None
    components: dict[str, str] = field(default_factory=dict)
    portals: list[PortalInfo] = field(default_factory=list)
    challenges: list[ChallengeInfo] = field(default_factory=list)
    companies: list[CompanyInfo] = field(default_factory=list)
    mailboxes: list[MailboxInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build the status from its JSON form; without `smtp`, the listener is disabled."""
        smtp = data.get("smtp") or {"enabled": False, "listen": None}
        return super().from_dict({**data, "smtp": smtp})


@dataclass(frozen=True)
class Reloaded(Wire):
    """The answer of `config.reload`: False when the daemon refused the new config, and why."""

    reloaded: bool
    reason: str | None = None


# -- documents ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document(Wire):
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
    amount: str | None = None  # the gross total, "1234.50"
    kind: str | None = None  # invoice, credit_note, receipt, other
    currency: str | None = None
    seller: str | None = None
    seller_vat_id: str | None = None
    iban: str | None = None
    due_date: str | None = None
    buyer: str | None = None
    net_total: str | None = None
    tax_total: str | None = None
    xml_path: str | None = None
    read_version: int = 0  # 0: its content is not read yet (`gmid reindex` reads it)


@dataclass(frozen=True)
class DocumentSource(Wire):
    """One way a document came: a mail, a portal's download."""

    source: str
    source_name: str
    sha256: str
    received_at: str
    ref: str | None = None
    message_id: str | None = None
    original_name: str | None = None


@dataclass(frozen=True)
class DocumentCheck(Wire):
    """What the e-invoice check found: ok, or its problems."""

    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentDetails(Wire):
    """The answer of `documents.show`: one document, every field and where it came from
    ("einvoice", "text", "portal", "mail"), its check (None without an e-invoice), its sources
    and the absolute path of its file (and of the e-invoice XML kept beside it)."""

    document: Document
    path: str
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # name: {value, from}
    check: DocumentCheck | None = None
    sources: list[DocumentSource] = field(default_factory=list)
    xml_path: str | None = None


@dataclass(frozen=True)
class Rendering(Wire):
    """The answer of `documents.render`: a document's e-invoice as HTML or text."""

    id: int
    format: str  # "html" or "text"
    content: str


@dataclass(frozen=True)
class DocumentPage(Wire):
    """A page of `documents.list`, newest first."""

    documents: list[Document]
    total: int
    offset: int
    limit: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build the page from its JSON form."""
        docs = [Document.from_dict(d) for d in data.get("documents", [])]
        return cls(docs, data.get("total", len(docs)), data.get("offset", 0), data.get("limit", 0))


# -- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event(Wire):
    """Something that happened in the daemon, pushed to subscribers."""

    type: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subscribed(Wire):
    """The answer of `subscribe`: the event types that will come, or "all"."""

    subscribed: list[str] | str


# -- portals and their runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo(Wire):
    """How a portal run (or a test login) ended."""

    portal: str
    started_at: str
    finished_at: str
    outcome: str
    message: str | None = None
    portal_message: str | None = None
    new_documents: int = 0
    fingerprint: str = ""  # a keyed digest of what the run depended on (its config, password)
    manual: bool = False
    test: bool = False  # a test login: it only logged in


@dataclass(frozen=True)
class PortalInfo(Wire):
    """A configured portal, its state and its last run."""

    name: str
    company: str
    connector: str
    enabled: bool
    state: str
    progress: str | None = None
    last_run: RunInfo | None = None
    username: str | None = None
    # The portal's own `schedule:` as the config writes it ("7d", "tue 09:30"): at or every,
    # windows, quiet, jitter; the shape `update_portal(schedule=...)` takes.
    schedule: dict[str, Any] = field(default_factory=dict)
    credentials_changed: bool = False
    next_run: str | None = None  # ISO time, None when not planned (see next_reason)
    next_reason: str | None = None
    # Why the TUI cannot change or remove it (it is in the user's own config file, which gmid
    # does not rewrite); None when it can.
    read_only: str | None = None


@dataclass(frozen=True)
class Fetched(Wire):
    """The answer of `portal.fetch`: the run started; with `wait`, how it ended."""

    started: bool = True
    run: RunInfo | None = None


@dataclass(frozen=True)
class Suggestion(Wire):
    """The answer of `portal.suggest`: the disabled draft written for a new portal, what is left."""

    url: str
    domain: str
    name: str
    login_url: str
    form_found: bool
    draft: str  # the draft's path
    todo: list[str] = field(default_factory=list)  # "option: what to fill in"
    note: str | None = None
    loaded: bool = False  # the daemon runs with the draft now
    two_step: bool = False  # the user name on one page, the password on the next
    logged_in: bool = False  # with the user's login: it worked
    documents_url: str | None = None  # with the user's login: the page listing the invoices


@dataclass(frozen=True)
class TryStep(Wire):
    """One step of a trial (`gmid try`): a request, what a selector or path matched, a note, or
    a download."""

    kind: str  # "request" | "match" | "note" | "download"
    option: str | None = None  # match: the description's option ("documents.rows")
    expr: str | None = None  # match: the selector or path as written
    count: int | None = None  # match: how many elements (or rows) it matched
    of: int | None = None  # match of a row's value: out of how many rows
    values: list[str] = field(default_factory=list)  # match: the first values
    unread: list[str] = field(default_factory=list)  # match: dates or amounts not read as such
    method: str | None = None  # request
    url: str | None = None  # request, match: the page (its query's values hidden)
    status: int | None = None  # request
    content_type: str | None = None  # request; download: the media type its bytes say
    size: int | None = None  # request, download: bytes
    seconds: float | None = None  # request
    error: str | None = None  # request that failed; download refused
    text: str | None = None  # note; download: the document's number or title
    path: str | None = None  # download: where it was saved


@dataclass(frozen=True)
class TryRow(Wire):
    """One document as a trial listed it."""

    id: str
    date: str | None = None
    number: str | None = None
    amount: str | None = None
    title: str | None = None
    url: str | None = None  # its query's values hidden


@dataclass(frozen=True)
class TryReport(Wire):
    """The answer of `portal.try`: a trial of a portal's description, step by step.

    Nothing of it is recorded: no run, no document, no session of the portal's.
    """

    portal: str
    outcome: str  # "ok", or what a run would have ended with
    message: str | None = None
    portal_message: str | None = None
    option: str | None = None  # at the first problem: the description's option to change
    hint: str | None = None  # at the first problem: what to look at
    page: str | None = None  # at the first problem: the page as gmid got it, saved there
    steps: list[TryStep] = field(default_factory=list)
    rows: list[TryRow] = field(default_factory=list)
    more_rows: bool = False  # the list went on past the rows asked for
    downloads_dir: str | None = None  # where downloads were saved, if any were asked


@dataclass(frozen=True)
class FormDescription(Wire):
    """A form description a portal can be linked with (`add_portal(form=NAME)`)."""

    name: str
    description: str = ""
    company: str | None = None
    source: str = ""  # "config" (the config's forms/ folder) or "gmid"
    file: str = ""
    form: dict[str, Any] = field(default_factory=dict)  # what goes under a portal's `form:`


@dataclass(frozen=True)
class Connectors(Wire):
    """The answer of `connectors.list`: the connectors and form descriptions to link with."""

    connectors: list[str] = field(default_factory=list)
    forms: list[FormDescription] = field(default_factory=list)


# -- challenges -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeInfo(Wire):
    """A portal waiting for the user: a code, a captcha (an image, or a widget's token) or an
    approval."""

    id: str
    portal: str
    kind: str
    prompt: str
    medium: str = ""
    created_at: str = ""
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


# -- what `portal.add`, `portal.update`, `portal.remove` and `company.add` wrote ----------------


@dataclass(frozen=True)
class Change(Wire):
    """What a change of the config wrote or deleted, and what the user should know about it."""

    name: str
    file: str | None  # None: the file was removed, nothing was left in it
    secrets: list[str] = field(default_factory=list)  # secret files written
    deleted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    loaded: bool = False  # the daemon runs with the change now


@dataclass(frozen=True)
class PortalChange(Change):
    """A portal added, changed or removed; `portal` as it is now (None once removed)."""

    portal: PortalInfo | None = None


@dataclass(frozen=True)
class CompanyChange(Change):
    """A company added; `company` as the daemon reads it now."""

    company: CompanyInfo | None = None


# -- a portal's saved session ---------------------------------------------------------------------


@dataclass(frozen=True)
class CookieInfo(Wire):
    """One cookie of a session, never with its value."""

    name: str
    domain: str
    path: str
    expires: int | None = None  # seconds since the epoch; None: ends with the browser session
    secure: bool = False
    http_only: bool = False
    expired: bool = False


@dataclass(frozen=True)
class SessionImported(Wire):
    """The answer of `portal.session.import`: what was kept as the portal's session, and what
    was dropped (names and domains, never values)."""

    portal: str
    file: str
    imported: int
    hosts: list[str] = field(default_factory=list)  # the portal's hosts
    cookies: list[CookieInfo] = field(default_factory=list)
    other_domains: dict[str, int] = field(default_factory=dict)  # domain -> cookies dropped
    dropped_other: int = 0
    expired: list[str] = field(default_factory=list)  # names of the portal's expired cookies
    dropped_expired: int = 0
    problems: list[str] = field(default_factory=list)  # "line N: ..." not understood
    bad_lines: int = 0


@dataclass(frozen=True)
class SessionCleared(Wire):
    """The answer of `portal.session.clear`: False when there was no session to forget."""

    portal: str
    cleared: bool


@dataclass(frozen=True)
class SessionInfo(Wire):
    """The answer of `portal.session.show`: the portal's saved session, without values."""

    portal: str
    file: str
    hosts: list[str] = field(default_factory=list)
    saved: bool = False
    saved_at: str | None = None
    cookies: list[CookieInfo] = field(default_factory=list)
    error: str | None = None  # why the saved file cannot be read


# -- the schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun(Wire):
    """A run the scheduler will start."""

    at: str
    portal: str
    reason: str


@dataclass(frozen=True)
class QuietPeriod(Wire):
    """A time when no run starts, and why."""

    start: str
    end: str
    why: str


@dataclass(frozen=True)
class SchedulePreview(Wire):
    """The answer of `schedule.preview`: the coming runs and quiet periods."""

    timezone: str
    runs: list[PlannedRun] = field(default_factory=list)
    quiet: list[QuietPeriod] = field(default_factory=list)


# -- delivery (gmid/deliver/) ---------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem(Wire):
    """One document on its way to one destination: pending, done or failed, and why."""

    document_id: int
    destination: str
    state: str  # pending | done | failed
    attempts: int
    path: str  # in the archive
    company: str
    next_try: str | None = None  # pending: when it is tried (again)
    reference: str | None = None  # done: where it is now (URL, path, document id)
    error: str | None = None  # the destination's words at the last failure
    updated_at: str | None = None


@dataclass(frozen=True)
class DestinationInfo(Wire):
    """A destination of `deliver:` and how many documents it has in each state."""

    name: str
    type: str
    pending: int = 0
    done: int = 0
    failed: int = 0
    paused_until: str | None = None  # left alone after failures in a row, or as it asked


@dataclass(frozen=True)
class OutboxPage(Wire):
    """The answer of `outbox.list`: the destinations, and the rows asked for."""

    destinations: list[DestinationInfo]
    items: list[OutboxItem]


@dataclass(frozen=True)
class DeliveryState(Wire):
    """Where one document stands with one destination."""

    document_id: int
    destination: str
    state: str  # pending | done | failed


@dataclass(frozen=True)
class DeliveryStates(Wire):
    """The answer of `deliveries.states`: the configured destinations (none: nothing is
    delivered), and the states of the documents asked for."""

    destinations: list[str]
    items: list[DeliveryState]


@dataclass(frozen=True)
class Queued(Wire):
    """The answer of `deliver.queue` and `outbox.retry`: how many documents are on their way."""

    queued: int
    destination: str | None = None
