"""Suggesting a portal: real pages on loopback, drafts that the real config loader accepts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gmid.archive.index import Index
from gmid.config.load import load_config
from gmid.errors import GmidError, InsecureTransport, PortalError, PortalUnavailable
from gmid.portals.suggest import Login, suggest
from tests.conftest import ROOT, make_daemon_dir
from tests.support.portal_http import page, redirect, serve
from tests.support.runner import started_runner

CONFIG = """\
timezone: Europe/Berlin
state_dir: {state}
archive:
  dir: {archive}
control:
  socket: {socket}
smtp:
  enabled: false
"""

LOGIN_PAGE = """<!doctype html>
<html><head><title>Anmelden | Stadtwerke Example</title></head><body>
<form action="/search"><input name="q"></form>
<form id="login-form" method="post" action="/session">
  <input type="hidden" name="csrf_token" value="abc123">
  <input type="email" name="user_email">
  <input type="password" name="user_pass">
  <input type="checkbox" name="remember" value="1">
  <button type="submit">Anmelden</button>
</form>
</body></html>
"""

LANDING = """<!doctype html>
<html><head><title>Stadtwerke Example – Startseite</title></head><body>
<a href="/tarife">Tarife</a> <a href="/login/passwort-vergessen">Passwort vergessen?</a>
<a href="/kunden/login">Anmelden</a>
</body></html>
"""

NO_FORM = "<!doctype html><html><head><title>Shop</title></head><body><p>Hi</p></body></html>"


@pytest.fixture
def setup(tmp_path: Path):
    """A config with `include: portals.d/*.yaml`, and its index."""

    def make(include: str | None = "portals.d/*.yaml"):
        text = CONFIG.format(
            state=tmp_path / "state", archive=tmp_path / "archive", socket=tmp_path / "s.sock"
        )
        if include is not None:
            text += f"include: {include}\n"
        path = tmp_path / "config.yaml"
        path.write_text(text)
        index = Index(tmp_path / "index.sqlite")
        made.append(index)
        return load_config(path), index

    made: list[Index] = []
    yield make
    for index in made:
        index.close()


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _suggestions(index: Index) -> list[tuple]:
    return index.query("SELECT url, domain, draft FROM suggestions ORDER BY id")


def _portal(draft: str) -> dict:
    return yaml.safe_load(Path(draft).read_text())["portals"][0]


def test_login_form_gives_a_disabled_draft_that_loads(setup, tmp_path):
    config, index = setup()
    with serve({("GET", "/login"): page(LOGIN_PAGE)}) as portal:
        result = suggest(
            portal.url + "/login", domain="stadtwerke.example", config=config, index=index
        )

    draft = Path(result["draft"])
    assert draft == tmp_path / "portals.d" / "stadtwerke-example.yaml"
    assert stat.S_IMODE(draft.stat().st_mode) == 0o640
    assert result["form_found"] is True
    assert result["login_url"] == portal.url + "/login"
    entry = _portal(result["draft"])
    assert entry["name"] == "stadtwerke-example"
    assert entry["enabled"] is False
    assert entry["company"] == "Stadtwerke Example"
    assert entry["username"] == "TODO"
    assert entry["password"] == {"env": "GMID_STADTWERKE_EXAMPLE_PASSWORD"}
    login = entry["form"]["login"]
    assert entry["form"]["start"] == portal.url + "/login"
    assert login["form"] == "form#login-form"
    assert login["fields"] == {"username": "user_email", "password": "user_pass"}
    assert "static" not in login
    text = draft.read_text()
    assert "# TODO: the selector of an element shown only when logged in" in text
    assert 'static: {remember: "1"}' in text  # offered as a comment only
    assert any(t.startswith("login.success:") for t in result["todo"])
    assert any(t.startswith("documents.pages:") for t in result["todo"])

    # the whole config, include and all, loads with the draft in it
    loaded = load_config(config.path)
    assert draft in loaded.included_files
    [portal_config] = loaded.portals
    assert portal_config.name == "stadtwerke-example" and not portal_config.enabled
    assert portal_config.options["login"]["form"] == "form#login-form"

    assert _suggestions(index) == [(portal.url + "/login", "stadtwerke.example", str(draft))]


def test_a_login_link_is_followed_once(setup):
    config, index = setup()
    routes = {
        ("GET", "/"): page(LANDING),
        ("GET", "/kunden/login"): redirect("/kunden/login/form"),
        ("GET", "/kunden/login/form"): page(LOGIN_PAGE),
    }
    with serve(routes) as portal:
        result = suggest(portal.url + "/", domain=None, config=config, index=index)
    assert [r.path for r in portal.requests] == ["/", "/kunden/login", "/kunden/login/form"]
    assert result["domain"] == "127.0.0.1"
    assert result["form_found"] is True
    assert result["login_url"] == portal.url + "/kunden/login/form"
    entry = _portal(result["draft"])
    assert entry["name"] == "127-0-0-1"
    assert entry["form"]["start"] == portal.url + "/kunden/login/form"
    assert entry["company"] == "Stadtwerke Example"  # from the landing page's title
    load_config(config.path)


def test_no_form_anywhere_still_gives_a_draft_with_todos(setup):
    config, index = setup()
    landing = NO_FORM.replace("<p>Hi</p>", '<a href="/account">Sign in</a>')
    routes = {("GET", "/"): page(landing), ("GET", "/account"): page(NO_FORM)}
    with serve(routes) as portal:
        result = suggest(portal.url + "/", domain="shop.example", config=config, index=index)
    assert [r.path for r in portal.requests] == ["/", "/account"]  # one link, not more
    assert result["form_found"] is False
    assert result["login_url"] == portal.url + "/account"
    assert any(t.startswith("form.start: no login form") for t in result["todo"])
    entry = _portal(result["draft"])
    assert "form" not in entry["form"]["login"] and "fields" not in entry["form"]["login"]
    assert entry["company"] == "Shop"
    assert load_config(config.path).portals[0].name == "shop-example"


def test_a_broken_login_link_still_gives_a_draft(setup):
    config, index = setup()
    landing = NO_FORM.replace("<p>Hi</p>", '<a href="/gone">Log in</a>')
    with serve({("GET", "/"): page(landing)}) as portal:
        # user info in the address stays out of the index and the draft
        address = portal.url.replace("http://", "http://me:secret@") + "/"
        result = suggest(address, domain=None, config=config, index=index)
    assert result["form_found"] is False
    assert result["login_url"] == portal.url + "/"
    assert any("login link could not be opened" in t and "404" in t for t in result["todo"])
    assert "secret" not in Path(result["draft"]).read_text()
    assert _suggestions(index) == [(portal.url + "/", "127.0.0.1", result["draft"])]
    load_config(config.path)


def test_an_existing_draft_is_not_overwritten(setup, tmp_path):
    config, index = setup()
    folder = tmp_path / "portals.d"
    folder.mkdir()
    (folder / "stadtwerke-example.yaml").write_text("# mine\n")
    with serve({("GET", "/login"): page(LOGIN_PAGE)}) as portal:
        url = portal.url + "/login"
        first = suggest(url, domain="stadtwerke.example", config=config, index=index)
        second = suggest(url, domain="stadtwerke.example", config=config, index=index)
    assert (folder / "stadtwerke-example.yaml").read_text() == "# mine\n"
    assert first["draft"] == str(folder / "stadtwerke-example-2.yaml")
    assert second["draft"] == str(folder / "stadtwerke-example-3.yaml")
    assert _portal(second["draft"])["name"] == "stadtwerke-example-3"
    assert [p.name for p in load_config(config.path).portals] == [
        "stadtwerke-example-2",
        "stadtwerke-example-3",
    ]
    assert sorted(os.listdir(folder)) == [
        "stadtwerke-example-2.yaml",
        "stadtwerke-example-3.yaml",
        "stadtwerke-example.yaml",
    ]  # no temp file left behind


def test_without_include_the_draft_goes_to_portals_d_with_a_note(setup, tmp_path):
    config, index = setup(include=None)
    with serve({("GET", "/"): page(LOGIN_PAGE)}) as portal:
        result = suggest(portal.url + "/", domain="x.example", config=config, index=index)
    assert Path(result["draft"]).parent == tmp_path / "portals.d"
    assert "include: portals.d/*.yaml" in result["note"]


def test_an_include_in_another_folder_is_used(setup, tmp_path):
    config, index = setup(include="more/**/*.yml")
    with serve({("GET", "/"): page(LOGIN_PAGE)}) as portal:
        result = suggest(portal.url + "/", domain="x.example", config=config, index=index)
    # "*.yml" would not take a .yaml file: the default folder, and a note saying so
    assert Path(result["draft"]).parent == tmp_path / "portals.d"
    assert "does not take it" in result["note"]


def test_unreachable_is_a_clear_error_and_writes_nothing(setup, tmp_path):
    config, index = setup()
    url = f"http://127.0.0.1:{_closed_port()}/login"
    with pytest.raises(PortalUnavailable, match="connection failed"):
        suggest(url, domain="closed.example", config=config, index=index)
    assert not (tmp_path / "portals.d").exists()
    assert _suggestions(index) == [(url, "closed.example", None)]


def test_not_a_web_page_is_a_clear_error(setup, tmp_path):
    config, index = setup()
    pdf = page(b"%PDF-1.4\n", content_type="application/pdf")
    with (
        serve({("GET", "/invoice.pdf"): pdf}) as portal,
        pytest.raises(PortalError, match=r"not a web page \(application/pdf\)"),
    ):
        suggest(portal.url + "/invoice.pdf", domain=None, config=config, index=index)
    assert not (tmp_path / "portals.d").exists()
    assert _suggestions(index)[0][2] is None


@pytest.mark.parametrize(
    "url", ["http://portal.example/login", "ftp://127.0.0.1/", "file:///etc/passwd", "login"]
)
def test_insecure_or_odd_addresses_are_refused_before_anything_is_sent(setup, url):
    config, index = setup()
    with pytest.raises(InsecureTransport):
        suggest(url, domain=None, config=config, index=index)
    assert _suggestions(index) == []


def test_a_redirect_to_plain_http_elsewhere_is_refused(setup):
    config, index = setup()
    # the redirect target is never contacted: the policy refuses it before sending
    elsewhere = redirect("http://portal.example.invalid/login")
    with (
        serve({("GET", "/"): elsewhere}) as portal,
        pytest.raises(GmidError, match="only https is allowed"),
    ):
        suggest(portal.url + "/", domain=None, config=config, index=index)
    assert _suggestions(index)[0][2] is None


# -- through the daemon and the CLI


@pytest.fixture
def daemon_with_include():
    d = make_daemon_dir(extra="include: portals.d/*.yaml\n")
    d.start()
    yield d
    code = d.stop()
    log = d.log_text()
    shutil.rmtree(d.dir, ignore_errors=True)
    assert code == 0, log
    assert "Traceback" not in log, log


def _gmid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmid", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_gmid_suggest_through_the_daemon(daemon_with_include):
    d = daemon_with_include
    with serve({("GET", "/login"): page(LOGIN_PAGE)}) as portal:
        url = portal.url + "/login"
        done = _gmid("suggest", url, "--domain", "stadtwerke.example", "--socket", str(d.socket))
        assert done.returncode == 0, done.stderr
        draft = d.dir / "portals.d" / "stadtwerke-example.yaml"
        assert f"draft written to {draft} (disabled)" in done.stdout
        assert "login.success:" in done.stdout
        assert "`gmid fetch stadtwerke-example --wait`" in done.stdout

        as_json = _gmid("suggest", url, "--json", "--socket", str(d.socket))
        assert as_json.returncode == 0, as_json.stderr
        result = json.loads(as_json.stdout)
        assert result["draft"] == str(d.dir / "portals.d" / "127-0-0-1.yaml")

    assert draft.exists()
    checked = _gmid("check-config", "-c", str(d.config))
    assert checked.returncode == 0, checked.stderr
    assert "2 included files" in checked.stdout
    # The daemon loaded the drafts at once: they are portals now, disabled until edited.
    listed = _gmid("portals", "--socket", str(d.socket))
    assert "stadtwerke-example" in listed.stdout and "disabled" in listed.stdout
    draft.write_text(draft.read_text().replace("enabled: false", "enabled: true"))
    reloaded = _gmid("reload", "--socket", str(d.socket))
    assert reloaded.returncode == 0 and "reloaded" in reloaded.stdout
    listed = _gmid("portals", "--socket", str(d.socket))
    [line] = [x for x in listed.stdout.splitlines() if x.startswith("stadtwerke-example")]
    assert "disabled" not in line  # enabled now: the scheduler plans (and starts) it

    closed = _gmid("suggest", f"http://127.0.0.1:{_closed_port()}/", "--socket", str(d.socket))
    assert closed.returncode != 0
    assert "connection failed" in closed.stderr and "Traceback" not in closed.stderr


# -- a login behind a button, two-step logins, and the documents seen with the user's login

PASSWORD = "s3cr3t-Pa55"
BUTTON_LANDING = """<!doctype html>
<html><head><title>Stadtwerke Example</title></head><body>
<form action="/search"><input name="q"><button>Suchen</button></form>
{form}
</body></html>
"""


@pytest.mark.parametrize(
    ("form", "method"),
    [
        ('<form action="/auth/login"><button type="submit">Anmelden</button></form>', "GET"),
        (
            '<form method="post" action="/auth/login"><input type="hidden" name="t" value="1">'
            '<input type="submit" value="Se connecter"></form>',
            "POST",
        ),
    ],
    ids=["get-form-button", "post-submit-input"],
)
def test_a_login_button_is_followed_once(setup, form, method):
    config, index = setup()
    routes = {
        ("GET", "/"): page(BUTTON_LANDING.format(form=form)),
        (method, "/auth/login"): page(LOGIN_PAGE),
    }
    with serve(routes) as portal:
        result = suggest(portal.url + "/", domain="stadtwerke.example", config=config, index=index)
    assert [(r.method, r.path) for r in portal.requests] == [("GET", "/"), (method, "/auth/login")]
    assert result["form_found"] is True
    entry = _portal(result["draft"])
    assert entry["form"]["login"]["fields"] == {"username": "user_email", "password": "user_pass"}
    assert entry["form"]["start"].startswith(portal.url + "/auth/login")
    load_config(config.path)


IDENTIFIER_PAGE = """<!doctype html>
<html><head><title>Sign in | Example Mail</title></head><body>
<form action="/search"><input name="q"></form>
<form id="identifier" method="post" action="/signin/next">
  <input type="hidden" name="flow" value="f1">
  <input type="email" name="identifier"><button>Next</button>
