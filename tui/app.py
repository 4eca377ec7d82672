"""The Textual dashboard (`gmid-tui`); it talks to the daemon only through gmid.control."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer

from gmid.control import protocol as p
from tui import link
from tui.dialogs.common import close
from tui.dialogs.prompt import CodePrompt
from tui.messages import (
    Connected,
    Counted,
    DaemonDown,
    DaemonEvent,
    ModelChanged,
    StatusLoaded,
)
from tui.model import Model
from tui.options import OptionError, parser, socket_path
from tui.screens.documents import DocumentsScreen
from tui.screens.down import DownScreen
from tui.screens.home import HomeScreen
from tui.screens.log import LogScreen
from tui.screens.schedule import ScheduleScreen

STATUS_EVERY = 30.0  # a slow fallback: the event stream keeps the screens current


class GmidApp(App):
    """The gmid dashboard: companies and portals, their codes, documents, schedule and log."""

    CSS_PATH = "app.tcss"
    TITLE = "gmid"
    MODES = {  # noqa: RUF012 (Textual reads it as a class attribute)
        "home": HomeScreen,
        "documents": DocumentsScreen,
        "schedule": ScheduleScreen,
        "log": LogScreen,
    }
    DEFAULT_MODE = "home"
    BINDINGS = [Binding("q", "quit", "Quit")]  # noqa: RUF012

    def __init__(
        self,
        socket: Path,
        *,
        config: Path | None = None,
        connect: bool = True,
        retry: float = 2.0,
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__()
        self.socket = Path(socket)
        self.config = config  # the -c file, named where the TUI says how to start the daemon
        self.model = Model()
        self.client = None
        self._connect = connect
        self._retry = retry
        self._clock = clock
        self._prompt: CodePrompt | None = None
        self._later: set[str] = set()  # challenges the user put off with Escape
        self._answered_here: set[str] = set()
        self._render_pending = False
        self._refresh_timer: Timer | None = None
        self.documents_company: str | None = None  # a filter for the documents page to take

    def now(self) -> datetime:
        """The current time (fixed in snapshot tests)."""
        return self._clock() if self._clock else datetime.now(UTC)

    def on_mount(self) -> None:
        if self._connect:
            self.follow()
        self.set_interval(STATUS_EVERY, self.refresh_status)

    # -- workers: I/O only, they post messages -------------------------------------------------

    @work(group="link", exclusive=True, exit_on_error=False)
    async def follow(self) -> None:
        """Stay connected to the daemon, reconnecting when it comes back."""
        await link.follow(self.socket, self.post_message, retry=self._retry)

    @work(group="status", exclusive=True, exit_on_error=False)
    async def refresh_status(self) -> None:
        """Ask for a fresh status (next runs change after each run and each reload)."""
        client = self.client
        if client is None:
            return
        with contextlib.suppress(link.DaemonNotRunning, link.ControlError):
            self.post_message(StatusLoaded(await client.status()))

    @work(group="count", exclusive=True, exit_on_error=False)
    async def count_documents(self) -> None:
        """Count the documents per company and portal, once per connection."""
        client = self.client
        if client is None:
            return
        with contextlib.suppress(link.DaemonNotRunning, link.ControlError):
            self.post_message(Counted(await link.scan(client)))

    # -- message handlers: they change the model and the widgets -------------------------------

    def on_connected(self, message: Connected) -> None:
        self.client = message.client
        self.model.connected = True
        self.model.load_status(message.status)
        if isinstance(self.screen, DownScreen):
            self.pop_screen()
            self.notify("connected to the daemon again")
        self.model.start_counting()
        self.count_documents()
        self._changed()
        self._next_prompt()

    def on_daemon_down(self, message: DaemonDown) -> None:
        was_up = self.model.connected
        self.client = None
        self.model.disconnect(message.socket, message.reason)
        if self._prompt is not None:
            close(self._prompt, "gone")
        if isinstance(self.screen, DownScreen):
            self.screen.post_message(ModelChanged())
        else:
            self.push_screen(DownScreen())
        if was_up:
            self._changed()

    def on_status_loaded(self, message: StatusLoaded) -> None:
        self.model.load_status(message.status)
        self._changed()
        self._next_prompt()

    def on_counted(self, message: Counted) -> None:
        self.model.load_counts(message.seen)
        self._changed()

    def on_daemon_event(self, message: DaemonEvent) -> None:
        event = message.event
        if self.model.apply(event):
            self._refresh_soon()
        for screen in self.screen_stack:
            screen.post_message(DaemonEvent(event))
        if event.type == "challenge.pending":
            self._next_prompt()
        elif event.type in ("challenge.answered", "challenge.expired"):
            self._challenge_gone(event)
        self._changed()

    def _challenge_gone(self, event: p.Event) -> None:
        id_ = event.data.get("id", "")
        prompt = self._prompt
        if prompt is not None and prompt.pending.info.id == id_:
            if not prompt.submitted and id_ not in self._answered_here:
                portal = event.data.get("portal", "")
                why = "expired" if event.type == "challenge.expired" else "was answered elsewhere"
                self.notify(f"{portal}: the {event.data.get('kind', 'code')} {why}")
            close(prompt, "gone")
        self._answered_here.discard(id_)
        self._later.discard(id_)

    def _changed(self) -> None:
        """Let the screens re-render, at most once per refresh of the terminal."""
        if not self._render_pending:
            self._render_pending = True
            self.call_after_refresh(self._broadcast)

    def _broadcast(self) -> None:
        self._render_pending = False
        for screen in self.screen_stack:
            screen.post_message(ModelChanged())

    def _refresh_soon(self) -> None:
        """One status request after a burst of events, not one per event."""
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
        self._refresh_timer = self.set_timer(0.3, self.refresh_status, name="refresh-status")

    # -- the code prompt: one at a time, the next after --------------------------------------

    def _next_prompt(self) -> None:
        if self._prompt is not None or not self.model.connected:
            return
        for id_, pending in self.model.challenges.items():
            if id_ not in self._later:
                self._prompt = CodePrompt(pending)
                self.push_screen(self._prompt, self._prompt_closed)
                return

    def _prompt_closed(self, result: str | None) -> None:
        prompt, self._prompt = self._prompt, None
        if prompt is not None:
            if result == "later":
                self._later.add(prompt.pending.info.id)
            elif result == "answered":
                self._answered_here.add(prompt.pending.info.id)
        self._next_prompt()

    def action_codes(self, portal: str | None = None) -> None:
        """Open the code prompt again for challenges put off with Escape."""
        waiting = [
            c for c in self.model.challenges.values() if portal is None or c.info.portal == portal
        ]
        if not waiting:
            self.notify("no portal is waiting for a code")
            return
        for pending in waiting:
            self._later.discard(pending.info.id)
        if self._prompt is None:
            self._next_prompt()

    def show_documents(self, company: str | None = None) -> None:
        """Go to the documents page, filtered to one company."""
        self.documents_company = company
        self.switch_mode("documents")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `gmid-tui` (and `gmid tui`)."""
    args = parser().parse_args(argv)
    try:
        socket = socket_path(args)
    except OptionError as e:
        print(f"gmid-tui: {e}", file=sys.stderr)
        return 2
    # textual-image asks the terminal what it can show when imported: before the app starts.
    with contextlib.suppress(ImportError):
        import textual_image.widget  # noqa: F401
    config = Path(args.config).expanduser() if args.config else None
    GmidApp(socket, config=config).run()
    return 0
