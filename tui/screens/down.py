"""The screen shown while no daemon answers: what is wrong and how to start it."""

from __future__ import annotations

import shlex

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.messages import ModelChanged
from tui.screens.page import TitleBar


class DownScreen(Screen):
    """No daemon on the socket; the app keeps trying every 2 s and leaves this screen by itself."""

    def compose(self) -> ComposeResult:
        yield TitleBar("not connected")
        with Center(), Vertical(id="down"):
            yield Static("The gmid daemon is not running", id="down-title")
            yield Static(id="down-text")
        yield Footer()

    def on_mount(self) -> None:
        self.show_model()

    def on_model_changed(self, message: ModelChanged) -> None:
        self.show_model()

    def show_model(self) -> None:
        model = self.app.model  # type: ignore[attr-defined]
        socket = model.socket or str(self.app.socket)  # type: ignore[attr-defined]
        # The usual reason says what the first line says; others (permission denied...) do not.
        reason = "" if "no gmid daemon is listening" in model.down_reason else model.down_reason
        config = self.app.config  # type: ignore[attr-defined]
        start = f"gmid daemon -c {shlex.quote(str(config))}" if config else "gmid daemon"
        self.query_one("#down-text", Static).update(
            Text.assemble(
                "Nothing answers on ",
                (socket, "bold"),
                ".\n",
                (reason, "dim"),
                "\n\nStart it in a terminal:\n  ",
                (start, "bold"),
                "\nor as a service:\n  ",
                ("systemctl --user start gmid", "bold"),
                "\n\nThis screen goes away by itself when the daemon answers (tried every 2 s).",
            )
        )
