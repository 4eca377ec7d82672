"""The scheduler's time rules: what the config accepts, and when runs may start."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gmid.schedule.timerules import (
    OUTSIDE,
    Calendar,
    Rules,
    calendar_for,
    localize,
    parse_slot,
    parse_span,
    rules_problems,
)

BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAYS = frozenset(range(7))


def next_allowed(cal, when: datetime) -> tuple[datetime, datetime]:
    """The first allowed moment >= when and the end of its stretch, in the calendar's zone."""
    start, end = cal.next_allowed_ts(when.timestamp())
    first = when if start == when.timestamp() else datetime.fromtimestamp(start, cal.tz)
    return first, datetime.fromtimestamp(end, cal.tz)


def at(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


def calendar(windows=(), quiet=()) -> Calendar:
    return Calendar(
        Rules(
            windows=tuple(parse_span(w) for w in windows),
            quiet=tuple(parse_span(q) for q in quiet),
        ),
        BERLIN,
    )


@pytest.mark.parametrize(
    ("text", "weekdays", "minute"),
    [
        ("tue 09:30", {1}, 570),
        ("mon-fri 07:45", {0, 1, 2, 3, 4}, 465),
        ("09:30", ALL_DAYS, 570),
        ("mon,thu 10:00", {0, 3}, 600),
        ("Mon, Thu 10:00", {0, 3}, 600),
        ("fri-mon 06:00", {4, 5, 6, 0}, 360),
        ("thursday 9:05", {3}, 545),
        ("sun 00:00", {6}, 0),
    ],
)
def test_slots(text, weekdays, minute):
    slot = parse_slot(text)
    assert (slot.weekdays, slot.minute, slot.text) == (weekdays, minute, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri 08:00-19:00", ({0, 1, 2, 3, 4}, None, None, 480, 1140)),
        ("sat-sun", ({5, 6}, None, None, 0, 1440)),
        ("22:00-06:00", (None, None, None, 1320, 360)),
        ("fri 22:00-06:00", ({4}, None, None, 1320, 360)),
        ("2026-12-24", (None, date(2026, 12, 24), date(2026, 12, 24), 0, 1440)),
        ("2026-12-24..2027-01-01", (None, date(2026, 12, 24), date(2027, 1, 1), 0, 1440)),
        ("sat,sun 00:00-24:00", ({5, 6}, None, None, 0, 1440)),
        ("2026-12-31 18:00-23:59", (None, date(2026, 12, 31), date(2026, 12, 31), 1080, 1439)),
    ],
)
def test_spans(text, expected):
    span = parse_span(text)
    assert (span.weekdays, span.first, span.last, span.start, span.end) == expected
    assert span.text == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00", "25:00 is not a time (HH:MM, 00:00-23:59)"),
        ("tue 24:00", "24:00 is not a time (HH:MM, 00:00-23:59)"),
        ("tue 9:60", "9:60 is not a time"),
        (
            "mon-fry 10:00",
            "'fry' is not a weekday (mon, tue, wed, thu, fri, sat, sun; ranges like mon-fri);"
            " did you mean 'fri'?",
        ),
        ("tuseday 10:00", "did you mean 'tue'?"),
        ("tue", "'tue' has no time: a slot is WEEKDAYS HH:MM"),
        ("tue 09:00-10:00", "a slot is one moment"),
        ("2026-12-24 10:00", "slots are weekly"),
        ("every tue at 10:00", "is not a slot"),
        (600, "write it as text"),  # YAML's reading of an unquoted 10:00
    ],
)
def test_bad_slots(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_slot(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-02-30", "2026-02-30 is not a date"),
        ("24.12.2026", "'24.12.2026' is not a date (YYYY-MM-DD)"),
        ("08:00-08:00", "08:00-08:00 is empty"),
        ("mon 08:00-08:00", "08:00-08:00 is empty"),
        ("2027-01-01..2026-12-24", "2027-01-01..2026-12-24: the end is before the start"),
        ("mon-fry 08:00-19:00", "did you mean 'fri'?"),
        ("08:00-25:00", "25:00 is not a time (HH:MM, 00:00-24:00)"),
        ("10:00", "'10:00' is a moment: a period is HH:MM-HH:MM"),
        ("mon,,tue", "is not a list of weekdays"),
    ],
)
def test_bad_spans(text, message):
    with pytest.raises(ValueError) as e:
        parse_span(text)
    assert message in str(e.value)


