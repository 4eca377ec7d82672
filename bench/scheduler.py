"""Scheduler cost: planning 5,000 portals, a 30-day preview, and one `schedule` loop tick.

5,000 portals in Europe/Berlin: 90 % share one of four global rule sets (weekly interval in
office hours with weekend and holiday quiet, a weekly slot, a daily run outside the night, two
slots a week), 10 % have rules of their own (intervals from 12 h to 14 days or 1-3 slots,
random windows, quiet hours incl. date ranges, jitter). Last runs are random over the past
three weeks: mostly ok, some waiting for a code or unavailable, a few with wrong credentials,
some never run, some disabled.

(a) plan: gmid.schedule.planner.next_run for every portal, then its preview over 30 days, with
    the Calendar caches cleared first (what a start or a config reload costs). Target <= 1 s.
(b) tick: what the driver does each time it wakes: `Scheduler.run_pending()` with no job due,
    then `Scheduler.idle_seconds`, over 5,000 jobs whose next_run is the planner's answer in
    naive local time. Target <= 5 ms. Also timed with the driver's own job class
    (gmid.schedule.scheduler.PortalJob) when it imports, and, as the bare-library reference, 5,000
    plain `every(7).days` jobs.
Figures are medians over --rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import schedule

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gmid.schedule import timerules
from gmid.schedule.planner import LastRun, Planned, next_run, preview
from gmid.schedule.timerules import Rules, calendar_for, parse_slot, parse_span

TZ = ZoneInfo("Europe/Berlin")
PORTALS = 5000
PREVIEW_DAYS = 30
PLAN_TARGET = 1.0
TICK_TARGET = 0.005
OUTCOMES = (
    ["ok"] * 80
    + ["waiting for code"] * 8
    + ["unavailable"] * 4
    + ["portal changed"] * 2
    + ["error"] * 2
    + ["wrong credentials"] * 4
)


def global_rules(today: datetime) -> list[Rules]:
    """The few rule sets most portals share (the config's global `schedule:` and variants)."""
    holiday = f"{(today + timedelta(days=10)).date()}..{(today + timedelta(days=18)).date()}"
    office = (parse_span("mon-fri 08:00-19:00"),)
    quiet = (parse_span(holiday), parse_span("sat-sun"))
    m15 = timedelta(minutes=15)
    return [
        Rules(windows=office, quiet=quiet, jitter=m15),
        Rules(every=None, at=(parse_slot("tue 09:30"),), windows=office, quiet=quiet, jitter=m15),
        Rules(every=timedelta(days=1), quiet=(parse_span("22:00-06:00"),), jitter=2 * m15),
        Rules(
            every=None,
            at=(parse_slot("mon,thu 10:00"),),
            windows=(parse_span("mon-fri 07:00-20:00"),),
            jitter=timedelta(minutes=10),
        ),
    ]


def own_rules(rng: random.Random, today: datetime) -> Rules:
    """Rules of one portal that overrides everything."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    every: timedelta | None = timedelta(hours=rng.choice([12, 24, 48, 72, 168, 336]))
    at: tuple = ()
    if rng.random() < 0.4:
        every = None
        at = tuple(
            parse_slot(f"{rng.choice(days)} {rng.randrange(6, 22):02d}:{rng.randrange(60):02d}")
            for _ in range(rng.randint(1, 3))
        )
    windows = ()
    if rng.random() < 0.6:
        opens = rng.randrange(5, 12)
        windows = (parse_span(f"mon-{rng.choice(days[3:])} {opens:02d}:00-{opens + 9:02d}:30"),)
    quiet = []
    if rng.random() < 0.5:
        quiet.append(parse_span("22:00-06:00"))
    if rng.random() < 0.5:
        start = (today + timedelta(days=rng.randrange(-5, 25))).date()
        quiet.append(parse_span(f"{start}..{start + timedelta(days=rng.randrange(1, 10))}"))
    if rng.random() < 0.3:
        quiet.append(parse_span(rng.choice(["sat-sun", "sun", "fri 18:00-23:00"])))
    jitter = timedelta(minutes=rng.choice([0, 5, 15, 30]))
    return Rules(every=every, at=at, windows=windows, quiet=tuple(quiet), jitter=jitter)


def make_portals(now: datetime, seed: int = 4) -> list[tuple[str, Rules, LastRun | None, bool]]:
    """5,000 portals with mixed rules and random last runs."""
    rng = random.Random(seed)
    shared = global_rules(now)
    portals = []
    for i in range(PORTALS):
        rules = own_rules(rng, now) if rng.random() < 0.1 else rng.choice(shared)
        last = None
        if rng.random() > 0.05:
            started = now - timedelta(seconds=rng.randrange(21 * 86400))
            outcome = rng.choice(OUTCOMES)
            last = LastRun(
                started_at=started,
                finished_at=started + timedelta(seconds=rng.randrange(10, 300)),
                outcome=outcome,
                failures=0 if outcome == "ok" else rng.randint(1, 4),
                credentials_changed=rng.random() < 0.3,
            )
        portals.append((f"portal-{i:04d}", rules, last, rng.random() > 0.03))
    return portals


def plan_all(portals, now: datetime) -> tuple[float, float, dict[str, Planned], int]:
    """Plan every portal and preview 30 days with cold caches; return both times."""
    timerules.clear_caches()
    start = time.perf_counter()
    plans = {
        name: next_run(name, rules, calendar_for(rules, TZ), now=now, last=last, enabled=on)
        for name, rules, last, on in portals
    }
    planned = time.perf_counter()
    runs = preview(portals, TZ, now=now, days=PREVIEW_DAYS)
    done = time.perf_counter()
    return planned - start, done - planned, plans, len(runs)


def tick(scheduler: schedule.Scheduler, ticks: int) -> float:
    """Median seconds of run_pending() + idle_seconds, with no job due."""
    times = []
    for _ in range(ticks):
        start = time.perf_counter()
        scheduler.run_pending()
        idle = scheduler.idle_seconds
        times.append(time.perf_counter() - start)
        assert idle is not None and idle > 0, "a job was due: the tick must not run any"
    return statistics.median(times)


def planned_scheduler(plans: dict[str, Planned]) -> schedule.Scheduler:
    """A Scheduler with one plain Job per portal, next_run set from the planner."""
    scheduler = schedule.Scheduler()
    for plan in plans.values():
        job = scheduler.every(7).days.do(lambda: None)
        # As the driver does: naive local time of the machine; never planned: never.
        job.next_run = plan.at.astimezone().replace(tzinfo=None) if plan.at else datetime.max
    return scheduler


def driver_scheduler(plans: dict[str, Planned]) -> schedule.Scheduler | None:
    """A Scheduler with the driver's PortalJob per portal, if gmid.schedule.scheduler imports."""
    try:
        from gmid.schedule.scheduler import PortalJob
    except Exception as e:  # the driver is written beside this bench
        print(f"  (gmid.schedule.scheduler.PortalJob not timed: {e})")
        return None
    scheduler = schedule.Scheduler()
    for name in plans:
        PortalJob(scheduler, name, plans.__getitem__).do(lambda: None)
    return scheduler


def bare_scheduler() -> schedule.Scheduler:
    scheduler = schedule.Scheduler()
    for _ in range(PORTALS):
        scheduler.every(7).days.do(lambda: None)
    return scheduler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=200, help="ticks timed per round")
    args = parser.parse_args()

    # A real "now", ahead of every planned run: the tick must find no job due.
    now = datetime.now(TZ).replace(microsecond=0) + timedelta(minutes=2)
    portals = make_portals(now)
    print(f"{PORTALS} portals, {len({id(p[1]) for p in portals})} distinct rule sets")

    plan_times, preview_times, runs = [], [], 0
    plans: dict[str, Planned] = {}
    for _ in range(args.rounds):
        p, v, plans, runs = plan_all(portals, now)
        plan_times.append(p)
        preview_times.append(v)
    p, v = statistics.median(plan_times), statistics.median(preview_times)
    unplanned = sum(plan.at is None for plan in plans.values())
    print(f"(a) next run of every portal: {p * 1000:7.1f} ms  ({unplanned} not planned)")
    print(f"    {PREVIEW_DAYS}-day preview:          {v * 1000:7.1f} ms  ({runs} runs)")
    print(
        f"    together:                 {(p + v) * 1000:7.1f} ms  ratio to target 1 s: "
        f"{(p + v) / PLAN_TARGET:.2f}"
    )

    kinds = {"planner + plain Job": planned_scheduler(plans)}
    driver = driver_scheduler(plans)
    if driver is not None:
        kinds["planner + driver PortalJob"] = driver
    kinds["bare library (every(7).days)"] = bare_scheduler()
    ticks = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, scheduler in kinds.items():
            ticks[name].append(tick(scheduler, args.ticks))
    for name, values in ticks.items():
        t = statistics.median(values)
        print(
            f"(b) tick, {name:30s} {t * 1000:6.2f} ms  ratio to target 5 ms: {t / TICK_TARGET:.2f}"
        )


if __name__ == "__main__":
    main()
