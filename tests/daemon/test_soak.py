"""Soak: 2,000 SMTP deliveries while the daemon is killed with SIGKILL five times.

Three senders behave like an MTA: a mail that got no 250 (the connection died under it) is
sent again once the daemon is back. At the end every mail was acknowledged, each document is
on disk and in the index exactly once, no temp file is left, and `gmid verify` agrees.
Set GMID_SOAK_SEED to replay a run; the seed is printed (pytest -s shows it).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import smtplib
import threading
import time
from collections import Counter, deque

import pytest

from tests.cli.test_cli import gmid
from tests.conftest import Daemon
from tests.support.mails import invoice_mail, make_pdf

MAILS = 2000
SENDERS = 3
KILLS = 5
SENDER = "rechnung@stadtwerke.example"
DEADLINE = 150.0  # seconds for the whole delivery; a healthy run needs a tenth of it


class _Senders:
    """The MTA side: SENDERS threads, each with its share of the mails, retrying until 250."""

    def __init__(self, daemon: Daemon, mails: list[bytes]):
        self.daemon = daemon
        self.mails = mails
        self.lock = threading.Lock()
        self.acked: set[int] = set()
        self.data_sent = 0  # DATA commands, retries included
        self.unanswered = 0  # DATA that got no reply: the daemon died under it
        self.already = 0  # 250 "already archived": filed before a kill, answered after it
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(deque(range(k, len(mails), SENDERS)),))
            for k in range(SENDERS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def _run(self, pending: deque[int]) -> None:
        while pending and not self.stop.is_set():
            try:
                # The port changes at each restart (listen 127.0.0.1:0): ask again each time.
                with smtplib.SMTP("127.0.0.1", self.daemon.smtp_port, timeout=20) as smtp:
                    smtp.ehlo()
                    while pending and not self.stop.is_set():
                        self._one(smtp, pending)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)  # down or restarting: reconnect, as an MTA retries

    def _one(self, smtp: smtplib.SMTP, pending: deque[int]) -> None:
        i = pending[0]
        code, text = smtp.mail(SENDER)
        if code != 250:
            raise smtplib.SMTPException(f"MAIL FROM: {code} {text!r}")
        code, text = smtp.rcpt("invoices@gmid.local")
        if code != 250:
            raise smtplib.SMTPException(f"RCPT TO: {code} {text!r}")
        with self.lock:
            self.data_sent += 1
        try:
            code, text = smtp.data(self.mails[i])
        except (OSError, smtplib.SMTPException):
            with self.lock:
                self.unanswered += 1
            raise
        if code == 250:
            pending.popleft()
            with self.lock:
                self.acked.add(i)
                self.already += b"already archived" in text
        elif code // 100 == 4:
            smtp.rset()  # a temporary failure: try this mail again
        else:
            with self.lock:
                self.errors.append(f"mail {i}: {code} {text!r}")
            pending.popleft()  # an MTA would bounce it: counted as lost below


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _all_rows(daemon: Daemon) -> list:
    docs, offset = [], 0
    while True:
        page = daemon.documents(limit=1000, offset=offset)
        docs += page.documents
        offset += len(page.documents)
        if not page.documents or offset >= page.total:
            return docs


@pytest.mark.timeout(240)
def test_2000_deliveries_survive_five_kill_9(daemon_dir):
    seed = int(os.environ.get("GMID_SOAK_SEED", str(random.SystemRandom().randrange(2**32))))
    print(f"\nsoak seed {seed} (GMID_SOAK_SEED={seed} replays the kill points)")
    rng = random.Random(seed)
    started = time.monotonic()
    pdfs = [make_pdf(f"soak invoice {i}") for i in range(MAILS)]
    mails = [
        invoice_mail(
            sender=SENDER,
            subject=f"Rechnung {i}",
            pdfs=[(f"R{i}.pdf", pdf)],
            message_id=f"soak-{i}@test.example",
        )
        for i, pdf in enumerate(pdfs)
    ]
    # Kill when so many mails are acknowledged, plus a few random milliseconds: the kill lands
    # anywhere in a delivery (reading DATA, writing the temp file, linking, committing, replying).
    kill_points = sorted(rng.sample(range(100, MAILS - 100), KILLS))
    delays = [rng.uniform(0, 0.03) for _ in kill_points]
    daemon = daemon_dir.start()
    senders = _Senders(daemon, mails)
    senders.start()
    kills = 0
    try:
        for point, delay in zip(kill_points, delays, strict=True):
            _wait(lambda p=point: len(senders.acked) >= p, DEADLINE, f"{point} acknowledgements")
            time.sleep(delay)
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(10)
            kills += 1
            daemon.start(timeout=30)
        _wait(lambda: len(senders.acked) + len(senders.errors) >= MAILS, DEADLINE, "all mails")
    finally:
        senders.join(30)
    delivered = time.monotonic() - started

    tmp_left = [p for p in (daemon.archive / ".gmid-tmp").iterdir()]
    tmp_left += [p for p in (daemon.state / "quarantine" / ".gmid-tmp").iterdir()]
    on_disk = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in daemon.archived_files())
    indexed = Counter(d.sha256 for d in _all_rows(daemon))
    want = {hashlib.sha256(pdf).hexdigest(): i for i, pdf in enumerate(pdfs)}
    archived = sum(1 for sha in want if on_disk[sha] >= 1 and indexed[sha] >= 1)
    duplicates = sum(n - 1 for n in on_disk.values() if n > 1)
    duplicates += sum(n - 1 for n in indexed.values() if n > 1)
    strangers = (set(on_disk) | set(indexed)) - set(want)
    lost = sum(1 for sha, i in want.items() if i in senders.acked and not on_disk[sha])
    log = daemon.log_text()
    adopted = log.count("adopting ")  # files a kill left between link and index row
    temps_removed = sum(
        int(line.split("removed ", 1)[1].split()[0])
        for line in log.splitlines()
        if "temp file(s) left by an interrupted write" in line
    )
    verified = gmid("verify", "--json", "-c", str(daemon.config), timeout=120)
    report = json.loads(verified.stdout)
    print(
        f"soak: seed {seed}, mails {MAILS}, DATA sent {senders.data_sent}, unanswered "
        f"{senders.unanswered}, acknowledged {len(senders.acked)} ({senders.already} as "
        f"'already archived'), archived {archived}, duplicates {duplicates}, lost {lost}, "
        f"kills {kills}, adopted after a kill {adopted}, temp files removed at restart "
        f"{temps_removed}, left {len(tmp_left)}, verify "
        f"{'OK' if report['ok'] else report['counts']}, {delivered:.1f} s delivering, "
        f"{time.monotonic() - started:.1f} s in all"
    )
    assert kills == KILLS
    assert not senders.errors, senders.errors[:5]
    assert len(senders.acked) == MAILS, "some mails were never acknowledged"
    assert lost == 0 and archived == MAILS
    assert duplicates == 0 and not strangers
    assert not tmp_left, tmp_left
    assert verified.returncode == 0 and report["ok"], report["problems"][:5]
    assert report["checked"]["rows"] == report["checked"]["files"] == MAILS
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log_text()