def test_windows_and_quiet_on_weekdays_and_nights():
    cal = calendar(["mon-fri 08:00-19:00"], ["fri 12:00-14:00"])
    assert cal.allowed(at(2026, 11, 19, 8, 0))  # Thu
    assert not cal.allowed(at(2026, 11, 19, 19, 0))  # end is exclusive
    assert not cal.allowed(at(2026, 11, 20, 13, 0))  # Fri, quiet wins over the window
    # Saturday -> Monday's window; the stretch ends with it.
    assert next_allowed(cal, at(2026, 11, 21, 10, 0)) == (at(2026, 11, 23, 8), at(2026, 11, 23, 19))
    assert next_allowed(cal, at(2026, 11, 20, 12, 30)) == (
        at(2026, 11, 20, 14),
        at(2026, 11, 20, 19),
    )
    # Already allowed: the moment itself, to the second.
    moment = at(2026, 11, 19, 9, 15, 42)
    assert next_allowed(cal, moment)[0] == moment


def test_span_crossing_midnight_belongs_to_the_next_day():
    cal = calendar(quiet=["fri 22:00-06:00"])
    assert cal.allowed(at(2026, 11, 20, 21, 59))  # Fri
    assert not cal.allowed(at(2026, 11, 20, 23, 0))
    assert not cal.allowed(at(2026, 11, 21, 5, 59))  # Sat morning: Friday's night
    assert cal.allowed(at(2026, 11, 21, 6, 0))
    assert cal.allowed(at(2026, 11, 20, 5, 0))  # Fri morning: Thursday had no quiet night
    assert next_allowed(cal, at(2026, 11, 20, 23, 0))[0] == at(2026, 11, 21, 6)


def test_whole_allowed_days_join_into_one_stretch():
    cal = calendar(quiet=["sat-sun"])
    start, end = next_allowed(cal, at(2026, 11, 21, 10))  # Sat
    assert (start, end) == (at(2026, 11, 23), at(2026, 11, 28))


def test_nightly_window_crossing_midnight():
    cal = calendar(windows=["22:00-06:00"])
    assert next_allowed(cal, at(2026, 11, 20, 12)) == (at(2026, 11, 20, 22), at(2026, 11, 21, 6))
    assert cal.allowed(at(2026, 11, 21, 3))


def test_christmas_to_new_year():
    cal = calendar(quiet=["2026-12-24..2027-01-01"])
    assert cal.allowed(at(2026, 12, 23, 23, 59))
    assert not cal.allowed(at(2026, 12, 24, 0, 0))
    assert not cal.allowed(at(2027, 1, 1, 23, 59))
    assert next_allowed(cal, at(2026, 12, 24, 10, 4))[0] == at(2027, 1, 2)
    assert cal.allowed(at(2027, 12, 25, 12))  # a date is not every year


def test_spring_forward_gap_ends_at_the_first_existing_moment():
    assert localize(datetime(2026, 3, 29, 2, 30), BERLIN) == at(2026, 3, 29, 3, 0)
    assert localize(datetime(2026, 3, 29, 2, 30), BERLIN).utcoffset() == timedelta(hours=2)
    cal = calendar(quiet=["01:00-02:30"])
    assert next_allowed(cal, at(2026, 3, 29, 1, 30)) == (at(2026, 3, 29, 3), at(2026, 3, 30, 1))
    # A window entirely inside the gap does not exist that day.
    cal = calendar(windows=["02:10-02:40"])
    assert next_allowed(cal, at(2026, 3, 29, 0, 0))[0] == at(2026, 3, 30, 2, 10)


def test_autumn_ambiguous_hour_means_its_first_occurrence():
    first, second = at(2026, 10, 25, 2, 15, fold=0), at(2026, 10, 25, 2, 15, fold=1)
    assert second.timestamp() - first.timestamp() == 3600
    cal = calendar(quiet=["00:00-02:30"])
    assert not cal.allowed(first)  # 02:15 CEST
    assert cal.allowed(second)  # 02:15 CET: the quiet hours ended at the first 02:30
    start, _ = next_allowed(cal, at(2026, 10, 25, 1, 0))
    assert start == at(2026, 10, 25, 2, 30) and start.utcoffset() == timedelta(hours=2)


def test_any_time_zone_in_aware_out_naive_refused():
    cal = calendar(["mon-fri 08:00-19:00"])
    start, _ = next_allowed(cal, datetime(2026, 11, 21, 9, tzinfo=UTC))
    assert start == at(2026, 11, 23, 8) and start.tzinfo == BERLIN
    with pytest.raises(ValueError, match="no time zone"):
        cal.allowed(datetime(2026, 11, 21, 9))


