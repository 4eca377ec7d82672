"""What the four pages (home, documents, schedule, log) share: their keys and the summary line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from tui.messages import ModelChanged

if TYPE_CHECKING:
    from tui.model import Model


class TitleBar(Static):
    """The top line, "gmid — what this page is" (Textual's Header, less its clock)."""

    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        width: 100%;
        height: 1;
        content-align: center middle;
        background: $panel;
        text-style: bold;
    }
    """

    def __init__(self, title: str):
        super().__init__(f"gmid — {title}", markup=False)


class Page(Screen):
    """A page of the app, reached with a single key from any other page."""

    MODE = ""
    BINDINGS = [  # noqa: RUF012
        Binding("h", "goto('home')", "Home"),
        Binding("d", "goto('documents')", "Docs"),
        Binding("s", "goto('schedule')", "Schedule"),
        Binding("l", "goto('log')", "Log"),
        Binding("c", "codes", "Codes"),
    ]

    @property
    def model(self) -> Model:
        return self.app.model  # type: ignore[attr-defined]

    def action_goto(self, mode: str) -> None:
        self.app.switch_mode(mode)

    def action_codes(self) -> None:
        self.app.action_codes()  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "goto":
            return parameters[0] != self.MODE
        if action == "codes":
            return bool(self.model.challenges)
        return True

    def on_model_changed(self, message: ModelChanged) -> None:
        self.refresh_bindings()

    def summary(self) -> Text:
        """One line: connected or not, documents, codes waiting."""
        model = self.model
        line = Text()
        if not model.connected:
            return line.append("● not connected", style="red")
        line.append("● ", style="green")
        status = model.status
        if status is not None:
            line.append(f"gmid {status.version} · ", style="dim")
        portals = len(model.portals)
        line.append(
            f"{model.documents:,} documents · {portals} portal{'s' if portals != 1 else ''}"
        )
        if status is not None and status.archive_failures:
            line.append(" · ")
            line.append(
                f"archive FAILING: {status.archive_failures} mail(s) kept in the quarantine",
                style="bold red",
            )
        waiting = len(model.challenges)
        if waiting:
            line.append(" · ")
            line.append(
                f"{waiting} code{'s' if waiting != 1 else ''} waiting (c)", style="bold yellow"
            )
        return line
