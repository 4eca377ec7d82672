"""Delivery in the running daemon: filed documents reach their destinations, through the outbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, Daemon, make_daemon_dir
from tests.support.mails import invoice_mail, make_pdf
from tests.support.portal_http import serve as http_serve
from tests.support.webdav import serve


def deliver_section(*entries: str) -> str:
    return "deliver:\n" + "".join(entries)


def webdav_entry(url: str, name: str = "cloud", extra: str = "") -> str:
    return (
        f"  - name: {name}\n    type: webdav\n    url: {url}\n    retry: 1s\n"
        f"    retry_max: 2s\n{extra}"
    )


def folder_entry(folder: Path, name: str = "inbox", extra: str = "") -> str:
    return f"  - name: {name}\n    type: folder\n    dir: {folder}\n    retry: 1s\n{extra}"


@pytest.fixture
def make_daemon():
    made: list[Daemon] = []

    def make(extra: str) -> Daemon:
        d = make_daemon_dir(extra=extra)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop(signal.SIGKILL)
        shutil.rmtree(d.dir, ignore_errors=True)


def send_invoice(d: Daemon, i: int, sender: str = "rechnung@telekom.example") -> bytes:
    pdf = make_pdf(f"delivery test invoice {i} from {sender}")
    raw = invoice_mail(sender=sender, pdfs=[(f"R{i}.pdf", pdf)], message_id=f"d{i}@{sender}")
    assert d.send(raw, sender=sender)[0] == 250
    return pdf


def wait_for(what: Callable[[], object], timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def outbox(d: Daemon, **kwargs):
    return d.call(lambda c: c.outbox(**kwargs))


def gmid(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmid", *args, "-c", str(d.config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_filed_documents_reach_webdav_and_a_folder_by_their_filters(make_daemon, tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with serve(tmp_path / "dav") as dav:
        only_telekom = "    when: {companies: [telekom]}\n"
        d = make_daemon(
            deliver_section(webdav_entry(dav.url), folder_entry(inbox, extra=only_telekom))
        ).start()
        telekom = [send_invoice(d, i) for i in range(3)]
        stadtwerke = send_invoice(d, 9, sender="billing@stadtwerke.example")
        wait_for(lambda: len(dav.files()) == 4 and len(list(inbox.iterdir())) == 3)
        assert sorted(dav.files().values()) == sorted([*telekom, stadtwerke])
        assert sorted(p.read_bytes() for p in inbox.iterdir()) == sorted(telekom)
        page = wait_for(lambda: (o := outbox(d)).destinations[0].done == 4 and o)
        assert [(x.name, x.done, x.pending, x.failed) for x in page.destinations] == [
            ("cloud", 4, 0, 0),
            ("inbox", 3, 0, 0),
        ]
        shown = gmid(d, "outbox")
        assert shown.returncode == 0, shown.stderr
        assert "cloud (webdav): 0 pending, 0 failed, 4 delivered" in shown.stdout
        assert d.stop() == 0
        assert "Traceback" not in d.log_text()


def test_a_destination_that_is_down_keeps_documents_pending_until_it_is_back(
    make_daemon, tmp_path: Path
):
    with serve(tmp_path / "dav") as dav:
        port = dav.url.rsplit(":", 1)[1].strip("/")
        dav.stop()
        d = make_daemon(deliver_section(webdav_entry(dav.url))).start()
        started = time.monotonic()
        pdfs = [send_invoice(d, i) for i in range(5)]
        assert time.monotonic() - started < 10  # filing does not wait for the destination
        page = wait_for(lambda: (o := outbox(d)).items and o.items[0].error and o)
        assert {item.state for item in page.items} == {"pending"}
        assert "cannot reach 127.0.0.1" in page.items[0].error
        shown = gmid(d, "outbox")
        assert "cannot reach 127.0.0.1" in shown.stdout
    with serve(tmp_path / "dav", port=int(port)) as back:
        d.call(lambda c: c.retry_deliveries("cloud"))
        wait_for(lambda: len(back.files()) == 5)
        assert sorted(back.files().values()) == sorted(pdfs)
        wait_for(lambda: outbox(d).destinations[0].done == 5)


def test_a_document_refused_for_good_is_failed_with_the_destination_s_words(
    make_daemon, tmp_path: Path
):
    refuse = "    command: \"echo 'not an invoice we book' >&2; exit 65\"\n    retry: 1s\n"
    d = make_daemon(deliver_section(f"  - name: books\n    type: command\n{refuse}")).start()
    send_invoice(d, 1)
    page = wait_for(lambda: (o := outbox(d)).destinations[0].failed == 1 and o)
    time.sleep(2.5)  # more than retry: a refusal for good is not tried again
    page = outbox(d)
    assert [(i.state, i.attempts, i.error) for i in page.items] == [
        ("failed", 1, "not an invoice we book")
    ]
    shown = gmid(d, "outbox")
    assert shown.returncode == 1
    assert "not an invoice we book" in shown.stdout


def test_gmid_deliver_sends_what_was_filed_before_the_destination_existed(
    make_daemon, tmp_path: Path
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d = make_daemon("").start()
    before = [send_invoice(d, i) for i in range(3)]
    d.stop()
    d.config.write_text(d.config.read_text() + deliver_section(folder_entry(inbox)))
    d.start()
    after = send_invoice(d, 7)
    wait_for(lambda: len(list(inbox.iterdir())) == 1)
    assert [p.read_bytes() for p in inbox.iterdir()] == [after]
    done = gmid(d, "deliver", "inbox", "--all")
    assert done.returncode == 0, done.stderr
    assert "inbox: 3 documents queued" in done.stdout
    wait_for(lambda: len(list(inbox.iterdir())) == 4)
    assert sorted(p.read_bytes() for p in inbox.iterdir()) == sorted([*before, after])
    # Again: nothing is queued twice.
    assert "inbox: 0 documents queued" in gmid(d, "deliver", "inbox", "--all").stdout
    unknown = gmid(d, "deliver", "nas", "--all")
    assert unknown.returncode != 0
    assert "no destination 'nas'" in unknown.stderr


def test_a_reload_adds_and_changes_destinations(make_daemon, tmp_path: Path):
    first, second, third = (tmp_path / n for n in ("first", "second", "third"))
    for folder in (first, second, third):
        folder.mkdir()
    d = make_daemon(deliver_section(folder_entry(first, "a"))).start()
    one = send_invoice(d, 1)
    wait_for(lambda: len(list(first.iterdir())) == 1)
    text = d.config.read_text().replace(str(first), str(third))
    d.config.write_text(text + folder_entry(second, "b"))
    reloaded = gmid(d, "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    two = send_invoice(d, 2)
    wait_for(lambda: len(list(second.iterdir())) == 1 and len(list(third.iterdir())) == 1)
    assert [p.read_bytes() for p in first.iterdir()] == [one]  # as before the reload
    assert [p.read_bytes() for p in second.iterdir()] == [two]  # new: from now on
    assert [p.read_bytes() for p in third.iterdir()] == [two]  # a's new folder
    assert [x.name for x in outbox(d).destinations] == ["a", "b"]


def test_a_delivery_hanging_on_a_silent_server_does_not_hold_up_the_stop(make_daemon):
    with http_serve(silent=True) as silent:
        d = make_daemon(deliver_section(webdav_entry(silent.url + "/"))).start()
        send_invoice(d, 1)
        wait_for(lambda: outbox(d).items)
        time.sleep(1)  # the PUT is under way, and its server says nothing
        started = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - started < 8
    assert "Traceback" not in d.log_text()


def test_a_wrong_password_is_told_without_it_in_the_log_or_the_outbox(make_daemon, tmp_path: Path):
    with serve(tmp_path / "dav", user="gmid", password="the-right-one") as dav:
        login = "    username: gmid\n    password: {env: GMID_TEST_DAV_PASSWORD}\n"
        d = make_daemon(deliver_section(webdav_entry(dav.url, extra=login)))
        d.start(env=os.environ | {"GMID_TEST_DAV_PASSWORD": "wrong-Pa55word"})
        send_invoice(d, 1)
        page = wait_for(lambda: (o := outbox(d)).items and o.items[0].error and o)
        assert "401" in page.items[0].error
        assert "check username and password" in page.items[0].error
        shown = gmid(d, "outbox", "--json")
        assert d.stop() == 0
    assert "wrong-Pa55word" not in d.log_text() + shown.stdout
    assert "check username and password" in d.log_text()
    index = (d.state / "index.sqlite").read_bytes()
    assert b"wrong-Pa55word" not in index
