"""Exactly once after any crash: kill -9 the daemon while it files and delivers, restart it, and
count the documents on the WebDAV server's own disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Daemon, make_daemon_dir
from tests.deliver.test_daemon import outbox, send_invoice, wait_for, webdav_entry
from tests.support.mails import invoice_mail, make_pdf
from tests.support.webdav import WebDav, serve

DOCUMENTS = 500
KILLS = 3


@pytest.fixture
def daemon_with_dav(tmp_path: Path):
    with serve(tmp_path / "dav", threads=16) as dav:
        extra = "deliver:\n" + webdav_entry(dav.url, extra="    concurrency: 4\n")
        d = make_daemon_dir(extra=extra)
        try:
            yield d, dav
        finally:
            d.stop(signal.SIGKILL)
            shutil.rmtree(d.dir, ignore_errors=True)


def on_server(dav: WebDav) -> Counter:
    """How many times each content is on the server's disk, by its sha256."""
    return Counter(hashlib.sha256(data).hexdigest() for data in dav.files().values())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Sender(threading.Thread):
    """Sends every mail until the daemon has answered 250 to each, across its restarts."""

    def __init__(self, d: Daemon, mails: list[bytes]):
        super().__init__(daemon=True)
        self.d, self.mails, self.sent = d, mails, 0

    def run(self) -> None:
        while self.sent < len(self.mails):
            try:
                with smtplib.SMTP("127.0.0.1", self.d.smtp_port, timeout=10) as smtp:
                    while self.sent < len(self.mails):
                        smtp.sendmail(
                            "rechnung@telekom.example",
                            ["invoices@gmid.local"],
                            self.mails[self.sent],
                        )
                        self.sent += 1
            except (OSError, smtplib.SMTPException):
                time.sleep(0.2)  # killed under us: again, once it is back


@pytest.mark.timeout(400)
def test_three_kill_9_while_filing_and_delivering_leave_every_document_once_on_the_server(
    daemon_with_dav,
):
    d, dav = daemon_with_dav
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    pdfs = [
        make_pdf(f"kill test {seed} {i}", size=rng.randrange(2_000, 60_000))
        for i in range(DOCUMENTS)
    ]
    mails = [
        invoice_mail(
            sender="rechnung@telekom.example", pdfs=[(f"R{i}.pdf", pdf)], message_id=f"k{i}@t"
        )
        for i, pdf in enumerate(pdfs)
    ]
    d.start()
    sender = Sender(d, mails)
    sender.start()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.5, 4.0))
        d.stop(signal.SIGKILL)
        d.start(timeout=30)
    sender.join(300)
    assert sender.sent == DOCUMENTS, f"seed {seed}"
    wait_for(lambda: outbox(d).destinations[0].done == DOCUMENTS, timeout=200)
    counts = on_server(dav)
    assert sum(counts.values()) == DOCUMENTS, f"seed {seed}: {sum(counts.values())} files"
    assert counts == Counter(sha(pdf) for pdf in pdfs), f"seed {seed}"
    assert d.status().documents == DOCUMENTS
    assert d.stop() == 0


def test_a_document_filed_just_before_a_crash_is_queued_at_the_restart(daemon_with_dav):
    d, dav = daemon_with_dav
    d.start(env=os.environ | {"GMID_FAILPOINT": "deliver-before-queue"})
    pdf = make_pdf("filed, then the crash")
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("R.pdf", pdf)])
    # The daemon dies at the failpoint, perhaps before its 250.
    with contextlib.suppress(OSError, smtplib.SMTPException):
        d.send(raw, sender="rechnung@telekom.example")
    assert d.proc is not None and d.proc.wait(10) == -signal.SIGKILL
    assert dav.files() == {}
    d.start()
    wait_for(lambda: on_server(dav) == Counter([sha(pdf)]))
    wait_for(lambda: outbox(d).destinations[0].done == 1)


def test_a_document_sent_just_before_a_crash_is_not_sent_again(daemon_with_dav):
    d, dav = daemon_with_dav
    d.start(env=os.environ | {"GMID_FAILPOINT": "deliver-sent"})
    pdf = send_invoice(d, 1)
    assert d.proc is not None and d.proc.wait(10) == -signal.SIGKILL
    assert on_server(dav) == Counter([sha(pdf)])
    d.start()
    page = wait_for(lambda: (o := outbox(d, states=["done"])).items and o)
    # Tried again (the first attempt was never recorded), and found there.
    assert page.items[0].reference.startswith(dav.url)
    assert on_server(dav) == Counter([sha(pdf)])
