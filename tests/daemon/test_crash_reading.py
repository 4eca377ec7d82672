"""kill -9 while a document is read, filed, kept beside its PDF, renamed or joined by its PDF:
after a restart (and the sender's retry of what got no 250) every file is there once, under a
name the index knows.

The kills land at exact steps (gmid/failpoints.py) in the real daemon process, and at a random
moment while mails of the same invoices arrive in other bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import smtplib
import sqlite3
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.conftest import ROOT, make_daemon_dir
from tests.support.mails import invoice_mail, make_pdf

CORPUS = ROOT / "tests" / "documents" / "corpus"
FACTURX = (CORPUS / "FX" / "EN16931_Einfach.pdf").read_bytes()
CII = (CORPUS / "CII" / "EN16931_Einfach.cii.xml").read_bytes()
SENDER = "rechnung@telekom.example"


def _pdf_and_xml_mail() -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = SENDER
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = "Rechnung 471102"
    msg["Message-ID"] = "<pdf-and-xml@test.example>"
    msg.set_content("Anbei die Rechnung.")
    msg.add_attachment(make_pdf("Rechnung 471102"), maintype="application", subtype="pdf",
                       filename="471102.pdf")  # fmt: skip
    msg.add_attachment(CII, maintype="application", subtype="xml", filename="471102.xml")
    return msg.as_bytes()


def _env(failpoint: str | None) -> dict:
    env = dict(os.environ)
    env.pop("GMID_FAILPOINT", None)
    if failpoint:
        env["GMID_FAILPOINT"] = failpoint
    return env


def _assert_consistent(d) -> None:
    """Every file once, under a name the index knows, with the bytes the index says."""
    db = sqlite3.connect(d.state / "index.sqlite")
    try:
        rows = db.execute("SELECT path, sha256, xml_path FROM documents").fetchall()
        notes = db.execute("SELECT count(*) FROM renames").fetchone()[0]
    finally:
        db.close()
    known = [p for p, _, _ in rows] + [x for _, _, x in rows if x]
    on_disk = [str(p.relative_to(d.archive)) for p in d.archived_files()]
    assert Counter(on_disk) == Counter(known), (on_disk, known)
    for path, sha, _ in rows:
        assert hashlib.sha256((d.archive / path).read_bytes()).hexdigest() == sha
    assert notes == 0
    tmp = d.archive / ".gmid-tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


@pytest.fixture
def d():
    daemon = make_daemon_dir()
    yield daemon
    daemon.stop(signal.SIGKILL)
    shutil.rmtree(daemon.dir, ignore_errors=True)


@pytest.mark.parametrize(
    ("failpoint", "mail"),
    [
        ("archive-linked", lambda: invoice_mail(sender=SENDER, pdfs=[("r.pdf", FACTURX)])),
        ("beside-placed", _pdf_and_xml_mail),
    ],
)
def test_kill_9_while_filing_a_read_document(d, failpoint, mail):
    raw = mail()
    d.start(env=_env(failpoint))
    with pytest.raises((smtplib.SMTPException, OSError)):
        d.send(raw, sender=SENDER)
    assert d.proc.wait(10) == -signal.SIGKILL
    d.start(env=_env(None))
    code, text = d.send(raw, sender=SENDER)  # the sender retries what got no 250
    assert code == 250, text
    _assert_consistent(d)
    [doc] = d.documents().documents
    assert doc.path == "Telekom/2018/2018-03-05 Telekom 471102.pdf"
    assert d.stop() == 0


def _unread_document(d) -> str:
    """File the Factur-X, then make it look as an older gmid left it: unread, named by day."""
    d.start(env=_env(None))
    code, text = d.send(invoice_mail(sender=SENDER, pdfs=[("r.pdf", FACTURX)]), sender=SENDER)
    assert code == 250, text
    assert d.stop() == 0
    db = sqlite3.connect(d.state / "index.sqlite")
    [(path,)] = db.execute("SELECT path FROM documents").fetchall()
    old = "Telekom/2024-03-15 Telekom.pdf"
    (d.archive / path).rename(d.archive / old)
    db.execute(
        "UPDATE documents SET path = ?, date = NULL, number = NULL, read_version = 0", (old,)
    )
    db.commit()
    db.close()
    return old


@pytest.mark.parametrize("failpoint", ["rename-noted", "rename-linked", "rename-indexed"])
def test_kill_9_while_the_daemon_renames_a_document_it_read_again(d, failpoint):
    _unread_document(d)
    # The background reindex renames it and dies there, perhaps before its socket answered
    # (RuntimeError from start): the exit code below says how it ended.
    with contextlib.suppress(RuntimeError):
        d.start(env=_env(failpoint))
    assert d.proc.wait(30) == -signal.SIGKILL
    d.start(env=_env(None))
    deadline = time.monotonic() + 30
    while (doc := d.documents().documents[0]).number is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert doc.path == "Telekom/2018/2018-03-05 Telekom 471102.pdf"
    _assert_consistent(d)
    assert d.stop() == 0


def _xml_only_mail() -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = SENDER
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = "E-Rechnung 471102"
    msg["Message-ID"] = "<xml-only@test.example>"
    msg.set_content("Anbei die E-Rechnung.")
    msg.add_attachment(CII, maintype="application", subtype="xml", filename="471102.xml")
    return msg.as_bytes()


@pytest.mark.parametrize("failpoint", ["swap-noted", "swap-linked", "swap-indexed"])
def test_kill_9_while_a_pdf_takes_its_xml_only_invoices_place(d, failpoint):
    d.start(env=_env(None))
    assert d.send(_xml_only_mail(), sender=SENDER)[0] == 250
    assert d.stop() == 0
    pdf_mail = invoice_mail(sender=SENDER, pdfs=[("r.pdf", FACTURX)])
    d.start(env=_env(failpoint))
    with pytest.raises((smtplib.SMTPException, OSError)):
        d.send(pdf_mail, sender=SENDER)
    assert d.proc.wait(10) == -signal.SIGKILL
    d.start(env=_env(None))
    _assert_consistent(d)  # the swap finished or undone: no file the index does not know
    code, text = d.send(pdf_mail, sender=SENDER)  # the sender retries what got no 250
    assert code == 250, text
    _assert_consistent(d)
    [doc] = d.documents().documents
    assert doc.path == "Telekom/2018/2018-03-05 Telekom 471102.pdf"
    assert doc.xml_path == "Telekom/2018/2018-03-05 Telekom 471102.xml"
    assert d.stop() == 0


def _send_all(port: int, mails: list[bytes], accepted: list[int]) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for i, raw in enumerate(mails):
                smtp.sendmail(SENDER, ["invoices@gmid.local"], raw)
                accepted.append(i)
    except (OSError, smtplib.SMTPException):
        pass  # killed under us


def test_kill_9_at_a_random_moment_while_the_same_invoices_come_twice(d):
    """Each invoice as a plain PDF with its XML, then as a Factur-X: one document each."""
    mails = []
    for _ in range(3):
        mails += [_pdf_and_xml_mail(), invoice_mail(sender=SENDER, pdfs=[("f.pdf", FACTURX)])]
    rng = random.Random(16)
    for _round in range(3):
        d.start(env=_env(None))
        accepted: list[int] = []
        sender = threading.Thread(target=_send_all, args=(d.smtp_port, mails, accepted))
        sender.start()
        time.sleep(rng.uniform(0.0, 0.4))
        d.proc.send_signal(signal.SIGKILL)
        sender.join(60)
        d.proc.wait(10)
        d.start(env=_env(None))
        _assert_consistent(d)
        assert d.stop() == 0
    d.start(env=_env(None))
    for raw in mails:  # whatever got no 250 comes again
        assert d.send(raw, sender=SENDER)[0] == 250
    _assert_consistent(d)
    [doc] = d.documents().documents  # the plain PDF and the Factur-X: one invoice
    assert doc.path == "Telekom/2018/2018-03-05 Telekom 471102.pdf"
    assert d.stop() == 0
