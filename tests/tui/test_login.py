"""A portal's login in the TUI: changed in the portal dialog, tried in the add dialog.

A real daemon on a temp socket and a small portal on 127.0.0.1 that accepts one password only;
the TUI under its pilot, keys and buttons as a user presses them.
"""

from __future__ import annotations

import html
import shutil
import stat

import pytest
import yaml
from textual.widgets import DataTable, Input, OptionList

from gmid.demo.portal import DemoPortal, running
from tests.conftest import make_daemon_dir
from tests.support.mails import make_pdf
from tests.support.portal_http import Request, serve
from tests.tui.test_tui import FORM, SIZE, choose, fill, rows, text_of, until
from tui.app import GmidApp
from tui.dialogs.add import AddScreen
from tui.dialogs.common import LoginForm
from tui.dialogs.portal import PortalDialog

USER = "kunde@example.org"
OLD = "old-Pw-only-for-tests"
NEW = "new-Pw-only-for-tests"
REFUSED = "Benutzername oder Passwort ist falsch."

DESCRIPTION = """\
start: {url}/login
login: {{form: "form#login", fields: {{username: user, password: pw}},
        success: {{selector: "a.logout"}}, failure: {{selector: ".alert"}}}}
documents:
  pages: [/invoices]
  rows: "table.invoices tbody tr"
  fields: {{id: {{selector: "td.number"}}, number: td.number}}
  download: {{selector: "a.pdf"}}
"""


class Shop:
    """A portal that takes USER with one password; it logs in to /home, lists one invoice."""

    def __init__(self, password: str):
        self.password = password

    def routes(self) -> dict:
        return {
            ("GET", "/login"): lambda r: self.login_page(),
            ("POST", "/login"): self.login,
            ("GET", "/home"): lambda r: self.inside(r, '<a class="logout" href="/">Abmelden</a>'),
            ("GET", "/invoices"): lambda r: self.inside(r, INVOICES),
            ("GET", "/files/1.pdf"): lambda r: self.inside(r, make_pdf("RE-1"), "application/pdf"),
        }

    def login_page(self, error: str = ""):
        alert = f'<p class="alert">{html.escape(error)}</p>' if error else ""
        body = f"""<html><body>{alert}<form id="login" method="post" action="/login">
<input type="text" name="user"><input type="password" name="pw">
<button type="submit">Anmelden</button></form></body></html>"""
        return 200, {"Content-Type": "text/html; charset=utf-8"}, body

    def login(self, request: Request):
        form = request.form()
        if form.get("user") != [USER] or form.get("pw") != [self.password]:
            return self.login_page(REFUSED)
        return 303, {"Location": "/home", "Set-Cookie": "sid=in; Path=/"}, b""

    def inside(self, request: Request, body, content_type: str = "text/html; charset=utf-8"):
        if request.cookies.get("sid") != "in":
            return 303, {"Location": "/login"}, b""
        return 200, {"Content-Type": content_type}, body


INVOICES = """<html><body><a class="logout" href="/">Abmelden</a><table class="invoices"><tbody>
<tr><td class="number">RE-1</td><td><a class="pdf" href="/files/1.pdf">PDF</a></td></tr>
</tbody></table></body></html>"""


def _stop(daemon) -> str:
    """Stop the daemon, check it ended well, remove its folder; return its log."""
    code, log = daemon.stop(), daemon.log_text()
    shutil.rmtree(daemon.dir, ignore_errors=True)
    assert code in (0, None), log
    assert "Traceback" not in log, log
    return log


@pytest.fixture
def shop():
    portal = Shop(NEW)
    with serve(portal.routes()) as served:
        yield served


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def changing(shop):
    """A daemon with the shop added in portals.d, with another user name and an old password."""
    d = make_daemon_dir(extra="include: portals.d/*.yaml\n")
    secret = d.state / "secrets" / "shop.password"
    secret.parent.mkdir(mode=0o700, parents=True)
    secret.write_text(OLD + "\n")
    secret.chmod(0o600)
    entry = {
        "name": "shop",
        "company": "Shop GmbH",
        "enabled": False,
        "username": "someone-else",
        "password": {"file": str(secret)},
        "form": yaml.safe_load(DESCRIPTION.format(url=shop.url)),
    }
    (d.dir / "portals.d").mkdir()
    (d.dir / "portals.d" / "shop.yaml").write_text(yaml.safe_dump({"portals": [entry]}))
    d.start()
    yield d
    log = _stop(d)
    assert NEW not in log


async def test_the_login_changed_in_the_portal_dialog_is_stored_and_used(changing, shop):
    d = changing
    secret = d.state / "secrets" / "shop.password"
    app = GmidApp(d.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:shop" in rows(app), what="the portal's row")
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("p:shop"))
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, PortalDialog)

        await choose(pilot, "Change login")
        assert isinstance(app.screen, LoginForm)
        password = app.screen.query_one("#login-password", Input)
        assert password.password  # typed, it shows as dots
        assert app.screen.query_one("#login-user", Input).value == "someone-else"
        await fill(pilot, "login-user", USER)
        await fill(pilot, "login-password", NEW)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PortalDialog), what="saved")
        await until(pilot, lambda: app.model.portals["shop"].username == USER)

        assert secret.read_text() == NEW + "\n"  # the secret store, the owner's only
        assert mode(secret) == 0o600
        text = (d.dir / "portals.d" / "shop.yaml").read_text()
        assert yaml.safe_load(text)["portals"][0]["password"] == {"file": str(secret)}
        assert NEW not in text

        await choose(pilot, "Start download")  # the portal only takes the new password
        await until(pilot, lambda: app.model.portals["shop"].state == "ok", what="the run")
        assert app.model.portals["shop"].last_run.new_documents == 1
        assert ("POST", "/login") in [(r.method, r.path) for r in shop.requests]


