"""kill -9 in the middle of SMTP deliveries: every mail that got 250 is filed exactly once."""

from __future__ import annotations

import hashlib
import signal
import smtplib
import threading
from collections import Counter

from tests.support.mails import invoice_mail, make_pdf

MAILS = 500


def _deliver(daemon, mails, accepted, stop_after, killed):
    """Send mails on one connection until the daemon dies; note which got 250."""
    try:
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            for i, raw in mails:
                smtp.mail("rechnung@stadtwerke.example")
                smtp.rcpt("invoices@gmid.local")
                code, _ = smtp.data(raw)
                if code == 250:
                    accepted.add(i)
                if len(accepted) >= stop_after and not killed.is_set():
                    killed.set()
                    daemon.proc.send_signal(signal.SIGKILL)
    except (OSError, smtplib.SMTPException):
        pass  # the daemon was killed under us


def test_kill_9_during_500_deliveries_loses_and_duplicates_nothing(daemon_dir):
    daemon = daemon_dir.start()
    pdfs = {i: make_pdf(f"crash test invoice {i}") for i in range(MAILS)}
    mails = [
        (
            i,
            invoice_mail(
                sender="rechnung@stadtwerke.example",
                subject=f"R {i}",
                pdfs=[(f"R{i}.pdf", pdfs[i])],
                message_id=f"crash-{i}@test.example",
            ),
        )
        for i in range(MAILS)
    ]
    accepted: set[int] = set()
    killed = threading.Event()
    threads = [
        threading.Thread(target=_deliver, args=(daemon, mails[k::2], accepted, 180, killed))
        for k in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert killed.is_set(), "the daemon was never killed"
    daemon.proc.wait(10)
    assert 180 <= len(accepted) < MAILS

    daemon.start()
    want = {hashlib.sha256(pdfs[i]).hexdigest() for i in accepted}
    _assert_filed_once(daemon, want)
    tmp = daemon.archive / ".gmid-tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), "temp files left after restart"

    # An MTA retries what got no 250; the mail in flight at the kill must not double.
    rest = [m for m in mails if m[0] not in accepted]
    for _i, raw in rest:
        code, text = daemon.send(raw, sender="rechnung@stadtwerke.example")
        assert code == 250, text
    _assert_filed_once(daemon, {hashlib.sha256(p).hexdigest() for p in pdfs.values()})
    assert daemon.stop() == 0


def _assert_filed_once(daemon, want: set[str]) -> None:
    on_disk = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in daemon.archived_files())
    assert want <= set(on_disk), f"{len(want - set(on_disk))} accepted mails are not on disk"
    assert all(n == 1 for n in on_disk.values()), "a document is on disk twice"
    docs = daemon.documents(limit=1000).documents
    indexed = Counter(d.sha256 for d in docs)
    assert want <= set(indexed), f"{len(want - set(indexed))} accepted mails are not indexed"
    assert all(n == 1 for n in indexed.values()), "a document is indexed twice"
    for d in docs:
        assert hashlib.sha256((daemon.archive / d.path).read_bytes()).hexdigest() == d.sha256
