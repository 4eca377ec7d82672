"""The scheduler: fetches portals when their rules say, never in quiet hours.

Built on the `schedule` library: one schedule.Job per portal, run by Scheduler.run_pending()
from a task on the daemon's event loop. What the library cannot express (windows, quiet
hours, date ranges, jitter, DST, retries after a failed run) comes from gmid.schedule.planner: each
job's next run is the planner's answer, recomputed whenever that portal's run ends or the
config is reloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import schedule

from gmid.errors import NotFound
from gmid.events import EventBus
from gmid.portals.runner import PortalRunner
from gmid.schedule.planner import Planned, next_run, preview
from gmid.schedule.timerules import calendar_for

logger = logging.getLogger(__name__)

MAX_SLEEP = 60.0  # wake at least this often: the wall clock may jump (suspend, NTP)
NEVER = dt.datetime.max


class PortalJob(schedule.Job):
    """A schedule job whose next run is set from the planner, in aware time."""

    def __init__(self, scheduler: schedule.Scheduler, portal: str, plan: Callable[[str], Planned]):
        super().__init__(interval=1, scheduler=scheduler)
        self.portal = portal
        self._plan = plan
        self.planned: Planned | None = None
        self.due_ts = math.inf

    def _schedule_next_run(self) -> None:
        # Called by schedule after do() and after each run: ask the planner instead.
        self.replan()

    def replan(self) -> None:
        """Set the next run from the planner (after a run, or when the portal's rules change)."""
        self.planned = self._plan(self.portal)
        at = self.planned.at
        self.due_ts = at.timestamp() if at else math.inf
        # schedule compares naive local times; keep them for its idle_seconds and ordering.
        self.next_run = at.astimezone().replace(tzinfo=None) if at else NEVER

    @property
    def should_run(self) -> bool:
        # A timestamp, not the naive local time: that one is ambiguous in the hour the clocks
        # go back. And cheap: run_pending asks every job on every tick.
        return time.time() >= self.due_ts

    def __repr__(self) -> str:
        return f"PortalJob({self.portal}, {self.planned})"


class PortalScheduler:
    """A component: starts scheduled portal runs and explains the plan."""

    def __init__(self, runner: PortalRunner, events: EventBus, *, now=None):
        self.runner = runner
        self.events = events
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._schedule = schedule.Scheduler()
        self._jobs: dict[str, PortalJob] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._subscription = None

    async def start(self) -> None:
        """Plan every portal and start the loop."""
        self.replan()
        self._subscription = self.events.subscribe()
        self._task = asyncio.create_task(self._loop(), name="gmid-scheduler")

    async def stop(self) -> None:
        """Stop the loop (runs under way are the runner's to stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._subscription is not None:
            self.events.unsubscribe(self._subscription)

    def replan(self) -> None:
        """Recompute every portal's next run (at start and after a config reload)."""
        self._schedule.clear()
        self._jobs = {}
        for portal in self.runner.config.portals:
            job = PortalJob(self._schedule, portal.name, self.plan)
            job.do(self._start, portal.name)
            self._jobs[portal.name] = job
        self._wake.set()

    def plan(self, name: str) -> Planned:
        """When a portal runs next, and why."""
        portal = self.runner.portal(name)
        if self.runner.running(name):
            return Planned(at=None, due=None, reason="running now")
        calendar = calendar_for(portal.rules, self.runner.config.tz)
        return next_run(
            portal.name,
            portal.rules,
            calendar,
            now=self._now(),
            last=self.runner.last_run(portal.name),
            enabled=portal.enabled,
        )

    def planned(self, name: str) -> Planned | None:
        """The current plan of a portal, as its job holds it."""
        job = self._jobs.get(name)
        return job.planned if job else None

    def preview(self, days: int) -> dict[str, Any]:
        """The runs of the coming days and the quiet periods, as `gmid schedule` shows them."""
        config = self.runner.config
        now = self._now()
        portals = [
            (p.name, p.rules, self.runner.last_run(p.name), p.enabled) for p in config.portals
        ]
        runs = preview(portals, config.tz, now=now, days=days)
        end = now + dt.timedelta(days=days)
        quiet = calendar_for(config.schedule, config.tz).quiet_periods(now, end)
        return {
            "timezone": config.timezone,
            "runs": [{"at": at.isoformat(), "portal": p, "reason": r} for at, p, r in runs],
            "quiet": [
                {"start": s.isoformat(), "end": e.isoformat(), "why": w} for s, e, w in quiet
            ],
        }

    def _start(self, name: str) -> None:
        planned = self.planned(name)
        logger.info("scheduled run of %s (%s)", name, planned.reason if planned else "")
        try:
            self.runner.fetch(name, manual=False)
        except NotFound:
            logger.warning("portal %s is gone from the config; not started", name)

    async def _loop(self) -> None:
        assert self._subscription is not None
        events = asyncio.ensure_future(self._subscription.get())
        try:
            while True:
                self._schedule.run_pending()
                idle = self._schedule.idle_seconds
                sleep = MAX_SLEEP if idle is None else min(max(idle, 0.05), MAX_SLEEP)
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
                done, _ = await asyncio.wait(
                    {events, waker}, timeout=sleep, return_when=asyncio.FIRST_COMPLETED
                )
                waker.cancel()
                if events in done:
                    self._on_event(events.result())
                    events = asyncio.ensure_future(self._subscription.get())
        finally:
            events.cancel()

    def _on_event(self, event: dict[str, Any]) -> None:
        # A finished run (scheduled or by hand) moves that portal's next run.
        if event["type"] in ("portal.finished", "portal.started"):
            job = self._jobs.get(event["data"].get("portal", ""))
            if job is not None:
                job.replan()