def test_no_allowed_moment_within_a_year():
    cal = calendar(["mon-fri 08:00-19:00"], ["mon-fri"])
    with pytest.raises(ValueError, match="no allowed moment within a year"):
        next_allowed(cal, at(2026, 11, 20, 12))


def test_quiet_periods_carry_their_label():
    cal = calendar(["mon-fri 08:00-19:00"], ["sat-sun", "2026-12-24..2027-01-01"])
    periods = cal.quiet_periods(at(2026, 11, 20, 12), at(2026, 11, 24, 12))
    assert periods == [
        (at(2026, 11, 20, 19), at(2026, 11, 21), OUTSIDE),
        (at(2026, 11, 21), at(2026, 11, 23), "sat-sun"),
        (at(2026, 11, 23), at(2026, 11, 23, 8), OUTSIDE),
        (at(2026, 11, 23, 19), at(2026, 11, 24, 8), OUTSIDE),
    ]
    christmas = cal.quiet_periods(at(2026, 12, 23, 12), at(2027, 1, 3))
    assert (at(2026, 12, 26), at(2026, 12, 28), "sat-sun") in christmas  # first quiet listed wins
    assert (at(2026, 12, 28), at(2027, 1, 2), "2026-12-24..2027-01-01") in christmas
    assert calendar().quiet_periods(at(2026, 11, 20), at(2026, 12, 20)) == []


def test_next_slot_on_both_dst_days():
    cal = calendar()
    slots = (parse_slot("02:30"),)
    assert cal.next_slot(slots, at(2026, 3, 29, 0))[0] == at(2026, 3, 29, 3, 0)
    assert cal.next_slot(slots, at(2026, 3, 29, 3, 0))[0] == at(2026, 3, 30, 2, 30)
    autumn = cal.next_slot(slots, at(2026, 10, 25, 0))[0]
    assert autumn == at(2026, 10, 25, 2, 30) and autumn.utcoffset() == timedelta(hours=2)
    # After the first 02:30, the second one (an hour later) is not another slot.
    assert cal.next_slot(slots, autumn)[0] == at(2026, 10, 26, 2, 30)


def test_rules_problems():
    def problems(**kwargs):
        spans = {k: tuple(parse_span(s) for s in v) for k, v in kwargs.items() if k != "at"}
        slots = tuple(parse_slot(s) for s in kwargs.get("at", ()))
        return rules_problems(Rules(every=None if slots else Rules.every, at=slots, **spans))

    assert problems(windows=["mon-fri 08:00-19:00"], quiet=["sat-sun", "22:00-06:00"]) == []
    assert problems(windows=["mon-fri 08:00-19:00"], quiet=["mon-fri"]) == [
        "the windows minus the quiet hours leave no moment in a week: no run could ever start"
    ]
    assert problems(quiet=["00:00-24:00"]) != []
    assert problems(windows=["sat 10:00-12:00"], quiet=["sat 09:00-13:00"]) != []
    # Dates are finite: a quiet year is not "never", and dated windows are not checked.
    assert problems(quiet=["2026-01-01..2026-12-31"]) == []
    assert problems(windows=["2026-12-24"]) == []
    assert problems(at=["sat 10:00", "sun 11:00"], quiet=["sat-sun"]) == [
        "every slot in `at` falls outside the windows or in quiet hours"
    ]
    assert problems(at=["sat 10:00", "mon 07:00"], windows=["mon-fri 08:00-19:00"]) != []
    assert problems(at=["sat 10:00", "mon 09:00"], windows=["mon-fri 08:00-19:00"]) == []
    assert problems(at=["sat 23:00"], quiet=["fri 22:00-06:00"]) == []  # Fri night, not Sat
    assert problems(at=["sat 03:00"], quiet=["fri 22:00-06:00"]) != []
    assert rules_problems(Rules(retry=timedelta(0))) == [
        "`retry` must be longer than 0s: a failed run would be retried in a loop"
    ]


def test_calendars_are_shared_by_equal_windows_and_quiet():
    quiet = (parse_span("sat-sun"),)
    a = calendar_for(Rules(quiet=quiet), BERLIN)
    b = calendar_for(Rules(every=timedelta(days=1), quiet=(parse_span("sat-sun"),)), BERLIN)
    assert a is b
    assert calendar_for(Rules(), BERLIN) is not a
    assert calendar_for(Rules(quiet=quiet), ZoneInfo("America/New_York")) is not a
