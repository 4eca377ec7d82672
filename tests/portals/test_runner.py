"""The portal runner in-process, on real parts: config, archive, index, broker, demo portal."""

from __future__ import annotations

import asyncio
import stat
import time
from datetime import UTC, datetime

import pytest

from gmid.archive.archive import Archive, Incoming
from gmid.archive.index import Index
from gmid.config.load import load_config
from gmid.demo.pdf import simple_pdf
from gmid.demo.portal import DemoPortal, running
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.run import KEEP_PAGES, SAVED_PAGE_CAP, PortalRun
from gmid.portals.runner import PortalRunner
from gmid.schedule.planner import next_run
from gmid.schedule.timerules import calendar_for
from tests.portals.test_runs import PORTAL
from tests.support.portal_http import page, redirect, serve
from tests.support.runner import started_runner

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def portal():
    with running(DemoPortal(totp=SECRET), port=0) as demo:
        yield demo


class Setup:
    """A runner wired like the daemon wires it."""

    def __init__(self, tmp_path, portal, extra: str = "", totp: bool = True):
        wait = "2s" if totp else "30s"  # a human is asked: long enough to stop the daemon
        text = PORTAL.format(port=portal.port, password="demo", code_timeout=wait)
        totp = "    totp_secret: {env: GMID_TEST_TOTP}\n" if totp else ""
        text = text.replace("    form:\n", f"{totp}{extra}    form:\n", 1)
        text = text.replace("medium: sms", "medium: app")  # the code comes from an app
        path = tmp_path / "config.yaml"
        head = f"state_dir: {tmp_path}/state\narchive:\n  dir: {tmp_path}/archive\n"
        path.write_text(head + text)
        self.config = load_config(path)
        self.index = Index(self.config.state_dir / "index.sqlite")
        self.archive = Archive(
            self.config.archive.dir,
            self.config.archive.name,
            self.index,
            self.config.tz,
            quarantine_dir=self.config.state_dir / "quarantine",
        )
        self.events = EventBus()
        self.broker = ChallengeBroker(self.events, image_dir=tmp_path / "challenges")
        self.runner = PortalRunner(self.config, self.archive, self.index, self.broker, self.events)

    async def run(self):
        self.events.bind(asyncio.get_running_loop())
        await self.runner.start()
        return await self.runner.fetch("energie")


@pytest.fixture
def setup(tmp_path, portal, monkeypatch):
    monkeypatch.setenv("GMID_TEST_TOTP", SECRET)
    made = []

    def make(extra: str = "", totp: bool = True) -> Setup:
        made.append(Setup(tmp_path, portal, extra, totp))
        return made[-1]

    yield make
    for s in made:
        s.index.close()


async def test_a_totp_secret_answers_without_asking_anyone(setup, portal):
    s = setup()
    record = await s.run()
    assert record.outcome == "ok" and record.new_documents == 6
    types = {e["type"] for e in s.events.recent}
    assert "challenge.pending" not in types and "portal.finished" in types
    # the second run: the session is still valid, nothing is downloaded
    downloads = portal.downloads
    again = await s.runner.fetch("energie")
    assert again.outcome == "ok" and again.new_documents == 0
    assert portal.downloads == downloads and portal.logins == 1


async def test_a_run_waiting_for_a_code_when_the_daemon_stops_says_so_and_is_retried(setup, portal):
    """Not "waiting for code" with no code asked any more: stopped, and planned again."""
    s = setup(totp=False)  # no secret: a human is asked for the code
    s.events.bind(asyncio.get_running_loop())
    await s.runner.start()
    run = s.runner.fetch("energie")
    for _ in range(200):
        if s.broker.pending():
            break
        await asyncio.sleep(0.05)
    assert s.broker.pending()
    await s.runner.stop()
    record = await run
    assert record.outcome == "stopped" and record.message.startswith("stopped when the daemon")
    last = s.runner.last_run("energie")
    planned = next_run(
        "energie",
        s.config.portals[0].rules,
        calendar_for(s.config.portals[0].rules, s.config.tz),
        now=datetime.now(UTC),
        last=last,
        enabled=True,
    )
    assert planned.reason.startswith("retry 1 after stopped")


async def test_a_session_that_expires_mid_run_logs_in_once_more(setup, portal):
    portal.expire_after = 1  # the list's second page sends us back to the login
    s = setup()
    record = await s.run()
    assert record.outcome == "ok" and record.new_documents == 6
    assert portal.logins == 2


async def test_a_changed_page_is_reported_with_its_selector_and_saved(setup, portal):
    portal.layout = "changed"
    s = setup()
    record = await s.run()
    assert record.outcome == "portal changed"
    assert "table.invoices tbody tr" in record.message
    saved = record.message.rsplit("saved as ", 1)[1]
    page = s.config.state_dir / "pages" / "energie"
    assert saved.startswith(str(page))
    [file] = page.iterdir()
    assert b'class="docs"' in file.read_bytes()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


async def test_an_oversize_download_is_refused_and_nothing_filed(setup, portal):
    s = setup()
    s.config = s.runner.config = _with_runs(s.config, max_download=100)
    record = await s.run()
    assert record.outcome == "error" and "100 byte" in record.message
    assert s.index.count() == 0


