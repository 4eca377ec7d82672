"""The TUI's prompt for a captcha widget's token, against a real daemon and the demo portal.

The portal guards its login with its reCAPTCHA-style widget; the prompt says where to solve it
and what to paste, and takes a long pasted token (a wrong one first: the portal's words come
back in the next prompt).
"""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input

from gmid.demo.portal import CAPTCHA_FAILED, DemoPortal, captcha_token, running
from tests.portals.test_runner import SECRET as TOTP
from tests.portals.test_solver import SECRET, start_daemon
from tests.tui.test_tui import SIZE, _stop, cell, rows, text_of, until
from tui.app import GmidApp
from tui.dialogs.prompt import CodePrompt
from tui.screens.home import HomeScreen


@pytest.fixture
def portal():
    demo = DemoPortal(totp=TOTP, captcha="recaptcha", captcha_secret=SECRET)
    with running(demo, port=0) as served:
        yield served


@pytest.fixture
def daemon(portal):
    d = start_daemon(portal)
    yield d
    _stop(d)


async def paste(pilot, text: str) -> None:
    """Paste into the prompt's input, as a terminal delivers a paste (one event)."""
    pilot.app.screen.query_one("#answer", Input).post_message(events.Paste(text))
    await pilot.pause()


async def test_the_token_prompt_says_where_to_solve_and_takes_a_long_pasted_token(daemon, portal):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:energie" in rows(app), what="the portal's row")
        await app.client.fetch("energie")
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the token prompt")
        prompt = app.screen
        await until(pilot, lambda: prompt.query(".dialog-title"), what="the prompt's title")
        assert text_of(app, ".dialog-title") == "energie asks for a captcha token"
        steps = text_of(app, "#token-steps")
        assert f"open http://127.0.0.1:{portal.port}/login in a browser" in steps
        assert "document.querySelector('[name=g-recaptcha-response]').value" in steps
        assert app.screen.query_one("#answer", Input).placeholder == "paste the token"

        await pilot.press("escape")  # later: the home screen says what the portal waits for
        assert isinstance(app.screen, HomeScreen)
        assert cell(app, "p:energie", "state").startswith("waiting for capt")  # cut to fit
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the prompt again")
        prompt = app.screen

        await paste(pilot, "'03AFcWeA" + "x" * 3000 + "'")  # long, and refused by the portal
        assert len(prompt.query_one("#answer", Input).value) == 3010
        await pilot.press("enter")
        await until(
            pilot,
            lambda: isinstance(app.screen, CodePrompt) and app.screen is not prompt,
            what="the second prompt",
        )
        assert CAPTCHA_FAILED in text_of(app, "#retry")
        await paste(pilot, captcha_token(SECRET))
        await pilot.press("enter")
        await until(pilot, lambda: app.model.portals["energie"].state == "ok", what="the run")
    assert portal.captcha_refused == 1 and len(portal.tokens_used) == 1
