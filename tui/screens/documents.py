"""The documents page: the archive's index, newest first, searched and filtered, loaded page by
page; Enter shows a document (tui/screens/document.py), o opens its file on the desktop. When
destinations are configured (`deliver:`), a column says where each document stands with them, and
t tries the highlighted document's failed deliveries again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Select, Static

from gmid.control import protocol as p
from tui import format as fmt
from tui import link, opener
from tui.messages import DaemonEvent, DocumentsLoaded, Done, ModelChanged
from tui.model import printable, sent_summary
from tui.screens.document import DocumentScreen, retry_deliveries
from tui.screens.page import Page, TitleBar

FIRST_PAGE = 100
MORE = 200
SOURCES = [("e-mail (SMTP)", "smtp"), ("e-mail (IMAP)", "imap"), ("portal", "portal")]
COLUMNS = (
    ("date", "Date", 10),
    ("number", "Number", 18),
    ("amount", "Amount", 14),
    ("company", "Company", 26),
)


def cells(doc: p.Document, tz) -> tuple:
    """A document as table cells: its own date, else the day it came (dim)."""
    if doc.date:
        day = Text(doc.date)
    else:
        received = fmt.parse_time(doc.received_at)
        day = Text(received.astimezone(tz).strftime("%Y-%m-%d") if received else "-", "dim")
    amount = f"{doc.amount} {doc.currency or ''}".strip() if doc.amount else ""
    return (
        day,
        Text(fmt.clip(printable(doc.number), 18)),
        Text(f"{fmt.clip(printable(amount), 14):>14}"),
        Text(fmt.clip(printable(doc.company), 26)),
    )


SENT_WIDTH = 12


@dataclass
class DeliveriesLoaded(Message):
    """Where the documents `ids` stand with the configured destinations."""

    states: p.DeliveryStates
    ids: list[int]


def since_value(text: str) -> str | None:
    """The since filter: a date "2026-01-31" or nothing; ValueError for anything else."""
    text = text.strip()
    if not text:
        return None
    return date.fromisoformat(text).isoformat()


class DocTable(DataTable):
    """The documents table; says when the user scrolls near its end, to load more."""

    class NearEnd(Message):
        """The view is near the last loaded row."""

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.row_count and new >= self.max_scroll_y - 5:
            self.post_message(self.NearEnd())


class DocumentsScreen(Page):
    """Every archived document; Enter shows one, o opens its file where a desktop is."""

    MODE = "documents"
    BINDINGS = [  # noqa: RUF012
        Binding("slash", "search", "Search"),
        Binding("o", "open", "Open file"),
        Binding("r", "reload", "Refresh"),
        Binding("t", "retry", "Retry delivery"),
        Binding("escape", "leave_filter", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.docs: list[p.Document] = []
        self.total = 0
        self.query_key: tuple = ()
        self.shown_query: tuple | None = None  # the filters the table's rows answer
        self._busy = False  # a request is on its way
        self._new = 0
        self._companies: list[str] = []
        self._docs_at_load = -1
        self.destinations: list[str] = []  # configured (deliver:); none: no Sent column
        self.sent: dict[int, dict[str, str]] = {}  # document id -> destination -> state
        self._sent_due: set[int] = set()  # documents whose state changed, asked for soon

    def compose(self) -> ComposeResult:
        yield TitleBar("Documents")
        with Horizontal(id="filters"):
            yield Input(placeholder="search text, numbers", id="text")
            yield Select([], prompt="any company", id="company")
            yield Select(SOURCES, prompt="any source", id="source")
            yield Input(placeholder="since date", id="since")
        yield Static(id="doc-summary")
        table = DocTable(id="docs", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, width=width, key=key)
        yield table
        yield Static(id="doc-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#docs"))
        self._take_company_hint()
        self.reload()

    def on_screen_resume(self) -> None:
        self._update_companies()
        if self._take_company_hint() or self.model.documents != self._docs_at_load:
            self.reload()

    def _take_company_hint(self) -> bool:
        company = getattr(self.app, "documents_company", None)
        if company is None:
            return False
        self.app.documents_company = None  # type: ignore[attr-defined]
        self._update_companies(also=company)
        self.query_one("#company", Select).value = company
        return True

    def _update_companies(self, also: str | None = None) -> None:
        model = self.model
        names = set(model.company_docs or {}) | {x.company for x in model.portals.values()}
        if also:
            names.add(also)
        companies = sorted(names, key=str.casefold)
        if companies != self._companies:
            select = self.query_one("#company", Select)
            value = select.value
            select.set_options([(fmt.clip(c, 30), c) for c in companies])
            if value in companies:
                select.value = value
            self._companies = companies

    # -- the query -------------------------------------------------------------------------

    def current_query(self) -> tuple | None:
        """(text, company, source, since) from the filters; None while the date is not one."""
        text = self.query_one("#text", Input).value.strip() or None
        company = self.query_one("#company", Select)
        source = self.query_one("#source", Select)
        try:
            since = since_value(self.query_one("#since", Input).value)
        except ValueError:
            return None
        return (
            text,
            None if company.is_blank() else company.value,
            None if source.is_blank() else source.value,
            since,
        )

    def reload(self) -> None:
        """Load the first page for the current filters (again, when they did not change)."""
        query = self.current_query()
        if query is None:
            self.query_one("#doc-summary", Static).update(
                Text("since: a date like 2026-01-31", style="red")
            )
            return
        self.query_key = query
        self.shown_query = None  # whatever the table shows, the first page comes anew
        self._docs_at_load = self.model.documents
        self._new = 0
        self._fetch()

    def _fetch(self) -> None:
        """Ask for the wanted page, unless a request is on its way: its answer asks again.

        No timer between the keys and the query: the first key is answered at once, and keys
        typed while a query runs are folded into one query after it.
        """
        if self._busy:
            return
        self._busy = True
        if self.query_key != self.shown_query:
            self._load(self.query_key, 0, FIRST_PAGE, False)
        else:
            self._load(self.query_key, len(self.docs), MORE, True)

    def load_more(self) -> None:
        """Load the next page, when there is one and none is on its way."""
        if self._busy or self.query_key != self.shown_query or len(self.docs) >= self.total:
            return
        self._fetch()

    @work(group="documents", exit_on_error=False)
    async def _load(self, query: tuple, offset: int, limit: int, append: bool) -> None:
        """Ask the daemon for one page of documents."""
        client = self.app.client  # type: ignore[attr-defined]
        if client is None:
            self.post_message(Done("", ok=False))
            return
        search, company, source, since = query
        try:
            page = await client.documents(
                search=search,
                company=company,
                source=source,
                since=since,
                limit=limit,
                offset=offset,
            )
        except (link.ControlError, link.DaemonNotRunning) as e:
            self.post_message(Done(f"documents: {e}", ok=False))
            return
        await self._ask_states(client, [doc.id for doc in page.documents])
        self.post_message(DocumentsLoaded(page, query, append))

    async def _ask_states(self, client, ids: list[int]) -> None:
        try:
            states = await client.delivery_states(ids)
        except (link.ControlError, link.DaemonNotRunning):
            return  # the documents are shown without; a refresh asks again
        self.post_message(DeliveriesLoaded(states, ids))

    @work(group="sent", exit_on_error=False)
    async def _load_states(self, ids: list[int]) -> None:
        client = self.app.client  # type: ignore[attr-defined]
        if client is not None:
            await self._ask_states(client, ids)

    def on_deliveries_loaded(self, message: DeliveriesLoaded) -> None:
        self.destinations = message.states.destinations
        for doc_id in message.ids:
            self.sent[doc_id] = {}
        for item in message.states.items:
            self.sent.setdefault(item.document_id, {})[item.destination] = item.state
        table = self.query_one("#docs", DocTable)
        if self.destinations and "sent" not in table.columns:
            table.add_column("Sent", width=SENT_WIDTH, key="sent")
            message.ids = [doc.id for doc in self.docs]
        if "sent" in table.columns:
            wanted = set(message.ids)
            for i, doc in enumerate(self.docs):
                if doc.id in wanted and str(i) in table.rows:
                    table.update_cell(str(i), "sent", self._sent_cell(doc))
        self.refresh_bindings()

    def _sent_cell(self, doc: p.Document) -> Text:
        text, style = sent_summary(self.sent.get(doc.id, {}), SENT_WIDTH)
        return Text(printable(text), style)

    def on_documents_loaded(self, message: DocumentsLoaded) -> None:
        self._busy = False
        if message.query == self.query_key:
            self._show(message)
        if self.query_key != self.shown_query:
            self._fetch()  # the filters changed while this page was on its way

    def _show(self, message: DocumentsLoaded) -> None:
        table = self.query_one("#docs", DocTable)
        tz = self.model.tz
        if not message.append:
            table.clear()
            self.docs = []
        start = len(self.docs)
        self.docs.extend(message.page.documents)
        for i, doc in enumerate(message.page.documents, start):
            extra = (self._sent_cell(doc),) if "sent" in table.columns else ()
            table.add_row(*cells(doc, tz), *extra, key=str(i))
        self.total = message.page.total
        self.shown_query = message.query
        self._summarise()

    def on_done(self, message: Done) -> None:
        self._busy = False
        if message.text:
            self.notify(message.text, severity="error")

    def _summarise(self) -> None:
        text = self.shown_query[0] if self.shown_query else None
        line = Text(f"{self.total:,} documents" if self.total else "no document")
        if text:
            line.append(f" matching “{text}”")
        if self.total > len(self.docs):
            line.append(f" · {len(self.docs):,} loaded, more as you scroll", style="dim")
        if self._new:
            line.append(f" · {self._new} new: r refreshes", style="bold green")
        self.query_one("#doc-summary", Static).update(line)

    # -- events from the widgets -----------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        query = self.current_query()
        if query is None or query != self.query_key:
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.set_focus(self.query_one("#docs"))

    def on_select_changed(self, event: Select.Changed) -> None:
        self.reload()

    def on_doc_table_near_end(self, message: DocTable.NearEnd) -> None:
        self.load_more()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = event.cursor_row
        if 0 <= row < len(self.docs):
            path = printable(self._full_path(self.docs[row]))
            self.query_one("#doc-detail", Static).update(Text(path))
        if row >= len(self.docs) - 20:
            self.load_more()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        row = event.cursor_row
        if 0 <= row < len(self.docs):
            doc = self.docs[row]
            self.app.push_screen(DocumentScreen(doc, self._full_path(doc)))

    def on_daemon_event(self, message: DaemonEvent) -> None:
        if message.event.type == "document.added":
            self._new += 1
            if self.query_one("#docs", DocTable).cursor_row < 3:  # at the top: show it at once
                self.set_timer(0.3, self.reload, name="new-documents")
            self._summarise()
        elif message.event.type.startswith("delivery."):
            doc_id = message.event.data.get("document_id")
            if doc_id in self.sent:  # a document loaded here: its state is asked for soon
                self._sent_due.add(doc_id)
                self.set_timer(0.2, self._sent_changed, name="delivery-states")

    def _sent_changed(self) -> None:
        if self._sent_due:
            ids, self._sent_due = sorted(self._sent_due), set()
            self._load_states(ids)

    def on_model_changed(self, message: ModelChanged) -> None:
        if self.is_current:
            self._update_companies()

    def _full_path(self, doc: p.Document) -> str:
        archive = self.model.status.archive if self.model.status else ""
        return str(Path(archive) / doc.path)

    # -- actions ---------------------------------------------------------------------------

    def action_open(self) -> None:
        """Open the highlighted document's file with the desktop's opener."""
        row = self.query_one("#docs", DocTable).cursor_row
        if 0 <= row < len(self.docs):
            opener.open_from(self, self._full_path(self.docs[row]))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":  # shown when documents are delivered somewhere
            return bool(self.destinations)
        return super().check_action(action, parameters)

    def action_retry(self) -> None:
        """Try the highlighted document's failed deliveries again."""
        row = self.query_one("#docs", DocTable).cursor_row
        if 0 <= row < len(self.docs):
            doc_id = self.docs[row].id
            retry_deliveries(self, doc_id, lambda: self._load_states([doc_id]))

    def action_search(self) -> None:
        self.set_focus(self.query_one("#text", Input))

    def action_reload(self) -> None:
        self.reload()

    def action_leave_filter(self) -> None:
        self.set_focus(self.query_one("#docs"))
