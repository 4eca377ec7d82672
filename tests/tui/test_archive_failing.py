"""The home page says loudly when the archive could not be written."""

from __future__ import annotations

from textual.widgets import Static

from gmid.control import protocol as p
from tests.tui.test_snapshots import STATUS, app, counted
from tui.messages import Connected


async def test_the_summary_says_the_archive_is_failing():
    quiet = dict(STATUS, challenges=[])  # no code waiting: the home page stays in front
    failing = dict(quiet, archive_failures=2, archive_error="cannot write to the archive")
    async with app().run_test() as pilot:
        for status in (quiet, failing):
            pilot.app.post_message(Connected(None, p.Status.from_dict(status)))
            pilot.app.post_message(counted())
            await pilot.pause()
            await pilot.pause()
            summary = str(pilot.app.screen.query_one("#summary", Static).render())
            failing_shown = "archive FAILING: 2 mail(s) kept in the quarantine" in summary
            assert failing_shown == (status is failing), summary
