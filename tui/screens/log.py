"""The log page: the daemon's recent events, then the live ones as they come."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, RichLog

from gmid.control import protocol as p
from tui import format as fmt
from tui import link
from tui.messages import DaemonEvent, Done, RecentLoaded
from tui.screens.page import Page, TitleBar


def _key(event: p.Event) -> tuple:
    return (event.time, event.type, repr(sorted(event.data.items())))


def merged(recent: list[p.Event], live: list[p.Event]) -> list[p.Event]:
    """The daemon's recent events and those this TUI received, once each, oldest first."""
    seen: dict[tuple, p.Event] = {}
    for event in [*recent, *live]:
        seen.setdefault(_key(event), event)
    return sorted(seen.values(), key=lambda e: e.time)


class LogScreen(Page):
    """What the daemon has been doing."""

    MODE = "log"
    BINDINGS = [Binding("r", "reload", "Refresh")]  # noqa: RUF012

    def __init__(self) -> None:
        super().__init__()
        self.recent: list[p.Event] = []
        self._empty = True

    def compose(self) -> ComposeResult:
        yield TitleBar("Log")
        yield RichLog(id="log", max_lines=2000, wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#log"))
        self.show_model()
        self.load()

    def on_screen_resume(self) -> None:
        self.show_model()

    def action_reload(self) -> None:
        self.load()

    @work(group="log", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Ask the daemon for its recent events (a daemon may not keep them yet)."""
        client = self.app.client  # type: ignore[attr-defined]
        if client is None:
            return
        try:
            events = await link.optional(client, "recent_events", "recent events", limit=200)
        except link.Unsupported as e:
            self.post_message(Done(f"{e}: only the events from now on are shown", ok=False))
            return
        except (link.ControlError, link.DaemonNotRunning) as e:
            self.post_message(Done(f"log: {e}", ok=False))
            return
        self.post_message(RecentLoaded(events))

    def on_recent_loaded(self, message: RecentLoaded) -> None:
        self.recent = message.events
        self.show_model()

    def on_done(self, message: Done) -> None:
        self.notify(message.text, severity="warning")

    def show_model(self) -> None:
        log = self.query_one("#log", RichLog)
        log.clear()
        tz = self.model.tz
        events = merged(self.recent, list(self.model.log))
        for event in events:
            log.write(fmt.event_line(event, tz))
        self._empty = not events
        if self._empty:
            log.write("no events yet: they appear here as the daemon works")

    def on_daemon_event(self, message: DaemonEvent) -> None:
        if self._empty:
            self.show_model()  # replaces the "no events yet" line
        else:
            self.query_one("#log", RichLog).write(fmt.event_line(message.event, self.model.tz))
