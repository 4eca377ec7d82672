"""When each portal runs next, and why: the issue's cases with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gmid.schedule.planner import LastRun, next_run, preview
from gmid.schedule.timerules import Rules, calendar_for, parse_slot, parse_span

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = (parse_span("mon-fri 08:00-19:00"),)
WEEKEND = (parse_span("sat-sun"),)
CHRISTMAS = (parse_span("2026-12-24..2027-01-01"),)
# 2026-11-20 is a Friday.


def at(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


def ok(started: datetime) -> LastRun:
    return LastRun(started, started + timedelta(minutes=2), "ok")


def failed(finished: datetime, outcome: str, failures: int, **kwargs) -> LastRun:
    return LastRun(finished - timedelta(minutes=1), finished, outcome, failures, **kwargs)


def plan(rules: Rules, *, now: datetime, last: LastRun | None, name="telekom", enabled=True):
    return next_run(name, rules, calendar_for(rules, BERLIN), now=now, last=last, enabled=enabled)


def slots(*texts: str, **kwargs) -> Rules:
    return Rules(every=None, at=tuple(parse_slot(t) for t in texts), **kwargs)


def test_interval_reason_and_due():
    p = plan(Rules(), now=at(2026, 11, 23, 12), last=ok(at(2026, 11, 20, 10, 4)))
    assert (p.at, p.due) == (at(2026, 11, 27, 10, 4), at(2026, 11, 27, 10, 4))
    assert p.reason == "every 7 days since Fri Nov 20 10:04"


def test_first_run_is_now():
    now = at(2026, 11, 23, 12)
    p = plan(Rules(), now=now, last=None)
    assert (p.at, p.due, p.reason) == (now, now, "first run")


def test_weekend_waits_for_mondays_window():
    rules = Rules(windows=OFFICE, quiet=WEEKEND)
    p = plan(rules, now=at(2026, 11, 23, 12), last=ok(at(2026, 11, 21, 10, 4)))  # due Sat 28
    assert p.due == at(2026, 11, 28, 10, 4)
    assert p.at == at(2026, 11, 30, 8, 0)
    assert p.reason == (
        "every 7 days since Sat Nov 21 10:04; after quiet hours (sat-sun); window opens Mon 08:00"
    )


def test_night_waits_for_the_morning():
    rules = Rules(every=timedelta(days=1), quiet=(parse_span("22:00-06:00"),))
    p = plan(rules, now=at(2026, 11, 23, 12), last=ok(at(2026, 11, 23, 23, 30)))
    assert p.at == at(2026, 11, 25, 6, 0)
    assert p.reason.endswith("; after quiet hours (22:00-06:00)")
    p = plan(Rules(windows=OFFICE), now=at(2026, 11, 24, 12), last=ok(at(2026, 11, 17, 20, 0)))
    assert p.at == at(2026, 11, 25, 8, 0) and p.reason.endswith("; window opens Wed 08:00")


def test_per_portal_override():
    default = Rules(windows=OFFICE, quiet=WEEKEND)
    telekom = slots("mon 10:00", "thu 10:00", windows=OFFICE, quiet=WEEKEND)
    now, last = at(2026, 11, 23, 12), ok(at(2026, 11, 23, 10, 0))  # Mon
    assert plan(default, now=now, last=last).at == at(2026, 11, 30, 10, 0)
    p = plan(telekom, now=now, last=last)
    assert (p.at, p.reason) == (at(2026, 11, 26, 10, 0), "slot Thu 10:00")


def test_slot_in_quiet_waits_instead_of_skipping():
    rules = slots("sat 10:00", quiet=WEEKEND)
    p = plan(rules, now=at(2026, 11, 23, 12), last=ok(at(2026, 11, 23, 0, 0)))
    assert (p.due, p.at) == (at(2026, 11, 28, 10), at(2026, 11, 30, 0))
    assert p.reason == "slot Sat 10:00; after quiet hours (sat-sun)"


def test_missed_slots_give_one_run():
    rules = slots("09:30", "mon-fri 15:00")
    now = at(2026, 11, 20, 12)
    p = plan(rules, now=now, last=ok(at(2026, 11, 10, 9, 30)))
    assert p.at == now and p.reason == "slot Tue 15:00; overdue"
    runs = preview([("x", rules, ok(at(2026, 11, 10, 9, 30)), True)], BERLIN, now=now, days=1)
    assert [r[0] for r in runs] == [now, at(2026, 11, 20, 15), at(2026, 11, 21, 9, 30)]


def test_jitter_bounds_deterministic_and_inside_the_window():
    rules = Rules(windows=OFFICE, quiet=WEEKEND, jitter=timedelta(minutes=15))
    now, last = at(2026, 11, 23, 7), ok(at(2026, 11, 14, 10, 4))  # due Sat 21: overdue
    names = [f"portal-{i}" for i in range(1000)]
    first = {n: plan(rules, now=now, last=last, name=n).at for n in names}
    again = {n: plan(rules, now=now, last=last, name=n).at for n in names}
    assert first == again
    opens = at(2026, 11, 23, 8)
    assert all(opens <= t < opens + timedelta(minutes=15) for t in first.values())
    assert len(set(first.values())) > 500  # spread, not all at once
    assert max(first.values()) - opens > timedelta(minutes=14)
    # A window shorter than the jitter: the spread shrinks to fit it.
    short = Rules(windows=(parse_span("mon-fri 08:00-08:05"),), jitter=timedelta(minutes=15))
    times = [plan(short, now=now, last=last, name=n).at for n in names]
    assert all(opens <= t < opens + timedelta(minutes=5) for t in times)


def test_overdue_after_two_weeks_down_runs_once():
    rules = Rules(windows=OFFICE, quiet=WEEKEND)
    last = ok(at(2026, 11, 2, 10, 4))
    now = at(2026, 11, 21, 9, 0)  # restarted on a Saturday
    p = plan(rules, now=now, last=last)
    assert p.due == at(2026, 11, 9, 10, 4)
    assert p.at == at(2026, 11, 23, 8, 0)
    runs = preview([("x", rules, last, True)], BERLIN, now=now, days=14)
    assert [r[0] for r in runs] == [at(2026, 11, 23, 8), at(2026, 11, 30, 8)]
    inside = plan(rules, now=at(2026, 11, 23, 12), last=last)
    assert inside.at == at(2026, 11, 23, 12) and inside.reason.endswith("; overdue")


def test_waiting_for_code_retry_backs_off_capped_and_inside_windows():
    rules = Rules(windows=OFFICE, quiet=WEEKEND, retry=timedelta(hours=1))
    tue = at(2026, 11, 24, 10, 0)
    now = tue + timedelta(seconds=5)
    for failures, expected in [(1, 11), (2, 12), (3, 14), (4, 18)]:
        p = plan(rules, now=now, last=failed(tue, "waiting for code", failures))
        assert p.at == at(2026, 11, 24, expected)
        assert p.reason == f"retry {failures} after waiting for code"
    # 1h * 2**4 = 16 h: past 19:00, so the next morning's window, never at night.
    p = plan(rules, now=now, last=failed(tue, "waiting for code", 5))
    assert p.at == at(2026, 11, 25, 8) and p.reason.endswith("; window opens Wed 08:00")
    # Capped at the normal interval: no retry later than the regular run.
    p = plan(rules, now=now, last=failed(tue, "waiting for code", 9))
    assert p.at == tue - timedelta(minutes=1) + timedelta(days=7)
    assert p.reason.startswith("every 7 days since")
    # Not before the retry delay, however often the plan is recomputed.
    for minutes in (0, 30, 59):
        later = plan(rules, now=now + timedelta(minutes=minutes), last=failed(tue, "error", 1))
        assert later.at == at(2026, 11, 24, 11)


def test_wrong_credentials_wait_for_new_ones():
    now = at(2026, 11, 24, 12)
    p = plan(Rules(), now=now, last=failed(now, "wrong credentials", 3))
    assert p.at is None
    assert p.reason == "wrong credentials: not retried until the password or user name changes"
    p = plan(
        Rules(windows=OFFICE),
        now=now,
        last=failed(now, "wrong credentials", 3, credentials_changed=True),
    )
    assert (p.at, p.reason) == (now, "credentials changed")


def test_portal_changed_follows_the_normal_rule():
    now = at(2026, 11, 24, 12)
    p = plan(Rules(), now=now, last=failed(now, "portal changed", 2))
    assert p.at == now - timedelta(minutes=1) + timedelta(days=7)


def test_disabled():
    p = plan(Rules(), now=at(2026, 11, 24), last=None, name="edf", enabled=False)
    assert (p.at, p.reason) == (None, "disabled (only by hand: gmid fetch edf)")
    assert preview([("edf", Rules(), None, False)], BERLIN, now=at(2026, 11, 24), days=14) == []


def test_daily_slot_on_spring_day_runs_once_at_three():
    rules = slots("02:30")
    runs = preview(
        [("x", rules, ok(at(2026, 3, 27, 2, 30)), True)], BERLIN, now=at(2026, 3, 27, 12), days=4
    )
    assert [r[0] for r in runs] == [
        at(2026, 3, 28, 2, 30),
        at(2026, 3, 29, 3, 0),  # 02:30 does not exist that night
        at(2026, 3, 30, 2, 30),
        at(2026, 3, 31, 2, 30),
    ]
    assert runs[1][2] == "slot Sun 02:30"


def test_daily_slot_on_autumn_day_runs_once():
    rules = slots("02:30")
    runs = preview(
        [("x", rules, ok(at(2026, 10, 23, 2, 30)), True)], BERLIN, now=at(2026, 10, 23, 12), days=4
    )
    stamps = [r[0].timestamp() for r in runs]
    assert stamps == [
        at(2026, 10, 24, 2, 30).timestamp(),
        at(2026, 10, 25, 2, 30, fold=0).timestamp(),  # the first 02:30, not the second
        at(2026, 10, 26, 2, 30).timestamp(),
        at(2026, 10, 27, 2, 30).timestamp(),
    ]


def test_weekly_interval_keeps_local_time_across_both_changes():
    spring = plan(Rules(), now=at(2026, 3, 28), last=ok(at(2026, 3, 27, 10, 4)))
    assert spring.at == at(2026, 4, 3, 10, 4) and spring.at.utcoffset() == timedelta(hours=2)
    autumn = plan(Rules(), now=at(2026, 10, 24), last=ok(at(2026, 10, 23, 10, 4)))
    assert autumn.at == at(2026, 10, 30, 10, 4) and autumn.at.utcoffset() == timedelta(hours=1)
    # An interval in hours is absolute time: 12 h after 20:00 CET is 09:00 CEST.
    twelve = Rules(every=timedelta(hours=12))
    p = plan(twelve, now=at(2026, 3, 28, 21), last=ok(at(2026, 3, 28, 20)))
    assert p.at == at(2026, 3, 29, 9) and p.reason == "every 12 hours since Sat Mar 28 20:00"


def test_run_due_on_christmas_waits_until_january_2():
    rules = Rules(quiet=CHRISTMAS)
    p = plan(rules, now=at(2026, 12, 20), last=ok(at(2026, 12, 17, 10, 4)))
    assert p.due == at(2026, 12, 24, 10, 4)
    assert p.at == at(2027, 1, 2, 0, 0)
    assert (
        p.reason
        == "every 7 days since Thu Dec 17 10:04; after quiet hours (2026-12-24..2027-01-01)"
    )
    with_windows = Rules(windows=OFFICE, quiet=CHRISTMAS + WEEKEND)
    p = plan(with_windows, now=at(2026, 12, 20), last=ok(at(2026, 12, 17, 10, 4)))
    assert p.at == at(2027, 1, 4, 8, 0)  # Jan 2 is a Saturday
    assert p.reason.endswith(
        "; after quiet hours (2026-12-24..2027-01-01); window opens Mon Jan 4 08:00"
    )


def test_preview_over_fourteen_days():
    now = at(2026, 11, 20, 12)  # Fri
    office = Rules(windows=OFFICE, quiet=(*WEEKEND, parse_span("2026-11-25")))
    portals = [
        ("weekly", office, ok(at(2026, 11, 16, 10, 4)), True),  # Mon
        ("slots", slots("mon 10:00", "thu 10:00", windows=OFFICE, quiet=WEEKEND), None, True),
        (
            "daily",
            Rules(every=timedelta(days=1), quiet=(parse_span("22:00-06:00"),)),
            ok(at(2026, 11, 20, 6, 30)),
            True,
        ),
        (
            "nightly",
            slots("23:00", quiet=(parse_span("22:00-06:00"),)),
            ok(at(2026, 11, 20, 6)),
            True,
        ),
        ("off", Rules(), None, False),
        ("locked", Rules(), failed(now, "wrong credentials", 1), True),
    ]
    runs = preview(portals, BERLIN, now=now, days=14)
    by_portal = {name: [t for t, p, _ in runs if p == name] for name, *_ in portals}
    assert by_portal["weekly"] == [at(2026, 11, 23, 10, 4), at(2026, 11, 30, 10, 4)]
    # even the first run waits for a slot: slots are the user's word on when codes may come
    assert by_portal["slots"] == [
        at(2026, 11, 23, 10),
        at(2026, 11, 26, 10),
        at(2026, 11, 30, 10),
        at(2026, 12, 3, 10),
    ]
    assert len(by_portal["daily"]) == 14 and len(by_portal["nightly"]) == 14
    assert all(t.hour == 6 and t.minute == 0 for t in by_portal["nightly"])  # 23:00 is quiet
    assert by_portal["off"] == by_portal["locked"] == []
    assert len(runs) == 2 + 4 + 14 + 14
    stamps = [t.timestamp() for t, _, _ in runs]
    assert stamps == sorted(stamps)
    assert all(now <= t < now + timedelta(days=14) for t, _, _ in runs)
    # No run starts in a quiet period of its own rules.
    for name, rules, *_ in portals:
        periods = calendar_for(rules, BERLIN).quiet_periods(now, now + timedelta(days=14))
        assert not any(s <= t < e for t in by_portal[name] for s, e, _ in periods)


def test_preview_reasons():
    now = at(2026, 11, 20, 12)
    portals = [
        ("a", Rules(windows=OFFICE), failed(now, "waiting for code", 2), True),
        ("b", slots("tue 09:30"), None, True),
    ]
    reasons = [(p, r) for _, p, r in preview(portals, BERLIN, now=now, days=7)]
    assert reasons == [
        ("a", "retry 2 after waiting for code"),
        ("b", "first run, slot Tue 09:30"),
    ]


def test_times_in_any_zone_come_out_in_the_calendars():
    p = plan(Rules(windows=OFFICE), now=datetime(2026, 11, 21, 9, tzinfo=UTC), last=None)
    assert p.at == at(2026, 11, 23, 8) and p.at.tzinfo == BERLIN
    assert p.reason == "first run; window opens Mon 08:00"