async def test_a_document_that_came_by_mail_is_not_filed_twice(setup, portal):
    s = setup()
    first = portal.invoices[0]
    same = simple_pdf(
        [
            "Demo Energie GmbH",
            f"Rechnung {first['number']}",
            f"Datum: {first['date']}",
            f"Betrag: {first['amount']} EUR",
        ]
    )
    s.archive.store(
        Incoming(
            data=same,
            media_type="application/pdf",
            ext=".pdf",
            source="smtp",
            source_name="smtp",
            company="Demo Energie",
            received_at=datetime.now(UTC),
        )
    )
    record = await s.run()
    assert record.new_documents == 5 and s.index.count() == 6
    downloads = portal.downloads
    # a fresh login each time: the session check must not be what spares the downloads
    (s.config.state_dir / "sessions" / "energie.cookies").unlink()
    again = await s.runner.fetch("energie")
    assert again.new_documents == 0 and portal.downloads == downloads


def _with_runs(config, **changes):
    import dataclasses

    return dataclasses.replace(config, runs=dataclasses.replace(config.runs, **changes))


async def test_wrong_credentials_hold_until_they_change_and_no_password_hash_is_kept(
    setup, portal, tmp_path
):
    s = setup()
    s.config = s.runner.config = _with_password(s.config, "hunter2-wrong")
    record = await s.run()
    assert record.outcome == "wrong credentials"
    assert "E-Mail-Adresse oder Passwort ist falsch" in record.portal_message
    [state] = s.runner.states()
    assert state.state == "wrong credentials" and not state.credentials_changed
    s.runner.config = _with_password(s.config, "demo")
    [state] = s.runner.states()
    assert state.credentials_changed
    # the fingerprint is keyed: a plain password's bare hash is nowhere in the index
    import hashlib

    db = (s.config.state_dir / "index.sqlite").read_bytes()
    db += (s.config.state_dir / "index.sqlite-wal").read_bytes()
    assert b"hunter2" not in db
    assert hashlib.sha256(b"hunter2-wrong").hexdigest()[:16].encode() not in db


def _with_password(config, password):
    import dataclasses

    from gmid.config.secretref import SecretRef

    portal = dataclasses.replace(config.portals[0], password=SecretRef("plain", password))
    return dataclasses.replace(config, portals=(portal,))


# --- hostile portals: the run's limits hold ---------------------------------------------------

HOSTILE = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
portals:
  - name: hostile
    company: Hostile
    username: me
    password: {{command: "echo pw"}}
    form:
      start: {url}/login
      login: {{success: {{selector: "a.logout"}}}}
      documents:
        pages: [/invoices]
        rows: "table tr"
        download: {{selector: "a.pdf"}}
runs:
{runs}"""


def _hostile_routes(invoices):
    login = '<form method="post" action="/login"><input name="u"><input type="password" name="p">'
    return {
        ("GET", "/login"): page(login + "</form>"),
        ("POST", "/login"): redirect("/home"),
        ("GET", "/home"): page('<a class="logout" href="/logout">out</a>'),
        ("GET", "/invoices"): invoices,
    }


async def _hostile_run(tmp_path, portal, runs: str, during=None):
    path = tmp_path / "config.yaml"
    path.write_text(HOSTILE.format(tmp=tmp_path, url=portal.url, runs=runs))
    async with started_runner(path) as (runner, config, _index):
        start = time.monotonic()
        future = runner.fetch("hostile")
        if during is not None:
            await during(runner, portal)
        record = await future
        return record, time.monotonic() - start, config


def _dripping(request):
    def body():
        yield b"<html><body><table>"
        for _ in range(300):
            time.sleep(0.1)
            yield b" "

    return 200, {"Content-Type": "text/html"}, body()


def _endless(request):
    def body():
        for _ in range(10**6):
            yield b"<tr><td>x</td></tr>" * 1000

    return 200, {"Content-Type": "text/html"}, body()


async def test_a_dripping_list_page_ends_the_run_at_the_run_timeout(tmp_path):
    with serve(_hostile_routes(_dripping)) as portal:
        record, took, _ = await _hostile_run(
            tmp_path, portal, "  request_timeout: 30s\n  run_timeout: 2s\n"
        )
    assert record.outcome == "timed out", record.message
    assert "runs.run_timeout" in record.message and "/invoices" in record.message
    assert took < 6


async def test_an_endless_list_page_ends_the_run_at_the_page_cap(tmp_path):
    with serve(_hostile_routes(_endless)) as portal:
        record, took, _ = await _hostile_run(tmp_path, portal, "  max_page: 100KB\n")
    assert record.outcome == "portal changed", record.message
    assert "100000 byte cap" in record.message and "runs.max_page" in record.message
    assert took < 10


def test_saved_pages_are_capped_and_only_the_newest_kept(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(HOSTILE.format(tmp=tmp_path, url="http://127.0.0.1:9", runs="  {}\n"))
    config = load_config(path)
    run = PortalRun(config.portals[0], config, None, None, None, None, progress=print, deadline=0.0)
    saved = [run.save_page(f"page{i}", b"x" * (3 * SAVED_PAGE_CAP)) for i in range(KEEP_PAGES + 3)]
    folder = config.state_dir / "pages" / "hostile"
    kept = sorted(folder.iterdir())
    assert kept == saved[-KEEP_PAGES:]
    assert all(p.stat().st_size == SAVED_PAGE_CAP for p in kept)


async def test_stopping_the_runner_ends_a_run_stuck_in_a_dripping_page_at_once(tmp_path):
    stopped = {}

    async def stop_when_dripping(runner, portal):
        while not any(r.path == "/invoices" for r in portal.requests):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        start = time.monotonic()
        await runner.stop()
        stopped["took"] = time.monotonic() - start
        stopped["idle"] = runner.idle()

    with serve(_hostile_routes(_dripping)) as portal:
        record, _, _ = await _hostile_run(
            tmp_path, portal, "  request_timeout: 60s\n", during=stop_when_dripping
        )
    assert stopped["idle"] and stopped["took"] < 2
    assert record.outcome == "stopped" and "stopped when the daemon stopped" in record.message
