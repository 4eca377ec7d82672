"""When each portal runs next, and why: the scheduler's decisions as pure functions.

The rule (an interval or weekly slots) makes a portal due; a failed run makes it due sooner
(backing off); then windows and quiet hours move it to the next allowed moment, and a
deterministic jitter spreads portals that fall due together. The `schedule` driver
(gmid/schedule/scheduler.py) sets each job's next run from `next_run`; `gmid schedule` shows
`preview`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

from gmid.schedule.timerules import OUTSIDE, Calendar, Rules, add_days, calendar_for

# Failures that a later attempt may fix; "portal changed" is not one (the normal rule applies).
RETRIED = frozenset(
    {
        "stopped",  # the daemon stopped mid-run
        "waiting for code",
        "code expired",
        "captcha unsolved",
        "unavailable",
        "error",
        "timed out",
        "session expired",
        "insecure",
        "code rejected",
    }
)
NOT_RETRIED = "wrong credentials: not retried until the password or user name changes"
PREVIEW_RUNS = 2000  # per portal: a tiny interval must not make a preview endless
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ONE_DAY = timedelta(days=1)
MASK = 2**64 - 1
FIRST, CREDENTIALS = 1, 2  # jitter keys of runs that are due "now": stable while the plan stands


@dataclass(frozen=True)
class LastRun:
    """What the planner needs to know of a portal's last run."""

    started_at: datetime
    finished_at: datetime
    outcome: str  # "ok", "wrong credentials", "waiting for code", "portal changed", ...
    failures: int = 0  # consecutive non-ok runs ending with this one (0 when ok)
    credentials_changed: bool = False


@dataclass(frozen=True)
class Planned:
    """A portal's next scheduled run."""

    at: datetime | None  # aware; None: not planned (see reason)
    due: datetime | None  # when the rule made it due, before windows/quiet/jitter moved it
    reason: str


def moment(when: datetime, *, dated: bool = True) -> str:
    """Format a moment for reasons, in English whatever the locale: "Fri Nov 20 10:04"."""
    clock = f"{when.hour:02d}:{when.minute:02d}"  # strftime is slow and follows the locale
    if not dated:
        return f"{DAYS[when.weekday()]} {clock}"
    return f"{DAYS[when.weekday()]} {MONTHS[when.month - 1]} {when.day} {clock}"


@lru_cache(maxsize=1024)
def duration(delta: timedelta) -> str:
    """Format an interval for reasons: "7 days", "day", "12 hours", "90 minutes"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def _normal_due(rules: Rules, calendar: Calendar, started: datetime) -> tuple[datetime, str]:
    """When the rule makes a portal due after a run that started at `started`, and why."""
    if rules.at:
        at, day, slot = calendar.next_slot(rules.at, started)
        return at, f"slot {DAYS[day.weekday()]} {slot.minute // 60:02d}:{slot.minute % 60:02d}"
    every = rules.every
    assert every is not None
    why = f"every {duration(every)} since {moment(started.astimezone(calendar.tz))}"
    if every % ONE_DAY:
        # Aware + timedelta adds wall-clock time; an interval of hours is absolute time.
        return (started.astimezone(UTC) + every).astimezone(calendar.tz), why
    # Whole days count in local wall-clock, so a weekly 10:04 run stays at 10:04 across DST.
    return add_days(started, every.days, calendar.tz), why


@lru_cache(maxsize=65536)
def _seed(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest())


def jitter(name: str, key: int, limit: float) -> int:
    """Give a stable offset in whole seconds in [0, limit) for this portal and due time."""
    if limit < 1:
        return 0
    # splitmix64 of the name's hash and the key: cheap, stable across processes (hash() is not).
    x = (_seed(name) ^ key) * 0x9E3779B97F4A7C15 & MASK
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & MASK
    return int((x ^ (x >> 31)) / 2**64 * limit)


def _moved(calendar: Calendar, wanted_ts: float, start_ts: float) -> str:
    """Say what held a run back from `wanted_ts` until `start_ts`."""
    tz = calendar.tz
    first = calendar.blocked_by(datetime.fromtimestamp(wanted_ts, tz))
    # A second before: boundaries are whole minutes (timestamps, as wall-clock DST would lie).
    last = calendar.blocked_by(datetime.fromtimestamp(start_ts - 1, tz))
    start = datetime.fromtimestamp(start_ts, tz)
    dated = start_ts - wanted_ts > 6 * 86400
    phrases = []
    if first not in (None, OUTSIDE, last):
        phrases.append(f"after quiet hours ({first})")
    if last == OUTSIDE:
        phrases.append(f"window opens {moment(start, dated=dated)}")
    elif last is not None:
        phrases.append(f"after quiet hours ({last})")
    return "".join(f"; {p}" for p in phrases)


def next_run(
    name: str,
    rules: Rules,
    calendar: Calendar,
    *,
    now: datetime,
    last: LastRun | None,
    enabled: bool = True,
) -> Planned:
    """Plan a portal's next scheduled run from its rules and its last run."""
    if not enabled:
        return Planned(None, None, f"disabled (only by hand: gmid fetch {name})")
    if not rules.at and (rules.every is None or rules.every <= timedelta(0)):
        return Planned(None, None, f"no `every` and no `at`: only by hand (gmid fetch {name})")
    if last is None and rules.at:
        # Fixed slots are the user's word on when portals may ask for codes: even the first
        # run waits for one.
        due, why = _normal_due(rules, calendar, now)
        return _place(name, rules, calendar, due, now, f"first run, {why}", None)
    if last is None:
        return _place(name, rules, calendar, now, now, "first run", FIRST)
    if last.outcome == "wrong credentials":
        if not last.credentials_changed:
            return Planned(None, None, NOT_RETRIED)
        return _place(name, rules, calendar, now, now, "credentials changed", CREDENTIALS)
    due, why = _normal_due(rules, calendar, last.started_at)
    if last.outcome in RETRIED:
        failures = max(last.failures, 1)
        # The cap keeps the timedelta in range; 2**20 retry delays exceed any interval.
        retry = last.finished_at.astimezone(UTC) + rules.retry * 2 ** (min(failures, 21) - 1)
        if retry < due:
            due, why = retry.astimezone(calendar.tz), f"retry {failures} after {last.outcome}"
    return _place(name, rules, calendar, due, now, why, None)


