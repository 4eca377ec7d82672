"""The scheduler's time rules: slots, windows and quiet hours, evaluated in a time zone.

Pure: no I/O, no clock. The config's strings are parsed into frozen dataclasses; a Calendar
answers "may a run start at this moment?" and "when next?" for one set of windows and quiet
hours in one time zone. It works in local wall-clock (a date and a minute of the day) and
converts each day once to UTC timestamps, so that the days the clocks change follow two rules:
a wall-clock time that does not exist (spring forward) means the first moment after the gap,
and one that happens twice (fall back) means its first occurrence (fold=0).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = timedelta(days=1)
SEARCH_DAYS = 400  # next_allowed_ts gives up after this; date quiet spans are finite
STRETCH_SECONDS = 8 * 86400  # how far next_allowed_ts follows a stretch: more than jitter needs
OUTSIDE = "outside the windows"
WEEKDAY_HELP = "mon, tue, wed, thu, fri, sat, sun; ranges like mon-fri"


@dataclass(frozen=True)
class Slot:
    """A fixed weekly moment: "tue 09:30", "mon-fri 07:45", "09:30" (every day)."""

    weekdays: frozenset[int]  # 0 = Monday
    minute: int  # minute of the day, 0..1439
    text: str


@dataclass(frozen=True)
class Span:
    """A period of windows or quiet hours: "mon-fri 08:00-19:00", "22:00-06:00", "2026-12-24".

    It starts on the days it names (weekdays, or the dates first..last) at `start` and ends at
    `end`; when end <= start it crosses midnight and the part after belongs to the next day.
    """

    weekdays: frozenset[int] | None  # None: every day (or the dates)
    first: date | None  # inclusive dates; None: weekly
    last: date | None
    start: int  # minute of the day, 0..1439
    end: int  # 1..1440
    text: str

    def starts_on(self, weekday: int, day: date | None) -> bool:
        """Tell whether the span starts on that day (day None: any week, dates never)."""
        if self.first is not None:
            return day is not None and self.first <= day <= self.last  # type: ignore[operator]
        return self.weekdays is None or weekday in self.weekdays

    def parts(self, weekday: int, day: date | None) -> list[tuple[int, int]]:
        """The minutes [a, b) of that day that the span covers."""
        found = []
        if self.starts_on(weekday, day):
            found.append((self.start, self.end if self.end > self.start else 1440))
        if 0 < self.end <= self.start and self.starts_on((weekday - 1) % 7, day and day - DAY):
            found.append((0, self.end))
        return found


@dataclass(frozen=True)
class Rules:
    """When a portal runs: an interval or weekly slots, within windows and outside quiet."""

    every: timedelta | None = timedelta(days=7)  # None when `at` slots are used
    at: tuple[Slot, ...] = ()
    windows: tuple[Span, ...] = ()  # empty: always allowed
    quiet: tuple[Span, ...] = ()  # wins over windows
    jitter: timedelta = timedelta(0)
    retry: timedelta = timedelta(hours=1)  # first retry delay after a failed run (doubling)


def _time(text: str, *, end: bool = False) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    hours, minutes = (int(m[1]), int(m[2])) if m else (99, 99)
    if end and (hours, minutes) == (24, 0):
        return 1440
    if hours > 23 or minutes > 59:
        limit = "00:00-24:00" if end else "00:00-23:59"
        raise ValueError(f"{text} is not a time (HH:MM, {limit})")
    return hours * 60 + minutes


def _weekday(name: str) -> int:
    # Any prefix of two letters or more: "mo", "tue", "thurs", "friday".
    if len(name) >= 2:
        for i, full in enumerate(DAY_NAMES):
            if full.startswith(name):
                return i
    hint = difflib.get_close_matches(name, [d[:3] for d in DAY_NAMES] + list(DAY_NAMES), 1)
    did_you_mean = f"; did you mean '{hint[0][:3]}'?" if hint else ""
    raise ValueError(f"'{name}' is not a weekday ({WEEKDAY_HELP}){did_you_mean}")


def _weekdays(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        first, sep, last = item.partition("-")
        if not first or (sep and not last):
            raise ValueError(f"'{text}' is not a list of weekdays ({WEEKDAY_HELP})")
        a = _weekday(first)
        b = _weekday(last) if sep else a
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))  # "fri-mon" wraps
    return frozenset(days)


def _date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text} is not a date") from None


def _tokens(text: object, what: str, example: str) -> tuple[str, str]:
    """Split "DAYS TIME" into its two parts, either may be empty."""
    if not isinstance(text, str):
        # YAML reads an unquoted 10:00 as the number 600 (base 60).
        raise ValueError(f"{text!r} is not {what}: write it as text, e.g. '{example}'")
    norm = re.sub(r"\s*(-|,|\.\.)\s*", r"\1", text.strip().lower())
    words = norm.split()
    if len(words) == 2:
        return words[0], words[1]
    if len(words) == 1:
        return ("", words[0]) if ":" in words[0] else (words[0], "")
    raise ValueError(f"'{text}' is not {what} (e.g. '{example}')")


def parse_slot(text: str) -> Slot:
    """Parse a weekly slot: "tue 09:30", "mon-fri 07:45", "mon,thu 10:00", "09:30"."""
    days, time = _tokens(text, "a slot", "tue 09:30")
    if not time:
        raise ValueError(f"'{text}' has no time: a slot is WEEKDAYS HH:MM, e.g. 'tue 09:30'")
    if "-" in time:
        raise ValueError(f"'{text}' is a period: a slot is one moment, e.g. 'tue 09:30'")
    if days[:1].isdigit():
        raise ValueError(f"'{text}' names a date: slots are weekly, e.g. 'tue 09:30'")
    weekdays = _weekdays(days) if days else frozenset(range(7))
    return Slot(weekdays, _time(time), text.strip())


def parse_span(text: str) -> Span:
    """Parse a window or quiet period: "mon-fri 08:00-19:00", "22:00-06:00", "2026-12-24".

    Also "sat-sun" (whole days), "2026-12-24..2027-01-01" (inclusive dates).
    """
    days, time = _tokens(text, "a period", "mon-fri 08:00-19:00")
    weekdays, first, last = None, None, None
    if days[:1].isdigit():
        a, sep, b = days.partition("..")
        first = _date(a)
        last = _date(b) if sep else first
        if last < first:
            raise ValueError(f"{days}: the end is before the start")
    elif days:
        weekdays = _weekdays(days)
    start, end = 0, 1440
    if time:
        a, sep, b = time.partition("-")
        if not sep:
            raise ValueError(f"'{time}' is a moment: a period is HH:MM-HH:MM, e.g. '08:00-19:00'")
        start, end = _time(a), _time(b, end=True)
        if start == end:
            raise ValueError(f"{time} is empty")
    return Span(weekdays, first, last, start, end, text.strip())


def _wall_segments(
    windows: tuple[Span, ...], quiet: tuple[Span, ...], weekday: int, day: date | None
) -> list[tuple[int, int, str | None]]:
    """Cut a day into minutes [a, b) labelled None (allowed), a quiet span's text or OUTSIDE."""
    window_parts = [p for s in windows for p in s.parts(weekday, day)]
    quiet_parts = [(a, b, s.text) for s in quiet for a, b in s.parts(weekday, day)]
    cuts = sorted(
        {0, 1440, *(x for p in window_parts for x in p)} | {x for p in quiet_parts for x in p[:2]}
    )
    segments: list[tuple[int, int, str | None]] = []
    for a, b in pairwise(cuts):
        label = next((t for qa, qb, t in quiet_parts if qa <= a and b <= qb), None)
        if label is None and windows and not any(wa <= a and b <= wb for wa, wb in window_parts):
            label = OUTSIDE
        if segments and segments[-1][2] == label:
            segments[-1] = (segments[-1][0], b, label)
        else:
            segments.append((a, b, label))
    return segments


