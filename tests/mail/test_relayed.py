"""Mail that reaches gmid through other mail software: what it changes, gmid still sees."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gmid.archive.archive import Archive
from gmid.archive.index import Index
from gmid.config.load import load_config
from gmid.mail.ingest import Ingestor, Mail
from tests.support import mails
from tests.support.mails import invoice_mail, make_pdf
from tests.support.needs import unavailable
from tests.support.postfix import Postfix, usable


def _relayed(raw: bytes, *headers: str) -> bytes:
    """The mail as a fetching client hands it on: the trace headers of its delivery on top."""
    return "".join(f"{h}\r\n" for h in headers).encode() + raw


def test_a_plus_tag_lost_in_the_envelope_is_taken_from_the_delivery_headers(daemon):
    """fetchmail's `smtpname` hands every mail to invoices@: the tag the supplier was given
    (me+telekom@provider) survives in Delivered-To / X-Original-To, and picks the company."""
    mail = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", make_pdf("fetched 1"))])
    raw = _relayed(mail, "Delivered-To: me+Stadtwerke@provider.example")
    assert daemon.send(raw, rcpt="invoices@gmid.local")[0] == 250
    mail = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", make_pdf("fetched 2"))])
    raw = _relayed(mail, "X-Original-To: me+ACME@provider.example")
    assert daemon.send(raw, rcpt="invoices@gmid.local")[0] == 250
    companies = sorted(d.company for d in daemon.documents().documents)
    assert companies == ["ACME", "Stadtwerke"]


def test_the_envelope_tag_wins_over_the_delivery_headers(daemon):
    mail = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", make_pdf("both"))])
    raw = _relayed(mail, "Delivered-To: me+ACME@provider.example")
    assert daemon.send(raw, rcpt="invoices+telekom@gmid.local")[0] == 250
    [doc] = daemon.documents().documents
    assert doc.company == "Telekom"


def test_only_the_last_delivery_counts(daemon):
    """Delivered-To lines further down are older hops (or the sender's own words)."""
    mail = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("hops"))])
    raw = _relayed(
        mail, "Delivered-To: me@provider.example", "Delivered-To: me+Forged@provider.example"
    )
    assert daemon.send(raw, rcpt="invoices@gmid.local")[0] == 250
    [doc] = daemon.documents().documents
    assert doc.company == "Telekom"  # by its sender, as without any tag


def _receipt(message_id: str, date: str = "Tue, 01 Dec 2026 10:00:00 +0100") -> bytes:
    return (
        "From: Shop <orders@shop.example>\r\nTo: me@provider.example\r\n"
        f"Subject: Your receipt\r\nDate: {date}\r\nMessage-ID: <{message_id}>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nTotal: 12.34 EUR\r\n"
    ).encode()


def test_a_receipt_relayed_twice_is_kept_once(daemon):
    """Each MTA pass adds its own Received line, so the bytes differ; the Message-ID, sender
    and date say it is the same mail: one .eml, and the second delivery hears so."""
    first = _relayed(_receipt("r-1@shop.example"), "Received: from mx1 by relay; 1 Dec 2026")
    again = _relayed(_receipt("r-1@shop.example"), "Received: from mx2 by relay; 2 Dec 2026")
    assert daemon.send(first)[0] == 250
    code, text = daemon.send(again)
    assert code == 250 and "already archived" in text
    [doc] = daemon.documents().documents
    assert doc.path.endswith(".eml") and str(doc.date) == "2026-12-01"
    assert len([p for p in daemon.archived_files() if p.suffix == ".eml"]) == 1


def test_a_reused_message_id_on_another_day_is_another_receipt(daemon):
    """A shop whose mailer reuses Message-IDs still gets each receipt kept."""
    assert daemon.send(_receipt("same@shop.example"))[0] == 250
    later = _receipt("same@shop.example", date="Wed, 02 Dec 2026 10:00:00 +0100")
    code, text = daemon.send(later)
    assert code == 250 and "already archived" not in text
    assert len(daemon.documents().documents) == 2


