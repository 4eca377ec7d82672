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
from gmid.portals.suggest import suggest
from tests.conftest import ROOT, make_daemon_dir
from tests.support.portal_http import page, redirect, serve

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
