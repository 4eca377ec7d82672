"""One document, over the documents page: its fields and where each came from, the e-invoice
check, every way it came, its path, where it was delivered (each destination of `deliver:` with
its state and the destination's words), and its e-invoice rendered as text (by the daemon).
`t` tries its failed deliveries again.

Everything shown is the sender's text: it goes into Text objects, never through Rich markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from gmid.control import protocol as p
from tui import format as fmt
from tui import link, opener
from tui.messages import DaemonEvent
from tui.model import DELIVERY_STATES, FIELD_LABELS, ORIGINS, printable
from tui.screens.page import TitleBar


@dataclass
class DetailsLoaded(Message):
    """`documents.show` answered for the document on screen."""

    details: p.DocumentDetails


@dataclass
class EInvoiceLoaded(Message):
    """The document's e-invoice as text, or why there is none to show."""

    text: str | None
    why_not: str = ""


@dataclass
class DeliveriesLoaded(Message):
    """The document's rows of the outbox, with the configured destinations."""

    page: p.OutboxPage


@dataclass
class LoadFailed(Message):
    """The daemon could not answer for the document (gone, or the daemon is down)."""

    text: str


class DocumentScreen(Screen):
    """A document's detail view; Escape goes back to the list."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Back"),
        Binding("o", "open", "Open file"),
        Binding("t", "retry", "Retry delivery"),
    ]

    def __init__(self, doc: p.Document, path: str) -> None:
        super().__init__()
        self.doc = doc
        self.path = path  # until the daemon says where the file is
        self.details: p.DocumentDetails | None = None
        self.einvoice: str | None = None
        self.deliveries: p.OutboxPage | None = None

    def compose(self) -> ComposeResult:
        yield TitleBar("Document")
        with VerticalScroll(id="doc-view"):
            yield Static(Text(self._heading()), id="doc-head")
            yield Static(Text("loading…", "dim"), id="doc-fields")
            yield Static(id="doc-check")
            yield Static(id="doc-sources")
            yield Static(Text(self.path), id="doc-path")
            deliveries = Static(id="doc-deliveries")
            deliveries.display = False  # until destinations are known to be configured
            yield deliveries
            yield Static(id="doc-einvoice")
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#doc-view"))
        self.load()

    def _heading(self) -> str:
        doc = self.doc
        kind = (doc.kind or "document").replace("_", " ").capitalize()
        parts = [f"{kind} {doc.number}" if doc.number else kind, doc.company]
        if doc.amount:
            parts.append(f"{doc.amount} {doc.currency or ''}".strip())
        if doc.date:
            parts.append(doc.date)
        return printable(" · ".join(parts))

    @work(group="document", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Ask the daemon for the document's details, then for its e-invoice as text."""
        client = self.app.client  # type: ignore[attr-defined]
        if client is None:
            self.post_message(LoadFailed("not connected to the daemon"))
            return
        try:
            self.post_message(DetailsLoaded(await client.document(self.doc.id)))
        except (link.ControlError, link.DaemonNotRunning) as e:
            self.post_message(LoadFailed(str(e)))
            return
        await self._load_deliveries(client)
        width = max(40, self.size.width - 4)
        try:
            rendering = await client.render_document(self.doc.id, "text", width)
        except link.ControlError as e:
            self.post_message(EInvoiceLoaded(None, str(e)))
        except link.DaemonNotRunning as e:
            self.post_message(EInvoiceLoaded(None, str(e)))
        else:
            self.post_message(EInvoiceLoaded(rendering.content))

    async def _load_deliveries(self, client) -> None:
        try:
            page = await client.outbox(document_id=self.doc.id, states=list(DELIVERY_STATES))
        except (link.ControlError, link.DaemonNotRunning):
            return  # the details say what matters; the next event or refresh tries again
        self.post_message(DeliveriesLoaded(page))

    @work(group="deliveries", exclusive=True, exit_on_error=False)
    async def reload_deliveries(self) -> None:
        """Ask again where the document was delivered (after an event of the daemon)."""
        client = self.app.client  # type: ignore[attr-defined]
        if client is not None:
            await self._load_deliveries(client)

    def on_deliveries_loaded(self, message: DeliveriesLoaded) -> None:
        self.deliveries = message.page
        shown = self.query_one("#doc-deliveries", Static)
        shown.update(deliveries_text(message.page, self.app))
        shown.display = bool(message.page.destinations)
        self.refresh_bindings()

    def on_daemon_event(self, message: DaemonEvent) -> None:
        event = message.event
        if event.type.startswith("delivery.") and event.data.get("document_id") == self.doc.id:
            self.reload_deliveries()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":  # shown where the document has somewhere to go
            return bool(self.deliveries and self.deliveries.items)
        return super().check_action(action, parameters)

    def action_retry(self) -> None:
        retry_deliveries(self, self.doc.id, self.reload_deliveries)

    def on_details_loaded(self, message: DetailsLoaded) -> None:
        details = self.details = message.details
        self.doc = details.document
        self.path = details.path
        self.query_one("#doc-head", Static).update(Text(self._heading(), "bold"))
        self.query_one("#doc-fields", Static).update(fields_table(details))
        self.query_one("#doc-check", Static).update(check_text(details))
        self.query_one("#doc-sources", Static).update(sources_text(details, self.app))
        path = Text("File: ", "bold").append(printable(details.path), "")
        if details.xml_path:
            path.append("\nE-invoice XML: ", "bold").append(printable(details.xml_path), "")
        self.query_one("#doc-path", Static).update(path)

    def on_einvoice_loaded(self, message: EInvoiceLoaded) -> None:
        self.einvoice = message.text
        shown = Text(message.text) if message.text else Text(message.why_not, "dim")
        self.query_one("#doc-einvoice", Static).update(shown)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.query_one("#doc-fields", Static).update(Text(message.text, "red"))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open(self) -> None:
        opener.open_from(self, self.path)