def test_a_receipt_with_a_very_long_line_is_stored_not_bounced(daemon):
    """fetchmail bounces a refused mail to its sender at every poll: a receipt whose HTML
    comes in one 8,166-character line is stored as it came."""
    html = "<p>" + "x" * 8_159 + "</p>"
    raw = _receipt("long@shop.example").replace(b"Total: 12.34 EUR\r\n", html.encode() + b"\r\n")
    code, text = daemon.send(raw)
    assert code == 250, text
    [doc] = daemon.documents().documents
    assert html.encode() in (daemon.archive / doc.path).read_bytes()


def test_an_empty_mail_is_refused_and_nothing_is_filed(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail("orders@shop.example")
        smtp.rcpt("invoices@gmid.local")
        for nothing in (b".\r\n", b"\r\n.\r\n"):  # only the dot; one blank line
            smtp.putcmd("data")
            assert smtp.getreply()[0] == 354
            smtp.send(nothing)
            code, text = smtp.getreply()
            assert code == 554 and b"empty" in text
            smtp.mail("orders@shop.example")
            smtp.rcpt("invoices@gmid.local")
        assert smtp.data(_receipt("after-empty@shop.example"))[0] == 250
    assert [d.original_name for d in daemon.documents().documents] == ["Your receipt"]
    assert not any(p.stat().st_size == 0 for p in daemon.archived_files())


def test_the_reply_says_when_a_mail_is_kept_in_the_quarantine(daemon):
    """Not "0 new document(s)": the sender's log says the mail was kept, and why."""
    code, text = daemon.send(mails.nested_multipart_mail(depth=1000))
    assert code == 250 and "kept in the quarantine: " in text and "nesting" in text, text
    assert "0 new document" not in text
    code, text = daemon.send(mails.broken_base64_mail())
    assert code == 250 and "1 new document(s)" in text
    assert "kept in the quarantine too: " in text and "base64" in text, text


def _answer(sock: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def test_a_mail_in_flight_when_the_daemon_stops_is_filed_and_answered(daemon):
    """SIGTERM while a big mail is in DATA: the mail is filed and the sender hears 250 before
    the connection closes (a dropped connection makes an MTA send it again); a session that
    was only connected hears 421."""
    pdf = make_pdf("in flight") + bytes(1_200_000)
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("big.pdf", pdf)])
    with socket.create_connection(("127.0.0.1", daemon.smtp_port), timeout=30) as mta:
        idle = socket.create_connection(("127.0.0.1", daemon.smtp_port), timeout=30)
        for sock in (mta, idle):
            assert _answer(sock).startswith(b"220")
            sock.sendall(b"EHLO relay.example\r\n")
            time.sleep(0.2)
            sock.recv(4096)
        for line in (b"MAIL FROM:<rechnung@telekom.example>", b"RCPT TO:<invoices@gmid.local>"):
            mta.sendall(line + b"\r\n")
            assert _answer(mta).startswith(b"250")
        mta.sendall(b"DATA\r\n")
        assert _answer(mta).startswith(b"354")
        mta.sendall(raw.replace(b"\n.", b"\n.."))  # all of it but the final dot
        time.sleep(0.3)
        daemon.proc.send_signal(signal.SIGTERM)
        assert _answer(idle).startswith(b"421")
        time.sleep(0.5)  # the daemon is stopping now, waiting for this mail
        mta.sendall(b"\r\n.\r\n")
        replies = b""
        while chunk := mta.recv(4096):  # until the daemon closes the connection
            replies += chunk
        idle.close()
    answered, closing = replies.splitlines()
    assert answered.startswith(b"250") and b"1 new document" in answered, replies
    assert closing.startswith(b"421")
    assert daemon.proc.wait(15) == 0
    [filed] = [p for p in daemon.archived_files() if p.suffix == ".pdf"]
    assert filed.read_bytes() == pdf


