"""`gmid try NAME`: a description tried step by step through a real daemon, against portals
served on loopback (the shop and JSON API of the form connector's tests), recording nothing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, make_daemon_dir
from tests.connectors import test_form as shop
from tests.connectors import test_form_json as api
from tests.support.needs import unavailable
from tests.support.portal_http import Request, serve

ECHOED = "s3cret-Pa55word"  # a wrong password the portal echoes back


class EchoShop(shop.Shop):
    """The shop, whose login failure repeats the password it was sent (as some portals do)."""

    def login(self, request: Request):
        sent = shop.fields_of(request).get("pass", "")
        if sent == ECHOED:
            return self.login_page(request, error=f"Passwort {sent} ist falsch.")
        return super().login(request)


# The API portal's HTML list, whose "PDF" links lead to a help page.
NO_PDF = """\
start: {url}/login
login: {{success: {{selector: "a.logout"}}, failure: {{selector: ".error"}}}}
documents:
  pages: [/list.html]
  rows: "table tr"
  download: {{selector: "a.pdf"}}
"""


def _entry(name: str, description: str, url: str, password: str = shop.PASSWORD) -> dict:
    return {
        "name": name,
        "company": f"Firma {name}",
        "enabled": False,  # a draft: runs only by hand
        "username": shop.USER,
        "password": password,
        "form": yaml.safe_load(description.format(url=url)),
    }


@pytest.fixture(scope="module")
def portals():
    with (
        serve(EchoShop()) as html,
        serve(api.Api()) as json_api,
        serve(shop.Shop(code=True)) as otp,
    ):
        yield html, json_api, otp


@pytest.fixture(scope="module")
def daemon(portals):
    html, json_api, otp = portals
    broken = shop.DESCRIPTION.replace("table.invoices tbody tr", "table.bills tbody tr")
    entries = [
        _entry("shop", shop.DESCRIPTION, html.url),
        _entry("broken", broken, html.url),
        _entry("wrongpw", shop.DESCRIPTION, html.url, password=ECHOED),
        _entry("api", api.DESCRIPTION, json_api.url),
        _entry("otp", shop.DESCRIPTION, otp.url),
        _entry("nopdf", NO_PDF, json_api.url),
    ]
    d = make_daemon_dir(extra=yaml.safe_dump({"portals": entries}, sort_keys=False)).start()
    yield d
    assert d.stop() == 0, d.log_text()
    assert "Traceback" not in d.log_text(), d.log_text()
    assert ECHOED not in d.log_text() and shop.PASSWORD not in d.log_text()


def gmid(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmid", *args[:1], "--socket", str(daemon.socket), *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def tried(daemon, *args: str) -> tuple[int, str]:
    done = gmid(daemon, "try", *args)
    assert "Traceback" not in done.stderr, done.stderr
    print(done.stderr + done.stdout)  # shown when a test fails
    return done.returncode, done.stderr + done.stdout  # what it said meanwhile, then the trace


def test_a_working_portal_shows_its_requests_matches_and_rows(daemon, portals):
    code, out = tried(daemon, "shop")
    assert code == 0, out
    html = portals[0]
    # each request: method, URL, status, content type, size, time
    assert f"GET {html.url}/login  200 text/html" in out
    assert f"POST {html.url}/login  303" in out
    assert f"GET {html.url}/invoices?page=2  200 text/html" in out
    assert " ms" in out and " B " in out
    # what each selector matched: how many, the first values
    assert "login.form  form#login: 1 match  «<form id='login'" in out
    assert "documents.rows  table.invoices tbody tr: 2 matches" in out
    assert "documents.fields.date  td.date: 2 of 2 rows  «30.06.2024», «2024-05-31»" in out
    # a date the formats do not read is pointed out (the row's date stays empty)
    assert "documents.fields.date  td.date: 2 of 2 rows  «Ende April», «31.03.2024»\n" in out
    assert "    not read as a date: «Ende April»" in out
    assert "not read as an amount" not in out
    # a link's query values are hidden (signed links carry tokens there), paging's are not
    assert "documents.download  a.pdf: 2 of 2 rows  «/files/0006.pdf?token=…»" in out
    assert "documents.next  a.next: 1 match  «?page=2»" in out
    assert "token=x" not in out
    # the rows as a table, with their fields read
    assert "5 documents listed:" in out
    table = out[out.index("5 documents listed:") :]
    assert "DATE" in table and "NUMBER" in table and "AMOUNT" in table and "TITLE" in table
    assert "2024-06-30  Nr. 2024-0006  1234.50" in table
    assert "Strom Juni" in table
    assert out.rstrip().endswith("ok: logged in; 5 documents listed")


def test_a_wrong_selector_names_the_option_and_shows_no_match(daemon):
    code, out = tried(daemon, "broken")
    assert code == 4
    assert "documents.rows  table.bills tbody tr: 0 matches" in out
    assert "portal changed: broken: documents.rows: selector 'table.bills tbody tr'" in out
    assert "the option to change: documents.rows" in out
    assert "hint: a selector that matches each row of the list" in out
    saved = out.split("the page as gmid got it: ")[1].split()[0]
    assert "<table class='invoices'>" in Path(saved).read_text()  # what the selector missed
    assert "documents listed" not in out  # no rows


def test_a_wrong_password_shows_the_portals_failure_without_the_password(daemon):
    code, out = tried(daemon, "wrongpw")
    assert code == 4
    assert "wrong credentials: wrongpw: the portal refused the user name or password" in out
    assert "the portal said: «Passwort [secret] ist falsch.»" in out
    failure = "login.failure  selector '.alert-danger': 1 match  «Passwort [secret] ist falsch.»"
    assert failure in out
    assert "the option to change: login.failure" in out
    assert ECHOED not in out


def test_a_json_list_shows_what_its_paths_matched(daemon, portals):
    code, out = tried(daemon, "api")
    assert code == 0, out
    assert f"GET {portals[1].url}/api/invoices  200 application/json" in out
    assert "documents.rows  data.invoices: 2 matches  «{" in out
    assert "documents.fields.date  issued: 2 of 2 rows  «2024-06-30», «2024-05-31»" in out
    assert "documents.fields.amount  total_cents: 2 of 2 rows  «123450», «9900»" in out
    assert "documents.next  links.next: 1 match" in out
    assert "5 documents listed:" in out
    assert "2024-06-30  2024/06  1234.50" in out


def test_download_saves_exactly_one_file_and_nothing_is_recorded(daemon, tmp_path):
    into = tmp_path / "tried"
    # the portal's saved session: a trial neither uses nor replaces it
    sessions = daemon.state / "sessions"
    sessions.mkdir(mode=0o700, exist_ok=True)
    saved_session = b'#LWP-Cookies-2.0\nSet-Cookie3: sid=expired; path="/"; domain=127.0.0.1\n'
    (sessions / "shop.cookies").write_bytes(saved_session)
    code, out = tried(daemon, "shop", "--download", "1", "--into", str(into))
    assert code == 0, out
    [saved] = into.iterdir()
    assert saved.read_bytes() == shop.PDF
    assert f"downloaded Nr. 2024-0006: application/pdf, {len(shop.PDF)} B, saved as {saved}" in out
    # no run, no document, no id, no session of the portal's
    assert not daemon.documents().documents
    assert not [f for f in daemon.archive.rglob("*") if f.is_file()]
    assert all(p.last_run is None for p in daemon.status().portals)
    with sqlite3.connect(daemon.state / "index.sqlite") as db:
        assert db.execute("SELECT count(*) FROM portal_refs").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM portal_runs").fetchone() == (0,)
    assert [f.name for f in sessions.iterdir()] == ["shop.cookies"]
    assert (sessions / "shop.cookies").read_bytes() == saved_session
    assert not list((daemon.state / "trials" / "shop").glob("sessions/*"))


def test_the_archive_is_refused_as_the_downloads_folder(daemon):
    code, out = tried(daemon, "shop", "--download", "1", "--into", str(daemon.archive / "x"))
    assert code != 0
    assert "is in the archive: a trial never saves there" in out
    assert not (daemon.archive / "x").exists()


def test_a_disabled_draft_can_be_tried_and_json_output_has_the_steps(daemon):
    assert not any(p.enabled for p in daemon.status().portals)
    done = gmid(daemon, "try", "shop", "--json", "--rows", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    report = json.loads(out)  # stdout holds the JSON only; what it did meanwhile is on stderr
    assert report["outcome"] == "ok" and report["more_rows"] is True
    assert len(report["rows"]) == 2
    kinds = {step["kind"] for step in report["steps"]}
    assert {"request", "match", "note"} <= kinds
    assert shop.PASSWORD not in out


def test_a_code_the_portal_asks_for_is_asked_of_the_user(daemon):
    trial = subprocess.Popen(
        [sys.executable, "-m", "gmid", "try", "--socket", str(daemon.socket), "otp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pending := daemon.call(lambda c: c.challenges())):
            assert trial.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert pending[0].portal == "otp" and pending[0].kind == "code"
        answered = gmid(daemon, "code", "otp", shop.CODE)
        assert answered.returncode == 0, answered.stdout + answered.stderr
        assert answered.stdout.startswith("otp: the portal took the code;"), answered.stdout
        out, err = trial.communicate(timeout=30)
    finally:
        trial.kill()
    assert trial.returncode == 0, out + err
    # not on a terminal, the trial says what the portal asks and how to answer
    assert "otp: code (sms): Wir haben einen Code an +49 *** 12 gesendet." in err
    assert "answer with: gmid code otp ANSWER" in err
    # meanwhile it says what it does, on stderr: stdout has the trace only
    assert "  logging in\n" in err and "  logged in\n" in err
    assert "logging in" not in out
    assert "code.form  form#otp: 1 match" in out
    assert "5 documents listed:" in out
    assert shop.CODE not in out + err


def test_an_unknown_portal_is_named_with_the_known_ones(daemon):
    code, out = tried(daemon, "nosuch")
    assert code != 0
    assert "no portal named 'nosuch' (known: shop, broken, wrongpw, api, otp, nopdf)" in out


def test_a_page_where_a_document_was_expected_names_the_option(daemon, tmp_path):
    into = tmp_path / "tried"
    code, out = tried(daemon, "nopdf", "--download", "1", "--into", str(into))
    assert code == 4
    assert "documents.download  a.pdf: 1 of 1 rows  «/help»" in out
    assert "the portal sent an HTML page instead of a document" in out
    assert "the option to change: documents.download" in out
    assert not list(into.iterdir())  # made, and left empty


def test_a_login_forms_action_is_shown_without_its_session_code():
    from bs4 import BeautifulSoup

    from connectors.form.trace import shown

    page = "<form action='/auth?session_code=Zm9vYmFy&page=2' method='post'></form>"
    form = BeautifulSoup(page, "html.parser").form
    assert shown(form) == "<form action='/auth?session_code=…&page=2' method='post'>"


def test_on_a_terminal_it_asks_the_code_itself_without_echo(daemon, tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        unavailable("tmux is not installed (apt-get install tmux)")
    session = f"gmid-try-{os.getpid()}"
    base = [tmux, "-L", session, "-f", "/dev/null"]  # a server of our own
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("TMUX", None)
    gmid_cmd = Path(sys.executable).parent / "gmid"
    done, out = tmp_path / "exited", tmp_path / "out"
    command = f"{gmid_cmd} try --socket {daemon.socket} otp > {out}; echo $? > {done}; sleep 30"

    def screen() -> str:
        shown = subprocess.run(
            [*base, "capture-pane", "-p", "-t", session], capture_output=True, text=True
        )
        return shown.stdout

    def wait(predicate, what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, f"no {what}:\n{screen()}"
            time.sleep(0.1)

    try:
        subprocess.run(
            [*base, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command],
            check=True,
            env=env,
            timeout=10,
        )
        wait(lambda: "code for otp:" in screen(), "prompt")
        assert "otp: code (sms): Wir haben einen Code an +49 *** 12 gesendet." in screen()
        subprocess.run([*base, "send-keys", "-t", session, shop.CODE, "Enter"], check=True)
        wait(done.exists, "end")
        assert done.read_text().strip() == "0", out.read_text()
        assert shop.CODE not in screen()  # typed without echo
        assert "5 documents listed:" in out.read_text()
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=10)
