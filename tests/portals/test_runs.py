"""Portal runs through a real daemon: the demo portal on loopback, codes typed with `gmid code`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from gmid.demo.portal import DemoPortal, running
from tests.conftest import ROOT, make_daemon_dir

CODE = "246810"

# The `form:` description of the demo portal (gmid/demo/portal.py), as a portal's option.
DEMO_FORM = """\
    form:
      start: {start}
      login:
        form: "form#login"
        fields: {{username: email, password: password}}
        success: {{selector: "a.logout"}}
        failure: {{selector: ".alert"}}
      code:
        when: {{selector: "form#otp"}}
        form: "form#otp"
        field: code
        medium: sms
        prompt: {{selector: ".hint"}}
        failure: {{selector: ".error"}}
      documents:
        pages: [/invoices]
        rows: "table.invoices tbody tr"
        fields:
          id: {{selector: "td.number"}}
          date: {{selector: "td.date", formats: ["%d.%m.%Y"]}}
          number: td.number
          amount: {{selector: "td.amount", decimal: ","}}
        download: {{selector: "a.pdf"}}
        next: {{selector: "a.next"}}
"""

PORTAL = (
    """\
portals:
  - name: energie
    company: Demo Energie
    username: demo
    password: {{command: "echo {password}"}}
"""
    + DEMO_FORM.replace("{start}", "http://127.0.0.1:{port}/login")
    + "runs:\n  code_timeout: {code_timeout}\n"
)


@pytest.fixture
def portal():
    with running(DemoPortal(code=CODE), port=0) as demo:
        yield demo


def _daemon(portal, *, password="demo", code_timeout="30s"):
    extra = PORTAL.format(port=portal.port, password=password, code_timeout=code_timeout)
    # Fetched by hand here; the scheduler's own runs are tested in test_scheduler.py.
    extra = extra.replace("    username: demo", "    enabled: false\n    username: demo", 1)
    return make_daemon_dir(extra=extra).start()


@pytest.fixture
def daemon(portal):
    d = _daemon(portal)
    yield d
    assert d.stop() == 0, d.log_text()
    assert "Traceback" not in d.log_text(), d.log_text()


def gmid(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmid", *args[:1], "--socket", str(daemon.socket), *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def fetch_in_background(daemon) -> subprocess.Popen:
    """`gmid fetch energie --wait` in the background, its output in pipes."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gmid",
            "fetch",
            "--socket",
            str(daemon.socket),
            "energie",
            "--wait",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def _answer_when_asked(
    daemon, code: str, times: int = 1, said: list[str] | None = None
) -> threading.Thread:
    """Type codes with `gmid code` as soon as the portal asks, like a user would; what the
    command printed and its exit code go into `said`."""

    def answer() -> None:
        answered = 0
        deadline = time.monotonic() + 30
        while answered < times and time.monotonic() < deadline:
            pending = daemon.call(lambda c: c.challenges())
            if pending:
                typed = gmid(daemon, "code", "energie", code)
                if said is not None:
                    said.append(f"{typed.returncode}: {typed.stdout}")
                answered += 1
                asked = pending[0].id
                while time.monotonic() < deadline and any(
                    c.id == asked for c in daemon.call(lambda c: c.challenges())
                ):
                    time.sleep(0.05)
            time.sleep(0.05)

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


