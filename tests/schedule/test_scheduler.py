"""The schedule-library driver on the daemon's loop: runs start when planned, not in quiet hours."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from gmid.demo.portal import DemoPortal, running
from gmid.schedule.scheduler import PortalScheduler
from tests.portals.test_runner import SECRET, Setup


@pytest.fixture
def portal():
    with running(DemoPortal(totp=SECRET), port=0) as demo:
        yield demo


@pytest.fixture
def setup(tmp_path, portal, monkeypatch):
    monkeypatch.setenv("GMID_TEST_TOTP", SECRET)
    made: list[Setup] = []

    def make(schedule: str = "") -> Setup:
        folder = tmp_path / str(len(made))
        folder.mkdir()
        made.append(Setup(folder, portal, schedule))
        return made[-1]

    yield make
    for s in made:
        s.index.close()


async def _started(s: Setup) -> PortalScheduler:
    s.events.bind(asyncio.get_running_loop())
    await s.runner.start()
    scheduler = PortalScheduler(s.runner, s.events)
    await scheduler.start()
    return scheduler


async def _until(condition, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_portal_never_run_is_fetched_and_planned_again_a_week_later(setup, portal):
    s = setup()
    scheduler = await _started(s)
    try:
        await _until(lambda: "energie" in s.runner.last)
        record = s.runner.last["energie"]
        assert record.outcome == "ok" and record.new_documents == 6 and not record.manual
        await _until(
            lambda: (
                (scheduler.planned("energie") or None)
                and scheduler.planned("energie").at is not None
            )
        )
        planned = scheduler.planned("energie")
        started = datetime.fromisoformat(record.started_at)
        assert abs(planned.at - (started + timedelta(days=7))) < timedelta(hours=2)
        assert "every 7 days" in planned.reason
    finally:
        await scheduler.stop()


async def test_nothing_starts_in_quiet_hours_and_a_reload_replans(setup, portal):
    today = datetime.now(UTC).astimezone().date()
    days = f"{today - timedelta(days=1)}..{today + timedelta(days=1)}"
    s = setup(f"    schedule: {{quiet: ['{days}']}}\n")
    scheduler = await _started(s)
    try:
        await asyncio.sleep(1.0)
        assert "energie" not in s.runner.last and portal.logins == 0
        planned = scheduler.planned("energie")
        assert planned.at is not None and planned.at.date() >= today + timedelta(days=1)
        assert "quiet" in planned.reason
        # the user lifts the quiet days: the reloaded plan starts the run at once
        portal_config = dataclasses.replace(
            s.config.portals[0], rules=dataclasses.replace(s.config.portals[0].rules, quiet=())
        )
        s.runner.config = dataclasses.replace(s.config, portals=(portal_config,))
        scheduler.replan()
        await _until(lambda: "energie" in s.runner.last)
    finally:
        await scheduler.stop()


async def test_a_disabled_portal_is_never_started(setup, portal):
    s = setup("    enabled: false\n")
    scheduler = await _started(s)
    try:
        await asyncio.sleep(0.5)
        assert portal.logins == 0
        assert scheduler.planned("energie").at is None
        assert "disabled" in scheduler.planned("energie").reason
    finally:
        await scheduler.stop()