def fields_table(details: p.DocumentDetails) -> Table:
    """Each field, its value and where it came from."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("Field", no_wrap=True)
    table.add_column("Value", overflow="fold")
    table.add_column("From", style="dim", no_wrap=True)
    known = details.fields
    for name in [*FIELD_LABELS, *sorted(set(known) - set(FIELD_LABELS))]:
        if name in known:
            field = known[name]
            origin = field.get("from", "")
            table.add_row(
                Text(FIELD_LABELS.get(name, name)),
                Text(printable(field.get("value", ""))),
                Text(ORIGINS.get(origin, origin)),
            )
    return table


def check_text(details: p.DocumentDetails) -> Text:
    """What the e-invoice check found."""
    check = details.check
    text = Text("Check: ", "bold")
    if check is None:
        not_read = not details.document.read_version
        return text.append("not read yet" if not_read else "none (no e-invoice XML)", "dim")
    if check.ok:
        return text.append("passed every check (schema, sums, required fields)", "green")
    text.append(f"{len(check.problems)} problem(s)", "red")
    for problem in check.problems:
        text.append(f"\n  - {printable(problem)}")
    return text


def sources_text(details: p.DocumentDetails, app) -> Text:
    """Every way the document came, when and under which name."""
    tz = app.model.tz
    text = Text(f"Sources ({len(details.sources)}):", "bold")
    for source in details.sources:
        when = fmt.long_time(source.received_at, tz)
        line = f"\n  {when}  {source.source}"
        if source.source_name != source.source:
            line += f" {source.source_name}"
        if source.original_name:
            line += f"  as {source.original_name!r}"
        if source.ref:
            line += f"  ref {source.ref}"
        text.append(printable(line), "")
    return text


def retry_deliveries(screen: Screen, doc_id: int, then: Callable[[], object]) -> None:
    """Ask the daemon to try the document's failed deliveries again now; say what it did, and
    call `then` (to show the states anew: on their way, until the daemon tells how it ended)."""

    async def retry() -> None:
        client = screen.app.client  # type: ignore[attr-defined]
        if client is None:
            screen.notify("not connected to the daemon", severity="error")
            return
        try:
            queued = await client.retry_deliveries(document_id=doc_id)
        except (link.ControlError, link.DaemonNotRunning) as e:
            screen.notify(f"retry: {e}", severity="error")
            return
        if queued.queued:
            screen.notify(f"trying {queued.queued} delivery(ies) of the document again")
            then()
        else:
            screen.notify("nothing to retry: no delivery of this document failed")

    screen.run_worker(retry(), group="retry", exit_on_error=False)


def deliveries_text(page: p.OutboxPage, app) -> Text:
    """Each configured destination: the document's state there, its attempts, where it is now
    or why it failed, in the destination's words."""
    if not page.destinations:
        return Text()
    tz = app.model.tz
    rows = {item.destination: item for item in page.items}
    text = Text("Delivery:", "bold")
    for destination in page.destinations:
        item = rows.get(destination.name)
        text.append(f"\n  {printable(destination.name)} ({destination.type}): ", "")
        if item is None:
            text.append("not for this document (its when: does not match)", "dim")
            continue
        said, style = DELIVERY_STATES.get(item.state, (item.state, ""))
        if item.state == "pending" and item.error:
            said, style = "failed, tried again", "yellow"
        text.append(said, style)
        text.append(f", {item.attempts} attempt(s)", "")
        if item.state == "pending" and item.next_try:
            text.append(f", next {fmt.long_time(item.next_try, tz)}", "dim")
        if item.state == "done" and item.reference:
            text.append("\n    " + printable(item.reference), "")
        if item.state != "done" and item.error:
            text.append("\n    " + printable(item.error), "red" if item.state == "failed" else "")
    return text