</form></body></html>
"""
PASSWORD_PAGE = """<!doctype html>
<html><head><title>Sign in | Example Mail</title></head><body>
<form id="pw" method="post" action="/signin/password">
  <input type="hidden" name="flow" value="f2">
  <input type="password" name="Passwd"><button>Next</button>
</form></body></html>
"""
HOME = """<!doctype html><html><head><title>Example Mail</title></head><body>
<a href="/settings">Settings</a> <a href="/signout">Sign out</a></body></html>"""


def _two_step_portal() -> dict:
    def password(request):
        if request.form().get("Passwd") == [PASSWORD]:
            return 302, {"Location": "/home", "Set-Cookie": "sid=1; Path=/"}, b""
        return 200, {"Content-Type": "text/html"}, PASSWORD_PAGE

    return {
        ("GET", "/signin"): page(IDENTIFIER_PAGE),
        ("POST", "/signin/next"): page(PASSWORD_PAGE),
        ("POST", "/signin/password"): password,
        ("GET", "/home"): page(HOME),
        ("GET", "/settings"): page(HOME),
    }


def test_a_two_step_login_is_drafted_as_steps(setup):
    config, index = setup()
    with serve(_two_step_portal()) as portal:
        result = suggest(portal.url + "/signin", domain="mail.example", config=config, index=index)
    assert [r.path for r in portal.requests] == ["/signin"]  # nothing submitted without --login
    assert result["form_found"] is True and result["two_step"] is True
    login = _portal(result["draft"])["form"]["login"]
    assert login["steps"] == [
        {"form": "form#identifier", "username": "identifier"},
        {"form": "TODO", "password": "TODO"},
    ]
    assert "fields" not in login and "form" not in login
    assert any(t.startswith("login.steps: the password page") for t in result["todo"])
    assert load_config(config.path).portals[0].name == "mail-example"


def test_with_the_users_login_the_password_page_is_recognised(setup, caplog):
    config, index = setup()
    login = Login("me@example.org", PASSWORD)
    with serve(_two_step_portal()) as portal:
        result = suggest(
            portal.url + "/signin", domain="mail.example", config=config, index=index, login=login
        )
    sent = [(r.path, r.form()) for r in portal.requests if r.method == "POST"]
    assert sent == [
        ("/signin/next", {"flow": ["f1"], "identifier": ["me@example.org"]}),
        ("/signin/password", {"flow": ["f2"], "Passwd": [PASSWORD]}),
    ]
    assert result["logged_in"] is True
    entry = _portal(result["draft"])
    assert entry["username"] == "me@example.org"
    assert entry["form"]["login"]["steps"] == [
        {"form": "form#identifier", "username": "identifier"},
        {"form": "form#pw", "password": "Passwd"},
    ]
    assert entry["form"]["login"]["success"] == {"selector": 'a[href="/signout"]'}
    assert any(t.startswith("documents:") for t in result["todo"])  # no invoices page there
    text = Path(result["draft"]).read_text()
    assert PASSWORD not in text and PASSWORD not in caplog.text and PASSWORD not in str(result)
    load_config(config.path)


def test_a_wrong_password_is_said_and_the_draft_still_written(setup):
    config, index = setup()
    login = Login("me@example.org", "wrong")
    with serve(_two_step_portal()) as portal:
        result = suggest(
            portal.url + "/signin", domain="mail.example", config=config, index=index, login=login
        )
    assert result["logged_in"] is False
    assert any("password form again" in t for t in result["todo"])
    assert _portal(result["draft"])["form"]["login"]["success"] == {"selector": "TODO"}


def _pdf(name: str) -> bytes:
    return f"%PDF-1.4\n% {name}\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".encode()


INVOICES = [("15.01.2025", "RE-2025-0001", "1.234,50 €"), ("14.02.2025", "RE-2025-0002", "89,90 €")]
ACCOUNT = """<!doctype html><html><head><title>Kundenkonto | Stadtwerke Example</title></head>
<body><nav><a href="/tarife">Tarife</a> <a href="/kunden/rechnungen">Meine Rechnungen</a>
<a href="/logout">Abmelden</a></nav></body></html>"""
INVOICE_ROW = (
    '<tr><td>{}</td><td>{}</td><td class="betrag">{}</td>'
    '<td><a href="/pdf/{}.pdf">PDF</a></td></tr>'
)


def _invoice_portal() -> dict:
    rows = "".join(INVOICE_ROW.format(d, n, a, n) for d, n, a in INVOICES)
    table = (
        "<!doctype html><html><head><title>Rechnungen</title></head><body>"
        '<a href="/logout">Abmelden</a><table class="invoices"><thead><tr><th>Datum</th>'
        f"<th>Nummer</th><th>Betrag</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        "</body></html>"
    )

    def session(request):
        if request.form().get("user_pass") == [PASSWORD]:
            return 302, {"Location": "/kunden", "Set-Cookie": "sid=1; Path=/"}, b""
        return 200, {"Content-Type": "text/html"}, LOGIN_PAGE

    def logged_in(body):
        def answer(request):
            if request.cookies.get("sid") != "1":
                return 302, {"Location": "/login"}, b""
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body

        return answer

    routes = {
        ("GET", "/login"): page(LOGIN_PAGE),
        ("POST", "/session"): session,
        ("GET", "/kunden"): logged_in(ACCOUNT),
        ("GET", "/kunden/rechnungen"): logged_in(table),
        ("GET", "/tarife"): page("<p>Tarife</p>"),
    }
    for _, number, _ in INVOICES:
        pdf = _pdf(number)
        routes[("GET", f"/pdf/{number}.pdf")] = lambda r, pdf=pdf: (
            200,
            {"Content-Type": "application/pdf"},
            pdf,
        )
    return routes


async def test_the_documents_page_is_drafted_and_the_draft_fetches_the_invoices(setup, tmp_path):
    config, index = setup()
    secret_file = tmp_path / "password"
    secret_file.write_text(PASSWORD + "\n")
    secret_file.chmod(0o600)
    login = Login("kunde@example.org", PASSWORD, str(secret_file))
    with serve(_invoice_portal()) as portal:
        result = suggest(
            portal.url + "/login", domain="stadtwerke.example", config=config, index=index,
            login=login,
        )  # fmt: skip
        seen = [r.path for r in portal.requests]
        assert seen == ["/login", "/session", "/kunden", "/kunden/rechnungen"]
        assert result["documents_url"] == portal.url + "/kunden/rechnungen"
        draft = Path(result["draft"])
        entry = _portal(str(draft))
        assert entry["password"] == {"file": str(secret_file)}
        documents = entry["form"]["documents"]
        assert documents["pages"] == ["/kunden/rechnungen"]
        assert documents["rows"] == 'tr:has(a[href$=".pdf" i])'
        assert documents["download"] == {"selector": 'a[href$=".pdf" i]'}
        assert documents["fields"] == {
            "date": {"selector": "td:nth-of-type(1)", "formats": ["%d.%m.%Y"]},
            "number": {"selector": "td:nth-of-type(2)"},
            "amount": {"selector": "td.betrag", "decimal": ","},
        }
        text = draft.read_text()
        assert "# TODO: check" in text and PASSWORD not in text
        assert not any(t.startswith("documents") for t in result["todo"])
        assert any(t.startswith("check: the guessed `documents:`") for t in result["todo"])

        # the draft works: enabled, loaded by the real loader, run by the runner
        draft.write_text(text.replace("enabled: false", "enabled: true"))
        async with started_runner(config.path) as (runner, _config, run_index):
            record = await runner.fetch("stadtwerke-example")
            filed = run_index.query("SELECT number, amount, date FROM documents")
    assert (record.outcome, record.new_documents) == ("ok", 2), record.message
    assert sorted(filed) == [
        ("RE-2025-0001", "1234.50", "2025-01-15"),
        ("RE-2025-0002", "89.90", "2025-02-14"),
    ]
    assert len(list((tmp_path / "archive").rglob("*.pdf"))) == 2


def test_gmid_suggest_with_a_login_through_the_daemon(daemon_with_include, tmp_path):
    d = daemon_with_include
    secret_file = tmp_path / "password"
    secret_file.write_text(PASSWORD + "\n")
    with serve(_invoice_portal()) as portal:
        url = portal.url + "/login"
        args = ["suggest", url, "--login", "kunde@example.org", "--socket", str(d.socket)]
        done = _gmid(*args, "--password-file", str(secret_file))
        assert done.returncode == 0, done.stderr
        # without a terminal to ask on and no file, nothing is sent
        asked = subprocess.run(
            [sys.executable, "-m", "gmid", *args],
            capture_output=True, text=True, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        # nor is a password file taken without a user name
        alone = _gmid("suggest", url, "--password-file", str(secret_file))
    assert "logged in" in done.stdout
    assert f"invoices listed at {portal.url}/kunden/rechnungen" in done.stdout
    draft = d.dir / "portals.d" / "127-0-0-1.yaml"
    entry = _portal(str(draft))
    assert entry["username"] == "kunde@example.org"
    assert entry["password"] == {"file": str(secret_file)}
    assert entry["form"]["documents"]["rows"] == 'tr:has(a[href$=".pdf" i])'
    assert asked.returncode != 0 and "--password-file" in asked.stderr
    assert alone.returncode != 0 and "goes with --login" in alone.stderr
    assert [r.path for r in portal.requests].count("/session") == 1
    for text in (draft.read_text(), done.stdout, done.stderr, d.log_text()):
        assert PASSWORD not in text


def test_a_newsletter_form_is_no_two_step_login(setup):
    config, index = setup()
    newsletter = (
        '<form action="/newsletter" method="post"><input type="email" name="email">'
        "<button>Abonnieren</button></form>"
    )
    landing = LANDING.replace("</body>", newsletter + "</body>")
    routes = {("GET", "/"): page(landing), ("GET", "/kunden/login"): page(LOGIN_PAGE)}
    with serve(routes) as portal:
        result = suggest(portal.url + "/", domain=None, config=config, index=index)
    assert [r.path for r in portal.requests] == ["/", "/kunden/login"]
    assert result["two_step"] is False
    assert _portal(result["draft"])["form"]["login"]["form"] == "form#login-form"


def test_a_password_form_that_would_put_it_in_the_address_is_not_sent(setup):
    config, index = setup()
    get_form = LOGIN_PAGE.replace('method="post" action="/session"', 'action="/session"')
    routes = {("GET", "/login"): page(get_form)}
    with serve(routes) as portal:
        result = suggest(
            portal.url + "/login", domain=None, config=config, index=index,
            login=Login("kunde@example.org", PASSWORD),
        )  # fmt: skip
    assert [r.path for r in portal.requests] == ["/login"]
    assert result["logged_in"] is False
    assert any("in the address (GET); not sent" in t for t in result["todo"])