def _place(
    name: str,
    rules: Rules,
    calendar: Calendar,
    due: datetime,
    now: datetime,
    why: str,
    key: int | None,
) -> Planned:
    """Move a due run to the next allowed moment and jitter it there."""
    due_ts, now_ts = due.timestamp(), now.timestamp()
    wanted_ts = max(due_ts, now_ts)
    try:
        start_ts, end_ts = calendar.next_allowed_ts(wanted_ts, rules.jitter.total_seconds())
    except ValueError as e:
        return Planned(None, due, f"{why}; {e}: check the windows and quiet hours")
    tz = calendar.tz
    if start_ts > wanted_ts:
        why += _moved(calendar, wanted_ts, start_ts)
    elif due_ts < now_ts - 60:
        why += "; overdue"
    # Jitter stays inside the allowed stretch: a short window shrinks it rather than overflows.
    limit = min(rules.jitter.total_seconds(), end_ts - start_ts)
    offset = jitter(name, int(due_ts) if key is None else key, limit)
    if not offset and start_ts == now_ts:
        return Planned(now.astimezone(tz), due, why)
    return Planned(datetime.fromtimestamp(start_ts + offset, tz), due, why)


def preview(
    portals: Iterable[tuple[str, Rules, LastRun | None, bool]],
    tz: tzinfo,
    *,
    now: datetime,
    days: int,
) -> list[tuple[datetime, str, str]]:
    """List (time, portal, reason) of every run in [now, now + days), sorted by time, as if
    each run succeeded when it started."""
    # Compared in UTC: aware datetimes sharing a tzinfo compare by wall-clock (DST would lie).
    end = (now + timedelta(days=days)).astimezone(UTC)
    runs: list[tuple[datetime, str, str]] = []
    for name, rules, last, enabled in portals:
        calendar = calendar_for(rules, tz)
        planned = next_run(name, rules, calendar, now=now, last=last, enabled=enabled)
        for _ in range(PREVIEW_RUNS):
            if planned.at is None or planned.at >= end:
                break
            runs.append((planned.at, name, planned.reason))
            # As next_run with last = an ok run that started and ended at planned.at.
            due, why = _normal_due(rules, calendar, planned.at)
            planned = _place(name, rules, calendar, due, planned.at, why, None)
    runs.sort(key=lambda run: (run[0].timestamp(), run[1]))
    return runs
