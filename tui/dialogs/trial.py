"""The portal dialog's "Try": the portal's description tried step by step (`portal.try`).

The trial runs in the daemon; a code the portal asks for meanwhile comes up in the app's code
prompt as in a run. The screen shows the trace when the trial has ended, the same lines as
`gmid try NAME`: each request, what each selector or path matched, the rows, and at the first
problem the option to change. Nothing is recorded, nothing downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from gmid.control import protocol as p
from gmid.control.trytext import report_lines
from tui import link
from tui.dialogs.common import close
from tui.messages import DaemonEvent

WAITING = "Trying the login and the list, step by step; nothing is recorded…"


@dataclass
class Tried(Message):
    """A trial has ended: its report, or why there is none."""

    report: p.TryReport | None
    error: str | None = None


class TryScreen(ModalScreen[None]):
    """A trial of one portal's description, and its trace once it has ended."""

    BINDINGS = [Binding("escape", "close", "Close")]  # noqa: RUF012

    def __init__(self, name: str):
        super().__init__()
        self.portal = name
        self.lines: list[str] = []  # the trace shown, as `gmid try` prints it

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide trial"):
            yield Label(f"Try {self.portal}", classes="dialog-title")
            with VerticalScroll(id="trace-box"):
                yield Static(WAITING, id="trace")
            yield Static("↑↓ scroll · Esc close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#trace-box").focus()
        self._try()

    @work(group="portal-try", exit_on_error=False)
    async def _try(self) -> None:
        """Ask the daemon for the trial and post its report."""
        client = self.app.client  # type: ignore[attr-defined]
        try:
            report = await link.optional(client, "try_portal", "trying a portal", self.portal)
        except link.Unsupported as e:
            self.post_message(Tried(None, str(e)))
        except link.ControlError as e:
            self.post_message(Tried(None, link.explain(e)))
        except link.DaemonNotRunning as e:
            self.post_message(Tried(None, str(e)))
        else:
            self.post_message(Tried(report))

    def on_daemon_event(self, message: DaemonEvent) -> None:
        """Say what the trial is doing until its trace comes."""
        data = message.event.data
        if (
            not self.lines
            and message.event.type == "portal.progress"
            and data.get("trial")
            and data.get("portal") == self.portal
        ):
            self.query_one("#trace", Static).update(f"{WAITING}\n  {data.get('progress', '')}")

    def on_tried(self, message: Tried) -> None:
        if message.report is None:
            self.lines = [f"{self.portal}: {message.error}"]
        else:
            self.lines = report_lines(message.report)
        self.query_one("#trace", Static).update(Text("\n".join(self.lines)))

    def action_close(self) -> None:
        close(self)
