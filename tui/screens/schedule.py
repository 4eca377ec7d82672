"""The schedule page: the coming week's runs and quiet periods, as one bar per day."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from gmid.control import protocol as p
from tui import format as fmt
from tui import link
from tui.messages import Done, ScheduleLoaded
from tui.screens.page import Page, TitleBar

DAYS = 7
SLOTS = 48  # half hours per day on the bar
LABEL = 11  # "Tue 03 Mar "


def _zone(name: str, default: tzinfo) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def timeline(plan: p.SchedulePreview, now: datetime, tz: tzinfo, days: int = DAYS) -> Text:
    """The plan as text: a ruler, then per day a bar (━ allowed, ░ quiet, ● run, · past) and
    its runs."""
    tz = _zone(plan.timezone, tz)
    runs = sorted(
        (when.astimezone(tz), r.portal, r.reason)
        for r in plan.runs
        if (when := fmt.parse_time(r.at)) is not None
    )
    quiet = [
        (start.astimezone(tz), end.astimezone(tz), q.why)
        for q in plan.quiet
        if (start := fmt.parse_time(q.start)) and (end := fmt.parse_time(q.end))
    ]
    out = Text()
    out.append(f"Times in {plan.timezone or 'UTC'}.  ", style="dim")
    out.append("━ allowed  ", style="green")
    out.append("░ quiet  ", style="dim")
    out.append("● run  ", style="bold yellow")
    out.append("· past\n", style="dim")
    ruler = "".join(f"{h:<6}" for h in range(0, 24, 3))
    out.append(" " * LABEL + ruler + "24\n", style="dim")
    first = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(days + 1):
        day = first + timedelta(days=d)
        day = day.replace(tzinfo=None).replace(tzinfo=tz)  # midnight, also across DST
        end = (day + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=tz)
        todays = [r for r in runs if day <= r[0] < end]
        quiet_starts = [q for q in quiet if day <= q[0] < end]
        if d == days and not todays:
            break
        out.append(day.strftime("%a %d %b").ljust(LABEL), style="bold")
        out.append_text(_bar(day, quiet, todays, now))
        out.append(f"  {len(todays)} run{'s' if len(todays) != 1 else ''}\n" if todays else "\n")
        entries = [
            (when, Text(f"   {when:%H:%M}  {fmt.clip(name, 20):<20}  {why}"))
            for when, name, why in todays
        ]
        for start, stop, why in quiet_starts:
            until = stop.strftime("%H:%M" if stop.date() == start.date() else "%a %H:%M")
            entries.append((start, Text(f"   {start:%H:%M}  quiet until {until} ({why})", "dim")))
        for _, line in sorted(entries, key=lambda e: e[0]):
            out.append_text(line)
            out.append("\n")
    if not runs:
        out.append("\nNo scheduled runs: disabled portals run only when started by hand.\n")
    return out


def _bar(day: datetime, quiet: list, runs: list, now: datetime) -> Text:
    bar = Text()
    for slot in range(SLOTS):
        start = day + timedelta(minutes=30 * slot)
        middle = start + timedelta(minutes=15)
        if start + timedelta(minutes=30) <= now:  # the plan starts now: what was is neither
            bar.append("·", style="dim")
        elif any(start <= r[0] < start + timedelta(minutes=30) for r in runs):
            bar.append("●", style="bold yellow")
        elif any(q0 <= middle < q1 for q0, q1, _ in quiet):
            bar.append("░", style="dim")
        else:
            bar.append("━", style="green")
    return bar


class ScheduleScreen(Page):
    """When portals will be fetched in the coming week, and when never."""

    MODE = "schedule"
    BINDINGS = [Binding("r", "reload", "Refresh")]  # noqa: RUF012

    def __init__(self) -> None:
        super().__init__()
        self.plan: p.SchedulePreview | None = None

    def compose(self) -> ComposeResult:
        yield TitleBar("Schedule: the coming week")
        with VerticalScroll(id="timeline-scroll"):
            yield Static("loading…", id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#timeline-scroll"))
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    @work(group="schedule", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Ask the daemon for the coming week's plan."""
        client = self.app.client  # type: ignore[attr-defined]
        if client is None:
            return
        try:
            plan = await client.schedule(DAYS)
        except (link.ControlError, link.DaemonNotRunning) as e:
            self.post_message(Done(f"schedule: {e}", ok=False))
            return
        self.post_message(ScheduleLoaded(plan))

    def on_schedule_loaded(self, message: ScheduleLoaded) -> None:
        self.plan = message.plan
        now = self.app.now()  # type: ignore[attr-defined]
        self.query_one("#timeline", Static).update(timeline(message.plan, now, self.model.tz))

    def on_done(self, message: Done) -> None:
        self.notify(message.text, severity="error")
