"""The portal dialog's "Try" under the pilot: the trial runs in a real daemon, the code the
portal asks for comes up in the code prompt, and the trace shows what was requested and
matched, the rows, and nothing is recorded."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
import yaml

from tests.conftest import make_daemon_dir
from tests.connectors import test_form as shop
from tests.support.portal_http import serve
from tests.tui.test_tui import SIZE, choose, rows, until
from tui.app import GmidApp
from tui.dialogs.portal import PortalDialog
from tui.dialogs.prompt import CodePrompt
from tui.dialogs.trial import TryScreen


@pytest.fixture
def daemon():
    with serve(shop.Shop(code=True)) as served:
        entry = {
            "name": "shop",
            "company": "Shop GmbH",
            "enabled": False,
            "username": shop.USER,
            "password": shop.PASSWORD,
            "form": yaml.safe_load(shop.DESCRIPTION.format(url=served.url)),
        }
        d = make_daemon_dir(extra=yaml.safe_dump({"portals": [entry]})).start()
        yield d
        code, log = d.stop(), d.log_text()
        shutil.rmtree(d.dir, ignore_errors=True)
        assert code == 0, log
        assert "Traceback" not in log and shop.PASSWORD not in log


async def test_try_in_the_portal_dialog_asks_the_code_and_shows_the_trace(daemon):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:shop" in rows(app), what="the portal's row")
        await pilot.press("enter")
        assert isinstance(app.screen, PortalDialog)
        await choose(pilot, "Try step by step")
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the code prompt")
        assert "Wir haben einen Code an +49 *** 12 gesendet." in str(
            app.screen.query_one("#prompt-text").render()
        )
        [trial] = [screen for screen in app.screen_stack if isinstance(screen, TryScreen)]
        # meanwhile the trial says what it is doing
        await until(pilot, lambda: "logging in" in str(trial.query_one("#trace").render()))
        await pilot.press(*shop.CODE, "enter")
        await until(pilot, lambda: app.screen is trial, what="the trial again")
        await until(pilot, lambda: len(trial.lines) > 1, what="the trace")

        text = "\n".join(trial.lines)
        assert "code.form  form#otp: 1 match" in text
        assert "documents.rows  table.invoices tbody tr: 2 matches" in text
        assert "5 documents listed:" in text and "Strom Juni" in text
        assert text.endswith("ok: logged in; 5 documents listed")
        assert shop.CODE not in text and shop.PASSWORD not in text
        shown = str(trial.query_one("#trace").render())
        assert "documents.rows" in shown

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, PortalDialog), what="the dialog")
        # a trial is no run: the portal has none, and no document
        assert app.model.portals["shop"].last_run is None
    with sqlite3.connect(daemon.state / "index.sqlite") as db:
        for table in ("documents", "portal_refs", "portal_runs"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
