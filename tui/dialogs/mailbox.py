"""The mailbox dialog (Enter on a mailbox row): how it goes, folder by folder.

Nothing is edited here: mailboxes live in the config (README, "Watching a mailbox").
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from gmid.control import protocol as p
from gmid.control.size import human_size
from tui import format as fmt
from tui.dialogs.common import close
from tui.messages import ModelChanged
from tui.model import Model

WIDE = 1000  # no cut: the dialog wraps what is long


def facts(box: p.MailboxInfo, model: Model) -> Table:
    """The mailbox's details as label / value lines."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    grid.add_row("Account", fmt.account(box))
    trouble = box.state in ("failing", "blind")
    reason = fmt.mailbox_reason(box) if trouble else None
    if box.state == "failing":
        reason = f"failing: {reason}"
    grid.add_row("State", fmt.imap_state(box.state, reason, WIDE))
    if box.error and not trouble:  # what to know of a mailbox that works (mails left flagged)
        grid.add_row("Note", Text(box.error, style="yellow"))
    grid.add_row("Last sync", fmt.long_time(box.last_sync, model.tz) if box.last_sync else "never")
    grid.add_row("Mails", f"{box.messages:,} seen, {box.documents:,} documents filed")
    received = human_size(box.bytes)
    grid.add_row("Since start", f"{box.bodies:,} mails downloaded, {received} received")
    return grid


def folders(box: p.MailboxInfo) -> Table:
    """One line per folder: its state (a failing one with the server's words) and its bytes."""
    table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
    table.add_column("Folder", style="bold", no_wrap=True)
    table.add_column("State", ratio=1)
    table.add_column("Received", justify="right", no_wrap=True)
    for folder in box.folders:
        reason = f"failing: {folder.error}" if folder.state == "failing" else folder.error
        table.add_row(
            folder.folder,
            fmt.imap_state(folder.state or "?", reason, WIDE),
            human_size(folder.bytes),
        )
    return table


class MailboxDialog(ModalScreen[None]):
    """One watched mailbox and its folders, kept live."""

    BINDINGS = [Binding("escape", "close", "Close")]  # noqa: RUF012

    def __init__(self, name: str):
        super().__init__()
        self.mailbox = name

    @property
    def model(self) -> Model:
        return self.app.model  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Mailbox {self.mailbox}", classes="dialog-title")
            yield Static(id="facts")
            yield Static(id="folders")
            yield Static(
                Text("Esc close · mailboxes are changed in the config, then `gmid reload`"),
                classes="hint",
            )

    def on_mount(self) -> None:
        self.show_model()

    def on_model_changed(self, message: ModelChanged) -> None:
        self.show_model()

    def show_model(self) -> None:
        box = self.model.mailboxes.get(self.mailbox)
        if box is None:
            if self.model.connected:  # gone with a reload
                close(self)
            return
        self.query_one("#facts", Static).update(facts(box, self.model))
        self.query_one("#folders", Static).update(folders(box))

    def action_close(self) -> None:
        close(self)
