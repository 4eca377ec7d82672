"""`gmid session import|show|clear`: a browser's cookies.txt as a portal's session, for real.

A plain HTTP client logs in to the demo portal on 127.0.0.1 (as the user would in a browser),
its cookies are exported as cookies.txt the way a browser extension writes it, imported through
the CLI and the control socket, and the next run gets in with no login form at all.
"""

from __future__ import annotations

import asyncio
import re
import stat
import time

import pytest
import requests
from textual.widgets import Input

from gmid.control import protocol as p
from gmid.demo.portal import DemoPortal, running
from gmid.errors import ControlError
from tests.portals.test_runs import CODE, _answer_when_asked, _daemon, gmid
from tests.tui.test_tui import SIZE, choose, rows, until
from tui.app import GmidApp
from tui.dialogs.common import AskPath, Confirm
from tui.dialogs.portal import PortalDialog


@pytest.fixture
def portal():
    with running(DemoPortal(code=CODE), port=0) as demo:
        yield demo


@pytest.fixture
def daemon(portal):
    d = _daemon(portal)
    yield d
    assert d.stop() == 0, d.log_text()
    assert "Traceback" not in d.log_text(), d.log_text()


def browser_login(portal) -> requests.Session:
    """Log in as a user does in a browser: the form, the SMS code, "remember this device"."""
    browser = requests.Session()
    base = f"http://127.0.0.1:{portal.port}"
    page = browser.get(f"{base}/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    browser.post(f"{base}/login", data={"csrf": csrf, "email": "demo", "password": "demo"})
    browser.post(f"{base}/otp", data={"code": CODE, "remember": "1"})
    assert 'class="logout"' in browser.get(f"{base}/invoices").text
    return browser


def export(browser: requests.Session, *extra: str) -> str:
    """The browser's cookies as "Get cookies.txt LOCALLY" writes them (CRLF, 0 = session)."""
    lines = ["# Netscape HTTP Cookie File", "# This is a generated file! Do not edit.", ""]
    for c in browser.cookies:
        prefix = "#HttpOnly_" if c.has_nonstandard_attr("HttpOnly") else ""
        lines.append(
            f"{prefix}{c.domain}\tFALSE\t{c.path}\tFALSE\t{c.expires or 0}\t{c.name}\t{c.value}"
        )
    return "\r\n".join([*lines, *extra, ""])


def values(browser: requests.Session) -> list[str]:
    return [c.value for c in browser.cookies]


def jar(daemon):
    return daemon.state / "sessions" / "energie.cookies"


def test_a_browsers_cookies_log_in_with_no_form_at_all(daemon, portal, tmp_path):
    browser = browser_login(portal)
    logins = portal.logins  # the browser's own login
    later = int(time.time()) + 86400
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        export(
            browser,
            f".google.com\tTRUE\t/\tTRUE\t{later}\tNID\tgoogle-secret-value",
            "127.0.0.1\tFALSE\t/\tFALSE\t1000000000\tstale\tstale-secret-value",
        ),
        newline="",
    )
    result = gmid(daemon, "session", "import", "energie", str(cookies))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "energie: session imported: 3 cookies for 127.0.0.1 (visitor, sid, device)" in out
    assert "dropped 1 cookie of other sites: .google.com (1)" in out
    assert "dropped 1 expired cookie: stale" in out
    assert stat.S_IMODE(jar(daemon).stat().st_mode) == 0o600
    saved = jar(daemon).read_text()
    assert "google" not in saved and "stale" not in saved

    shown = gmid(daemon, "session", "show", "energie")
    assert shown.returncode == 0
    assert re.search(r"sid\s+127\.0\.0\.1\s+/\s+end of session\s+httponly", shown.stdout)
    assert re.search(
        r"device\s+127\.0\.0\.1\s+/\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+httponly", shown.stdout
    )

    run = gmid(daemon, "fetch", "energie", "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the saved session is still valid" in run.stdout
    assert "logging in" not in run.stdout
    assert "energie: ok: 6 new documents" in run.stdout
    assert portal.logins == logins  # no password login, no code: the form was never used

    said = out + shown.stdout + run.stdout + daemon.log_text()
    for secret in [*values(browser), "google-secret-value", "stale-secret-value"]:
        assert secret not in said
    assert "session imported (3 cookies for 127.0.0.1)" in daemon.log_text()


def test_cookies_of_another_site_are_refused_and_the_session_stays(daemon, portal, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(export(browser_login(portal)))
    assert gmid(daemon, "session", "import", "energie", str(good)).returncode == 0
    before = jar(daemon).read_bytes()

    other = tmp_path / "other.txt"
    other.write_text(
        "# Netscape HTTP Cookie File\n"
        ".example.com\tTRUE\t/\tTRUE\t0\tsid\tother-secret\n"
        ".example.com\tTRUE\t/\tTRUE\t0\tcsrf\tother-secret\n"
        "localhost\tFALSE\t/\tFALSE\t0\tsid\tother-secret\n"
        "this line is not a cookie\n"
    )
    result = gmid(daemon, "session", "import", "energie", str(other))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "gmid: energie: the file has no cookie for 127.0.0.1, the portal's site; it has cookies "
        "for .example.com (2), localhost (1)."
    )
    assert "its saved session is unchanged" in result.stderr
    assert "  line 5: expected 7 tab-separated fields, found 1" in result.stderr
    assert "other-secret" not in result.stderr + daemon.log_text()
    assert jar(daemon).read_bytes() == before

    expired = tmp_path / "expired.txt"
    expired.write_text("127.0.0.1\tFALSE\t/\tFALSE\t1000000000\tsid\tx\n")
    result = gmid(daemon, "session", "import", "energie", str(expired))
    assert result.returncode == 1 and "every cookie for 127.0.0.1 in the file has expired" in (
        result.stderr
    )

    json_export = tmp_path / "cookies.json"
    json_export.write_text('[{"domain": "127.0.0.1", "name": "sid", "value": "x"}]')
    result = gmid(daemon, "session", "import", "energie", str(json_export))
    assert result.returncode == 1 and "JSON export, not cookies.txt" in result.stderr

    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tcaf\xe9\n")
    result = gmid(daemon, "session", "import", "energie", str(latin))
    assert result.returncode == 1 and "is not UTF-8 text (line 1, byte 33)" in result.stderr

    huge = tmp_path / "huge.txt"
    huge.write_text("# padding\n" * 60000)
    result = gmid(daemon, "session", "import", "energie", str(huge))
    assert result.returncode == 1 and "is larger than 512 KB" in result.stderr

    result = gmid(daemon, "session", "import", "nosuch", str(good))
    assert result.returncode == 1 and "no portal named 'nosuch'" in result.stderr
    assert jar(daemon).read_bytes() == before


def test_clear_forgets_the_session_and_the_next_run_logs_in_again(daemon, portal, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(export(browser_login(portal)))
    assert gmid(daemon, "session", "import", "energie", str(cookies)).returncode == 0
    logins = portal.logins

    result = gmid(daemon, "session", "clear", "energie")
    assert result.returncode == 0
    assert result.stdout == "energie: saved session forgotten; the next run logs in\n"
    assert not jar(daemon).exists()
    result = gmid(daemon, "session", "show", "energie")
    assert result.stdout == "energie: no saved session; the next run logs in\n"
    result = gmid(daemon, "session", "clear", "energie")
    assert result.stdout == "energie: there was no saved session\n"

    typist = _answer_when_asked(daemon, CODE)  # no remembered device any more: a code again
    run = gmid(daemon, "fetch", "energie", "--wait")
    typist.join()
    assert run.returncode == 0 and "energie: ok: 6 new documents" in run.stdout
    assert "logging in" in run.stdout and portal.logins == logins + 1


def test_a_run_under_way_makes_import_and_clear_busy(daemon, portal, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(export(browser_login(portal)))

    async def scenario(client):
        await client.fetch("energie")  # no session yet: it waits for the SMS code
        for _ in range(200):
            if await client.challenges():
                break
            await asyncio.sleep(0.05)
        errors = []
        for call in (
            client.import_session_file("energie", cookies),
            client.clear_session("energie"),
        ):
            with pytest.raises(ControlError) as e:
                await call
            errors.append(e.value)
        shown = await client.session("energie")  # reading is fine meanwhile
        await client.answer("energie", CODE)
        return errors, shown

    errors, shown = daemon.call(scenario)
    assert [e.code for e in errors] == [p.BUSY, p.BUSY]
    assert "a run of energie is under way: import the session when it has ended" in str(errors[0])
    assert "forget the session when it has ended" in str(errors[1])
    assert shown.saved is False
    deadline = time.monotonic() + 20
    while daemon.status().portals[0].state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The run ended: its own session is saved, and now an import may replace it.
    assert jar(daemon).exists()
    assert gmid(daemon, "session", "import", "energie", str(cookies)).returncode == 0


def test_the_socket_takes_text_not_paths_and_checks_its_parameters(daemon, tmp_path):
    path = tmp_path / "cookies.txt"
    path.write_text("127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tx\n")

    async def scenario(client):
        codes = []
        for params in (
            {"portal": "energie", "path": str(path)},
            {"portal": "energie"},
            {"portal": "energie", "text": 42},
            {"text": "x"},
        ):
            with pytest.raises(ControlError) as e:
                await client.call("portal.session.import", **params)
            codes.append(e.value.code)
        answer = await client.import_session("energie", path.read_text())
        return codes, answer, await client.recent_events()

    codes, answer, events = daemon.call(scenario)
    assert codes == [p.INVALID_PARAMS] * 4
    imported = [e.data for e in events if e.type == "session.imported"]
    assert imported == [{"portal": "energie", "cookies": 1}]
    assert answer.imported == 1 and answer.cookies[0].name == "sid"
    assert "x" not in [v for c in answer.to_dict()["cookies"] for v in c.values()]


async def test_the_portal_dialog_imports_and_forgets_a_session(daemon, portal, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(export(browser_login(portal)))
    other = tmp_path / "other.txt"
    other.write_text(".example.com\tTRUE\t/\tTRUE\t0\tsid\tother\n")
    app = GmidApp(daemon.socket)
    said = _notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:energie" in rows(app), what="the portal's row")
        await pilot.press("enter")
        assert isinstance(app.screen, PortalDialog)

        await choose(pilot, "Import session")
        assert isinstance(app.screen, AskPath)
        assert "cookies.txt" in str(app.screen.query_one(".question").render())
        app.screen.query_one("#path", Input).value = str(other)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PortalDialog))
        await until(pilot, lambda: _said(said, "no cookie for 127.0.0.1"), what="the refusal")
        assert not jar(daemon).exists()

        await choose(pilot, "Import session")
        app.screen.query_one("#path", Input).value = str(cookies)
        await pilot.press("enter")
        await until(pilot, lambda: jar(daemon).exists(), what="the session saved")
        await until(pilot, lambda: _said(said, "session imported: 3 cookies for 127.0.0.1"))

        await choose(pilot, "Forget session")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await until(pilot, lambda: not jar(daemon).exists(), what="the session forgotten")
        await until(pilot, lambda: _said(said, "energie: session forgotten"))

        await choose(pilot, "Import session")
        app.screen.query_one("#path", Input).value = str(tmp_path / "missing.txt")
        await pilot.press("enter")
        await until(pilot, lambda: _said(said, "missing.txt: No such file"))

        # With the session in place, Start download gets in without a code prompt.
        await choose(pilot, "Import session")
        app.screen.query_one("#path", Input).value = str(cookies)
        await pilot.press("enter")
        await until(pilot, lambda: jar(daemon).exists())
        logins = portal.logins
        await choose(pilot, "Start download")
        await until(pilot, lambda: app.model.portals["energie"].state == "ok", what="the run")
        assert portal.logins == logins


def _notes(app) -> list[str]:
    """What the app tells the user from now on (every screen's notify calls the app's)."""
    said: list[str] = []
    notify = app.notify

    def record(message, *args, **kwargs):
        said.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = record
    return said


def _said(said: list[str], text: str) -> bool:
    return any(text in message for message in said)