@pytest.fixture
def in_config_yaml(shop):
    """A daemon with the shop in config.yaml, which gmid does not rewrite."""
    portal = {
        "name": "shop",
        "enabled": False,
        "username": USER,
        "password": {"env": "GMID_NO_SUCH_VARIABLE"},
        "form": yaml.safe_load(DESCRIPTION.format(url=shop.url)),
    }
    d = make_daemon_dir(extra=yaml.safe_dump({"portals": [portal]})).start()
    yield d
    _stop(d)


async def test_a_config_yaml_portal_offers_no_login_change(in_config_yaml):
    app = GmidApp(in_config_yaml.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:shop" in rows(app), what="the portal's row")
        await pilot.press("enter")
        assert isinstance(app.screen, PortalDialog)
        await choose(pilot, "Change login")  # disabled: nothing opens
        await pilot.pause()
        assert isinstance(app.screen, PortalDialog)
        options = app.screen.query_one("#action-list", OptionList)
        shown = [options.get_option_at_index(i) for i in range(options.option_count)]
        [login] = [o for o in shown if str(o.prompt).startswith("Change login")]
        assert login.disabled and "change it there" in str(login.prompt)


@pytest.fixture
def adding(shop):
    """A daemon with no portal and a form description of the shop to add it from."""
    d = make_daemon_dir(extra="include: portals.d/*.yaml\n")
    (d.dir / "forms").mkdir()
    form = {"description": "the shop of this test", "company": "Shop GmbH"}
    form["form"] = yaml.safe_load(DESCRIPTION.format(url=shop.url))
    (d.dir / "forms" / "shop.yaml").write_text(yaml.safe_dump(form))
    d.start()
    yield d
    log = _stop(d)
    assert NEW not in log and OLD not in log


async def to_the_portal_form(pilot, search: str) -> None:
    """The add screen's portal form with the one description found by `search` picked."""
    app = pilot.app
    await until(pilot, lambda: app.model.connected)
    await pilot.press("a")
    assert isinstance(app.screen, AddScreen)
    await pilot.press("enter")  # an online portal
    await until(pilot, lambda: app.screen.connectors, what="the connectors list")
    await pilot.press(*search, "enter", "enter")
    assert app.screen.query_one("#p-name", Input).value == search


async def test_a_login_is_tried_before_the_portal_is_added(adding, shop):
    d = adding
    app = GmidApp(d.socket)
    async with app.run_test(size=SIZE) as pilot:
        await to_the_portal_form(pilot, "shop")
        await fill(pilot, "p-user", USER)
        await fill(pilot, "p-password", OLD)
        app.screen.query_one("#test-portal").press()
        await until(
            pilot, lambda: "wrong credentials" in text_of(app, "#test-result"), what="refused"
        )
        assert REFUSED in text_of(app, "#test-result")  # the portal's own words

        await fill(pilot, "p-password", NEW)
        app.screen.query_one("#test-portal").press()
        await until(pilot, lambda: "login works" in text_of(app, "#test-result"), what="works")
        assert isinstance(app.screen, AddScreen)  # still to be added

        # Nothing was added, listed, downloaded or kept.
        assert "shop" not in app.model.portals
        assert not (d.dir / "portals.d").exists() or not list((d.dir / "portals.d").iterdir())
        assert not (d.state / "secrets").exists()
        assert not (d.state / "sessions" / "shop.cookies").exists()
        assert [r.path for r in shop.requests if r.path in ("/invoices", "/files/1.pdf")] == []
        assert sum(r.method == "POST" for r in shop.requests) == 2

        app.screen.query_one("#add-portal").press()  # then added as tried
        await until(pilot, lambda: "shop" in app.model.portals, what="the new portal")
        assert (d.dir / "portals.d" / "shop.yaml").exists()


@pytest.fixture
def adding_demo():
    """A daemon with no portal and the description of the demo portal, which asks a code."""
    with running(DemoPortal(), port=0) as demo:
        d = make_daemon_dir(extra="include: portals.d/*.yaml\n")
        (d.dir / "forms").mkdir()
        (d.dir / "forms" / "testportal.yaml").write_text(FORM.format(port=demo.port))
        d.start()
        yield d, demo
        _stop(d)


async def test_a_portal_that_asks_a_code_is_tried_up_to_the_code(adding_demo):
    d, demo = adding_demo
    app = GmidApp(d.socket)
    async with app.run_test(size=SIZE) as pilot:
        await to_the_portal_form(pilot, "testportal")
        await fill(pilot, "p-user", "demo")
        await fill(pilot, "p-password", "demo")
        app.screen.query_one("#test-portal").press()
        result = "#test-result"
        await until(pilot, lambda: "up to the code" in text_of(app, result), what="the test")
        said = " ".join(text_of(app, result).split())
        assert "accepted the user name and password, then asked for a code" in said
        assert "sent by SMS" in said
        assert isinstance(app.screen, AddScreen)  # nobody is asked for the code
        assert not app.model.challenges and not app.model.portals
        assert demo.logins == 1 and demo.downloads == 0