def _fetchmail(dovecot, daemon, home: Path) -> subprocess.CompletedProcess:
    """One run of fetchmail (its package's program) from the Dovecot INBOX to gmid's listener,
    set up as the README says: every mail to one envelope recipient."""
    binary = shutil.which("fetchmail")
    if binary is None:
        unavailable("fetchmail is not installed (apt-get install fetchmail)")
    home.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(
        f"poll 127.0.0.1 service {dovecot.port} protocol imap auth password\n"
        f'    user "gmid" password "{dovecot.users["gmid"]}" sslproto ""\n'
        f"    smtphost 127.0.0.1/{daemon.smtp_port} smtpname invoices@gmid.local\n"
        "    keep fetchall\n"
    )
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home)}
    return subprocess.run(
        [binary, "-f", str(rc), "-i", str(home / "ids"), "--nosyslog", "-v"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_fetchmail_hands_on_plus_tagged_mail_and_a_receipt_fetched_twice_is_kept_once(
    dovecot, daemon, tmp_path
):
    """The provider delivered to me+Stadtwerke@ (its Delivered-To says so); fetchmail's
    smtpname sends it to invoices@. A receipt fetched again later (fetchall) gets another
    Received line from fetchmail, and is still kept once."""
    pdf = make_pdf("fetched by fetchmail")
    invoice = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", pdf)])
    dovecot.append("INBOX", _relayed(invoice, "Delivered-To: me+Stadtwerke@provider.example"))
    dovecot.append("INBOX", _receipt("fm-1@shop.example"))
    first = _fetchmail(dovecot, daemon, tmp_path / "fm")
    assert first.returncode == 0, first.stderr
    time.sleep(1.1)  # fetchmail's Received line has the time to the second
    again = _fetchmail(dovecot, daemon, tmp_path / "fm")
    assert again.returncode == 0, again.stderr
    said = again.stdout + again.stderr
    assert said.count("OK: already archived") == 2, said
    docs = {d.original_name: d for d in daemon.documents().documents}
    assert docs["r.pdf"].company == "Stadtwerke"
    assert (daemon.archive / docs["r.pdf"].path).read_bytes() == pdf
    receipts = [p for p in daemon.archived_files() if p.suffix == ".eml"]
    assert len(receipts) == 1 and b"(fetchmail" in receipts[0].read_bytes()


def test_the_same_receipt_from_several_relays_at_once_is_kept_once(daemon):
    """Two MTAs (or two queue runners) deliver the same receipt at the same moment, each with
    its own Received line: looking for it and filing it is one step, so it is kept once."""
    copies = [
        _relayed(_receipt("at-once@shop.example"), f"Received: from mx{i} by relay; 1 Dec 2026")
        for i in range(6)
    ]
    with ThreadPoolExecutor(len(copies)) as pool:
        codes = [code for code, _ in pool.map(daemon.send, copies)]
    assert codes == [250] * len(copies)
    assert len([p for p in daemon.archived_files() if p.suffix == ".eml"]) == 1
    assert len(daemon.documents().documents) == 1


def test_the_same_receipt_twice_in_one_batch_is_kept_once(tmp_path):
    """A mailbox sync files its mails in batches: two copies of a receipt in one batch (two
    relays delivered both to the folder) are one document, the second told as known."""
    (tmp_path / "c.yaml").write_text(
        f"state_dir: {tmp_path}/state\narchive:\n  dir: {tmp_path}/archive\n"
    )
    config = load_config(tmp_path / "c.yaml")
    index = Index(config.state_dir / "index.sqlite")
    archive = Archive(
        config.archive.dir, config.archive.name, index, config.tz, quarantine_dir=tmp_path / "q"
    )
    copies = [
        _relayed(_receipt("batch@shop.example"), f"Received: from mx{i} by relay; 1 Dec 2026")
        for i in range(2)
    ]
    first, second = Ingestor(config, archive, index).ingest_many(
        [Mail(raw, source="imap", source_name="work/INBOX") for raw in copies]
    )
    assert first.new_documents == 1 and not first.duplicate
    assert second.new_documents == 0 and second.duplicate
    assert second.stored[0].document.path == first.stored[0].document.path
    assert [d.path for d in index.list()] == [first.stored[0].document.path]


@pytest.fixture
def postfix(daemon):
    """A private Postfix that relays everything to the daemon's listener."""
    if (why := usable()) is not None:
        unavailable(f"Postfix cannot run here: {why}")
    server = Postfix(daemon.smtp_port)
    try:
        yield server.start()
    finally:
        server.stop()


def test_postfix_relays_to_gmid_and_logs_what_became_of_each_mail(daemon, postfix):
    """Postfix as users run it in front of gmid: each relayed mail's fate is in Postfix's log
    in gmid's words; a receipt relayed twice (Postfix adds a Received line each time) is kept
    once; a receipt with an 8,166-character line is stored, not bounced to the supplier."""
    pdf = make_pdf("relayed by postfix")
    invoice = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", pdf)])
    postfix.send(invoice, rcpt="invoices+Stadtwerke@gmid.local", sender="billing@shop.example")
    receipt = _receipt("pf-1@shop.example")
    postfix.send(receipt, sender="orders@shop.example")
    assert len(postfix.wait_replies(2)) == 2
    postfix.send(receipt, sender="orders@shop.example")  # the same receipt, relayed again
    long = _receipt("pf-long@shop.example").replace(
        b"Total: 12.34 EUR\r\n", b"<p>" + b"x" * 8_159 + b"</p>\r\n"
    )
    postfix.send(long, sender="orders@shop.example")
    postfix.send(mails.broken_base64_mail(), sender="rechnung@telekom.example")
    replies = postfix.wait_replies(5)
    assert all(r.startswith("250 2.0.0 OK") for r in replies), replies
    assert any("1 new document(s) for Stadtwerke" in r for r in replies)
    assert sum("already archived" in r for r in replies) == 1
    assert any("kept in the quarantine too: " in r and "base64" in r for r in replies)
    emls = [p for p in daemon.archived_files() if p.suffix == ".eml"]
    assert len(emls) == 2 and all(b"by relay.gmid.test (Postfix)" in p.read_bytes() for p in emls)
    filed = {d.original_name: d for d in daemon.documents().documents}
    assert (daemon.archive / filed["r.pdf"].path).read_bytes() == pdf


def test_a_stop_asked_while_postfix_delivers_answers_the_mail_first(daemon_dir):
    """systemd stops gmid while Postfix is in DATA (GMID_FAILPOINT sends the SIGTERM right
    after the mail came in): Postfix hears 250, not a dropped connection ("message may be
    sent more than once"), the mail is filed, and the daemon exits cleanly."""
    if (why := usable()) is not None:
        unavailable(f"Postfix cannot run here: {why}")
    daemon_dir.start(env={**os.environ, "GMID_FAILPOINT": "smtp-data:TERM"})
    postfix = Postfix(daemon_dir.smtp_port).start()
    try:
        pdf = make_pdf("stopped mid-delivery") + bytes(1_200_000)
        raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("big.pdf", pdf)])
        postfix.send(raw, sender="rechnung@telekom.example")
        [reply] = postfix.wait_replies(1)
        assert reply.startswith("250 2.0.0 OK: 1 new document(s) for Telekom"), reply
        assert "more than once" not in postfix.log_text()
        assert daemon_dir.proc.wait(15) == 0
    finally:
        postfix.stop()
    [filed] = [p for p in daemon_dir.archived_files() if p.suffix == ".pdf"]
    assert filed.read_bytes() == pdf