def test_a_code_typed_with_gmid_code_lets_the_run_finish(daemon, portal):
    said: list[str] = []
    typist = _answer_when_asked(daemon, CODE, said=said)
    result = gmid(daemon, "fetch", "energie", "--wait")
    typist.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert said == ["0: energie: the portal took the code; logged in\n"]
    assert "energie: code (sms): Wir haben Ihnen einen Code per SMS" in result.stdout
    assert "energie: ok: 6 new documents" in result.stdout
    # progress: "logging in" once, and the second list page told from the first
    assert result.stdout.count("logging in") == 1
    assert f"reading http://127.0.0.1:{portal.port}/invoices?page=2" in result.stdout
    docs = daemon.documents(limit=100).documents
    assert len(docs) == 6 and {d.source for d in docs} == {"portal"}
    assert {d.company for d in docs} == {"Demo Energie"}
    newest = max(docs, key=lambda d: d.date)
    assert newest.number == portal.invoices[0]["number"]
    assert newest.amount == portal.invoices[0]["amount"].replace(",", ".")
    assert (daemon.archive / newest.path).read_bytes().startswith(b"%PDF-")
    assert CODE not in daemon.log_text().replace(f"code is {CODE}", "")  # only the portal's SMS

    # The second run reuses the session: no code, no login, and no document bytes.
    downloads = portal.downloads
    again = gmid(daemon, "fetch", "energie", "--wait")
    assert again.returncode == 0 and "ok: 0 new documents" in again.stdout
    assert "the saved session is still valid" in again.stdout
    assert portal.downloads == downloads
    [state] = daemon.status().portals
    assert state.state == "ok" and state.last_run.new_documents == 0
    assert "portal      energie: ok: 0 new documents" in gmid(daemon, "status").stdout

    # A document the user deleted from the archive is downloaded once more and written back.
    target = daemon.archive / newest.path
    content = target.read_bytes()
    target.unlink()
    again = gmid(daemon, "fetch", "energie", "--wait")
    assert again.returncode == 0 and "ok: 0 new documents" in again.stdout
    assert target.read_bytes() == content
    assert portal.downloads == downloads + 1
    assert f"restored {newest.path}" in daemon.log_text()


def test_a_wrong_code_is_asked_again_with_the_portals_words(daemon, portal):
    said: list[str] = []
    typist = _answer_when_asked(daemon, "000000", said=said)
    fetch = fetch_in_background(daemon)
    typist.join()
    # `gmid code` waits for the portal's verdict and says it, with a non-zero exit
    assert said[0].startswith("1: energie: the portal refused the code: Der Code ist falsch")
    assert "refused the last code; asking again" in daemon.log_text()
    deadline = time.monotonic() + 20
    while True:  # the second request carries what the portal said about the first code
        pending = daemon.call(lambda c: c.challenges())
        if pending and pending[0].retry_message:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "Der Code ist falsch" in pending[0].retry_message
    shown = gmid(daemon, "status").stdout
    assert "energie asks for a code: Wir haben Ihnen einen Code per SMS" in shown
    assert "answer with: gmid code energie ANSWER" in shown
    taken = gmid(daemon, "code", pending[0].id, CODE)
    assert taken.returncode == 0 and "energie: the portal took the code" in taken.stdout
    out, _ = fetch.communicate(timeout=30)
    assert fetch.returncode == 0 and "ok: 6 new documents" in out


def test_wrong_password_is_reported_in_the_portals_words(portal):
    d = _daemon(portal, password="nope")
    try:
        result = gmid(d, "fetch", "energie", "--wait")
        assert result.returncode == 4
        assert "energie: wrong credentials" in result.stdout
        assert "E-Mail-Adresse oder Passwort ist falsch." in result.stdout
        [state] = d.status().portals
        assert state.state == "wrong credentials" and not state.credentials_changed
        assert "nope" not in d.log_text()
    finally:
        assert d.stop() == 0


def test_nobody_answers_and_the_run_waits_for_the_code(portal):
    d = _daemon(portal, code_timeout="1s")
    try:
        result = gmid(d, "fetch", "energie", "--wait")
        assert result.returncode == 4
        assert "energie: waiting for code" in result.stdout
        assert d.status().challenges == []
        assert d.documents().documents == []
    finally:
        assert d.stop() == 0


def test_unknown_portal_and_no_pending_code(daemon):
    result = gmid(daemon, "fetch", "nosuch")
    assert result.returncode == 1 and "no portal named 'nosuch'" in result.stderr
    result = gmid(daemon, "code", "energie", "123")
    assert result.returncode == 1 and "no pending challenge" in result.stderr


def test_one_connection_waits_for_a_run_and_answers_its_code_meanwhile(daemon):
    """A TUI keeps one connection: a run it waits for must not block its other calls."""
    from gmid.control.client import ControlClient

    async def scenario():
        async with await ControlClient.connect(daemon.socket) as client:
            run = asyncio.ensure_future(client.fetch("energie", wait=True))
            for _ in range(200):
                pending = await client.challenges()
                if pending:
                    break
                await asyncio.sleep(0.05)
            assert not run.done()
            await client.answer(pending[0].id, CODE)
            return await asyncio.wait_for(run, 30)

    record = asyncio.run(scenario())
    assert record.outcome == "ok" and record.new_documents == 6