def rules_problems(rules: Rules) -> list[str]:
    """What is wrong with the rules as a whole (checked on a weekly basis; dates are finite)."""
    problems = []
    weekly_windows = tuple(s for s in rules.windows if s.first is None)
    # Only dated windows: a finite set of moments, nothing weekly to check.
    if weekly_windows or not rules.windows:
        week = [_wall_segments(weekly_windows, rules.quiet, w, None) for w in range(7)]
        if not any(label is None for day in week for _, _, label in day):
            problems.append(
                "the windows minus the quiet hours leave no moment in a week: "
                "no run could ever start"
            )
        elif rules.at and not any(
            label is None
            for slot in rules.at
            for w in slot.weekdays
            for a, b, label in week[w]
            if a <= slot.minute < b
        ):
            problems.append("every slot in `at` falls outside the windows or in quiet hours")
    if rules.retry <= timedelta(0):
        problems.append("`retry` must be longer than 0s: a failed run would be retried in a loop")
    return problems


def localize(naive: datetime, tz: tzinfo) -> datetime:
    """Give the aware moment of a local wall-clock time: its first occurrence when the clocks go
    back, the first moment after the gap when they go forward."""
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return aware
    # In the gap: the transition lies between the instants of the two offsets; find it.
    lo, hi = sorted((naive.replace(tzinfo=tz, fold=1).timestamp(), aware.timestamp()))
    lo, hi = int(lo), int(hi) + 1
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz)


@lru_cache(maxsize=65536)
def _midnight(tz: tzinfo, day: date) -> float:
    return localize(datetime(day.year, day.month, day.day), tz).timestamp()


def wall_timestamp(tz: tzinfo, day: date, minute: int) -> float:
    """Give the UTC timestamp of a local date and minute of the day (1440: the next midnight)."""
    base = _midnight(tz, day)
    if _midnight(tz, day + DAY) - base == 86400:  # no clock change that day
        return base + minute * 60
    if minute >= 1440:
        return _midnight(tz, day + DAY)
    naive = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
    return localize(naive, tz).timestamp()


def add_days(when: datetime, days: int, tz: tzinfo) -> datetime:
    """Give the same local wall-clock time `days` later (DST rules as in localize)."""
    local = when.astimezone(tz)
    day = local.date() + timedelta(days=days)
    base = _midnight(tz, day)
    if _midnight(tz, day + DAY) - base == 86400:  # no clock change that day
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return datetime.fromtimestamp(base + seconds, tz).replace(microsecond=local.microsecond)
    return localize(datetime.combine(day, local.time()), tz)


def _timestamp(when: datetime) -> float:
    if when.tzinfo is None:
        raise ValueError(f"{when} has no time zone")
    return when.timestamp()


class Calendar:
    """Evaluates Rules in a time zone; cached so that 5,000 portals sharing rules stay fast."""

    def __init__(self, rules: Rules, tz: tzinfo):
        self.tz = tz
        self.windows = rules.windows
        self.quiet = rules.quiet
        self._always = not rules.windows and not rules.quiet
        self._dated = tuple(s for s in rules.windows + rules.quiet if s.first is not None)
        self._walls: dict[tuple, list[tuple[int, int, str | None]]] = {}
        self._days: dict[date, tuple[tuple, tuple]] = {}

    def _day(self, day: date) -> tuple[tuple, tuple]:
        """The day's segments (start, end, label) as timestamps, and its allowed (start, end)."""
        found = self._days.get(day)
        if found is not None:
            return found
        # Days differ only by weekday and by which dated spans touch them: share the cuts.
        key = (
            day.weekday(),
            *(s.starts_on(0, day) * 2 + s.starts_on(0, day - DAY) for s in self._dated),
        )
        wall = self._walls.get(key)
        if wall is None:
            wall = self._walls[key] = _wall_segments(self.windows, self.quiet, day.weekday(), day)
        segments: list[tuple[float, float, str | None]] = []
        for a, b, label in wall:
            start, end = wall_timestamp(self.tz, day, a), wall_timestamp(self.tz, day, b)
            if start >= end:  # swallowed by the spring-forward gap
                continue
            if segments and segments[-1][2] == label:
                segments[-1] = (segments[-1][0], end, label)
            else:
                segments.append((start, end, label))
        allowed = tuple((a, b) for a, b, label in segments if label is None)
        found = self._days[day] = (tuple(segments), allowed)
        return found

    def _local_date(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.tz).date()

    def blocked_by(self, when: datetime) -> str | None:
        """Give why no run may start at `when` (a quiet span's text or OUTSIDE), None if it may."""
        ts = _timestamp(when)
        if self._always:
            return None
        for a, b, label in self._day(self._local_date(ts))[0]:
            if a <= ts < b:
                return label
        return None

    def allowed(self, when: datetime) -> bool:
        """Tell whether a run may start at `when`."""
        return self.blocked_by(when) is None

    def next_allowed_ts(self, ts: float, follow: float = STRETCH_SECONDS) -> tuple[float, float]:
        """Give the first allowed moment >= ts and the end of that allowed stretch, in UTC
        timestamps, following the stretch for `follow` seconds (8 days: enough for any jitter)."""
        if self._always:
            return ts, ts + follow
        day = self._local_date(ts)
        for _ in range(SEARCH_DAYS):
            for a, b in self._day(day)[1]:
                if b > ts:
                    start = max(a, ts)
                    # A stretch that ends at midnight goes on if the next day starts allowed.
                    while b < start + follow:
                        day += DAY
                        allowed = self._day(day)[1]
                        if not allowed or allowed[0][0] != b:
                            break
                        b = allowed[0][1]
                    return start, b
            day += DAY
        raise ValueError("no allowed moment within a year")

    def quiet_periods(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
        """Give the not-allowed stretches in [start, end) with their label."""
        lo, hi = _timestamp(start), _timestamp(end)
        found: list[list] = []
        day = self._local_date(lo)
        while not self._always and _midnight(self.tz, day) < hi:
            for a, b, label in self._day(day)[0]:
                a, b = max(a, lo), min(b, hi)
                if label is None or a >= b:
                    continue
                if found and found[-1][2] == label and found[-1][1] == a:
                    found[-1][1] = b
                else:
                    found.append([a, b, label])
            day += DAY
        return [
            (datetime.fromtimestamp(a, self.tz), datetime.fromtimestamp(b, self.tz), label)
            for a, b, label in found
        ]

    def next_slot(self, slots: tuple[Slot, ...], after: datetime) -> tuple[datetime, date, Slot]:
        """Give the first slot occurrence strictly after `after`: its moment, local date, slot."""
        ts = _timestamp(after)
        day = self._local_date(ts)
        for _ in range(8):  # every slot comes round within a week
            best = None
            for slot in slots:
                if day.weekday() in slot.weekdays:
                    at = wall_timestamp(self.tz, day, slot.minute)
                    if at > ts and (best is None or at < best[0]):
                        best = (at, slot)
            if best is not None:
                return datetime.fromtimestamp(best[0], self.tz), day, best[1]
            day += DAY
        raise ValueError("no slots")


_CALENDARS: dict[tuple, Calendar] = {}


def calendar_for(rules: Rules, tz: tzinfo) -> Calendar:
    """Give the shared Calendar of these windows and quiet hours in this time zone."""
    key = (rules.windows, rules.quiet, tz)
    calendar = _CALENDARS.get(key)
    if calendar is None:
        if len(_CALENDARS) > 4096:  # config reloads leave old rules behind
            _CALENDARS.clear()
        calendar = _CALENDARS[key] = Calendar(rules, tz)
    return calendar


def clear_caches() -> None:
    """Forget the shared calendars and midnights, as a fresh start or a config reload finds them."""
    _CALENDARS.clear()
    _midnight.cache_clear()
