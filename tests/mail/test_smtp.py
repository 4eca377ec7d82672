"""SMTP ingest over real TCP: good and hostile mails, as a forwarding user would send them."""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import crowded_daemon, make_daemon_dir
from tests.support import mails
from tests.support.mails import forwarded_mail, invoice_mail, make_pdf


def _docs(daemon):
    return daemon.documents(limit=1000).documents


def _quarantine(daemon) -> list[Path]:
    return sorted((daemon.state / "quarantine").glob("*.eml"))


def test_an_invoice_is_archived_with_its_metadata(daemon):
    pdf = make_pdf("Rechnung 4711", size=130_000)
    raw = invoice_mail(
        sender="Stadtwerke <rechnung@stadtwerke.example>",
        subject="Ihre Rechnung",
        pdfs=[("Rechnung-4711.pdf", pdf)],
        message_id="r4711@stadtwerke.example",
    )
    code, text = daemon.send(raw)
    assert code == 250 and "1 new document" in text
    [doc] = _docs(daemon)
    assert (daemon.archive / doc.path).read_bytes() == pdf
    assert doc.company == "Stadtwerke" and doc.source == "smtp"
    assert doc.original_name == "Rechnung-4711.pdf"
    assert doc.message_id == "r4711@stadtwerke.example"
    assert doc.media_type == "application/pdf"
    assert doc.path.startswith("Stadtwerke/") and doc.path.endswith(" Stadtwerke.pdf")
    assert daemon.archived_files() == [daemon.archive / doc.path]


def test_the_same_mail_twice_is_filed_once(daemon):
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("twice"))])
    assert daemon.send(raw)[0] == 250
    code, text = daemon.send(raw)
    assert code == 250 and "already archived" in text
    assert len(_docs(daemon)) == 1 and len(daemon.archived_files()) == 1


def test_unknown_recipient_is_refused_with_550(daemon):
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("550"))])
    code, _ = daemon.send(raw, rcpt="postmaster@example.org")
    assert code == 550
    assert _docs(daemon) == [] and daemon.status().smtp.rejected == 1


def test_a_plus_address_cannot_put_control_characters_into_a_company_name(daemon):
    """A backspace or a right-to-left override in the tag would reach the index, `gmid
    documents` and the TUI: they are dropped, the rest of the name stays."""
    raw = invoice_mail(sender="someone@else.example", pdfs=[("r.pdf", make_pdf("bidi"))])
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail("someone@else.example", ["SMTPUTF8"])
        assert smtp.rcpt("invoices+Evil\u202e\x08Corp\x7f@gmid.local")[0] == 250
        assert smtp.data(raw)[0] == 250
    [doc] = daemon.documents().documents
    assert doc.company == "EvilCorp"
    assert all(ch.isprintable() for ch in doc.path)


def test_plus_address_picks_the_company(daemon):
    raw = invoice_mail(sender="someone@else.example", pdfs=[("r.pdf", make_pdf("plus 1"))])
    assert daemon.send(raw, rcpt="invoices+stadtwerke@gmid.local")[0] == 250
    raw = invoice_mail(sender="someone@else.example", pdfs=[("r.pdf", make_pdf("plus 2"))])
    assert daemon.send(raw, rcpt="invoices+ACME@gmid.local")[0] == 250
    assert {d.company for d in _docs(daemon)} == {"Stadtwerke", "ACME"}


def test_oversize_mail_gets_552_and_the_daemon_keeps_serving(daemon):
    big = invoice_mail(sender="rechnung@telekom.example", pdfs=[("big.pdf", os.urandom(2_500_000))])
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail("rechnung@telekom.example")
        smtp.rcpt("invoices@gmid.local")
        code, _ = smtp.data(big)
    assert code == 552
    ok = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("after"))])
    assert daemon.send(ok)[0] == 250
    assert len(_docs(daemon)) == 1


def test_hostile_names_never_leave_the_archive(daemon):
    outside_before = set(daemon.dir.rglob("*")) - set(daemon.archive.rglob("*"))
    code, _ = daemon.send(mails.traversal_name_mail())
    assert code == 250
    docs = _docs(daemon)
    assert len(docs) == len(mails.TRAVERSAL_NAMES)
    archive = daemon.archive.resolve()
    for doc in docs:
        path = (daemon.archive / doc.path).resolve()
        assert path.is_relative_to(archive) and path.is_file()
        assert doc.path.startswith("unknown/") and doc.path.endswith(".pdf")
        assert "passwd" not in doc.path and ".." not in doc.path
    names = {d.original_name for d in docs}
    assert "../../../etc/passwd.pdf" in names  # kept for the index, decoded, never used as a path
    new_outside = set(daemon.dir.rglob("*")) - set(daemon.archive.rglob("*")) - outside_before
    assert all(p.is_relative_to(daemon.state) or p == daemon.log for p in new_outside)


def test_rfc2231_and_encoded_word_names_are_decoded(daemon):
    assert daemon.send(mails.rfc2231_name_mail())[0] == 250
    assert {d.original_name for d in _docs(daemon)} == {"Rechnung März €.pdf"}
    assert len(_docs(daemon)) == 2


def test_nested_forwards_find_the_pdf_and_the_original_sender(daemon):
    pdf = make_pdf("nested forward")
    inner = invoice_mail(sender="rechnung@telekom.example", pdfs=[("t.pdf", pdf)])
    raw = forwarded_mail(forwarded_mail(inner, sender="me@home.example"), sender="me@home.example")
    assert daemon.send(raw, sender="me@home.example")[0] == 250
    [doc] = _docs(daemon)
    assert doc.company == "Telekom"
    assert (daemon.archive / doc.path).read_bytes() == pdf


def test_octet_stream_pdf_is_a_pdf(daemon):
    pdf = make_pdf("octet")
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("x.pdf", pdf)], octet_stream=True)
    assert daemon.send(raw)[0] == 250
    [doc] = _docs(daemon)
    assert doc.media_type == "application/pdf" and doc.path.endswith(".pdf")


def test_broken_base64_keeps_the_good_part_and_quarantines_the_mail(daemon):
    raw = mails.broken_base64_mail()
    assert daemon.send(raw)[0] == 250
    assert len(_docs(daemon)) == 1  # the intact PDF
    [kept] = _quarantine(daemon)
    assert kept.read_bytes() == raw
    reason = kept.with_name(kept.name.removesuffix(".eml") + ".reason.txt").read_text()
    assert "base64" in reason
    assert daemon.status().quarantined == 1


def test_thousand_nested_multiparts_are_quarantined_and_the_daemon_keeps_serving(daemon):
    raw = mails.nested_multipart_mail(depth=1000)
    assert daemon.send(raw)[0] == 250
    [kept] = _quarantine(daemon)
    assert kept.read_bytes() == raw
    ok = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("still up"))])
    assert daemon.send(ok)[0] == 250


def test_a_one_megabyte_header_is_survived(daemon):
    assert daemon.send(mails.big_header_mail(size=1_000_000))[0] == 250
    assert len(_docs(daemon)) == 1


def test_malformed_mime_keeps_what_can_be_read(daemon):
    raw = mails.malformed_mime_mail()
    assert daemon.send(raw)[0] == 250
    assert len(_docs(daemon)) >= 1
    assert [p.read_bytes() for p in _quarantine(daemon)] == [raw]


@pytest.mark.parametrize("bad", mails.BAD_HEADER_LINES)
def test_a_bad_header_line_still_files_the_pdf_and_quarantines_the_mail(daemon, bad):
    pdf = make_pdf(f"bad header {bad}")
    raw = mails.bad_header_line_mail(mails.BAD_HEADER_LINES[bad], pdf=pdf)
    code, text = daemon.send(raw)
    assert code == 250 and "1 new document" in text
    [doc] = _docs(daemon)
    assert doc.media_type == "application/pdf"
    assert (daemon.archive / doc.path).read_bytes() == pdf
    [kept] = _quarantine(daemon)
    assert kept.read_bytes() == raw
    reason = kept.with_name(kept.name.removesuffix(".eml") + ".reason.txt").read_text()
    assert "no header field" in reason


def test_a_mail_without_attachment_is_kept_as_eml(daemon):
    raw = mails.no_attachment_mail()
    assert daemon.send(raw)[0] == 250
    [doc] = _docs(daemon)
    assert doc.media_type == "message/rfc822" and doc.path.endswith(".eml")
    assert (daemon.archive / doc.path).read_bytes() == raw


def test_xml_einvoice_and_inline_logo(daemon):
    assert daemon.send(mails.xml_einvoice_mail())[0] == 250
    assert daemon.send(mails.inline_logo_mail())[0] == 250
    kinds = sorted(d.path.rsplit(".", 1)[1] for d in _docs(daemon))
    assert kinds == ["pdf", "xml"]  # the logo is not a document


def _reload_to(daemon, listen: str):
    daemon.config.write_text(re.sub(r"listen: \S+", listen, daemon.config.read_text()))
    return daemon.call(lambda c: c.reload_answer())


def test_a_reload_to_an_address_in_use_keeps_the_old_listener(daemon):
    old = daemon.status().smtp.listen
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        answer = _reload_to(daemon, f"listen: {busy}")
        assert not answer.reloaded
        assert answer.reason.startswith(f"smtp.listen: cannot listen on {busy}: ")
        assert daemon.status().smtp.listen == old
        mail = invoice_mail(sender="rechnung@telekom.example", pdfs=[("a.pdf", make_pdf("old"))])
        code, _ = daemon.send(mail)
        assert code == 250
    # A free address: the listener moves there, and the old one is closed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = f"127.0.0.1:{probe.getsockname()[1]}"
    assert _reload_to(daemon, f"listen: {free}").reloaded
    assert daemon.status().smtp.listen == free
    with socket.socket() as client:
        assert client.connect_ex(("127.0.0.1", int(old.rsplit(":", 1)[1]))) != 0


@pytest.fixture
def crowded():
    """A daemon with few file descriptors and a small cap on SMTP sessions."""
    with crowded_daemon("smtp", "max_sessions: 16") as d:
        yield d


def test_idle_smtp_clients_do_not_lock_out_mail_or_status(crowded):
    idle = []
    try:
        for _ in range(600):  # twice the daemon's file descriptors, all at once
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", crowded.smtp_port))
            idle.append(sock)
        time.sleep(2)  # the daemon takes in what waits in its backlog
        started = time.monotonic()
        assert crowded.status().pid == crowded.proc.pid
        assert time.monotonic() - started < 1
        mail = invoice_mail(sender="rechnung@telekom.example", pdfs=[("a.pdf", make_pdf("x"))])
        assert crowded.send(mail)[0] == 250
    finally:
        for sock in idle:
            sock.close()
    log = crowded.log_text()
    assert "out of system resource" not in log
    assert log.count("too many SMTP sessions") == 1, log


def test_a_broken_archive_keeps_the_mail_in_the_quarantine_and_says_so(daemon):
    # A file where the archive folder belongs: no write there succeeds, not even as root.
    moved = daemon.archive.with_name("archive.moved")
    daemon.archive.rename(moved)
    daemon.archive.write_bytes(b"not a folder")
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("broken"))])

    code, text = daemon.send(raw)
    assert code == 250 and "kept in the quarantine" in text  # not 451 until the sender bounces
    [kept] = _quarantine(daemon)
    assert kept.read_bytes() == raw
    reason = kept.with_name(kept.name.removesuffix(".eml") + ".reason.txt").read_text()
    assert "the archive could not be written" in reason and str(daemon.archive) in reason
    status = daemon.status()
    assert status.archive_failures == 1 and status.quarantined == 1
    assert str(daemon.archive) in status.archive_error
    shown = subprocess.run(
        [sys.executable, "-m", "gmid", "status", "--socket", str(daemon.socket)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "FAILING" in shown.stdout and "1 mail(s) kept in the quarantine" in shown.stdout

    # Once the archive is back, mails are filed again.
    daemon.archive.unlink()
    moved.rename(daemon.archive)
    ok = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("fixed"))])
    code, text = daemon.send(ok)
    assert code == 250 and "1 new document" in text


def test_a_mail_with_bare_lf_line_endings_is_refused_with_how_to_send_it(daemon):
    """smtplib sends bytes as they are: a message built with email.policy.default has bare LF
    line endings. It is refused (no SMTP smuggling), with a reply that says how to fix it,
    and the same connection still delivers the mail once it has CRLF line endings."""
    pdf = make_pdf("bare LF")
    good = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", pdf)])
    bare = good.replace(b"\r\n", b"\n")
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=30) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("rechnung@telekom.example", ["invoices@gmid.local"], bare)
        code, text = refused.value.smtp_code, refused.value.smtp_error.decode()
        assert code == 500 and "Bare LF" in text, text
        assert "CRLF" in text and "policy=email.policy.SMTP" in text
        assert "Line too long" not in text
        assert _docs(daemon) == [] and _quarantine(daemon) == []
        assert smtp.sendmail("rechnung@telekom.example", ["invoices@gmid.local"], good) == {}
    [doc] = _docs(daemon)
    assert (daemon.archive / doc.path).read_bytes() == pdf


def _spool_dir(daemon) -> Path:
    return daemon.state / "smtp-spool"


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (VmHWM never goes down)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024


def _in_data(port: int, *, timeout: float) -> smtplib.SMTP:
    """A client past DATA's 354: what it sends next is the mail."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
    smtp.ehlo()
    smtp.mail("rechnung@telekom.example")
    smtp.rcpt("invoices@gmid.local")
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354
    return smtp


class HeldDelivery:
    """A client that sends all but the end of a mail, then waits until told to finish."""

    def __init__(self, port: int, raw: bytes, go: threading.Event):
        self.port, self.raw, self.go = port, raw, go
        self.reply: tuple[int, bytes] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with _in_data(self.port, timeout=120) as smtp:
                smtp.send(self.raw[:-1000])
                self.go.wait(120)
                smtp.send(self.raw[-1000:] + b".\r\n")
                self.reply = smtp.getreply()
        except BaseException as e:  # reported by the test
            self.error = e


@pytest.fixture
def spooling():
    """A daemon that keeps 64 KiB of a mail in memory, and takes mails of up to 10 MB."""
    d = make_daemon_dir(max_size="10MB")
    d.config.write_text(
        d.config.read_text().replace("smtp:\n", "smtp:\n  spool_threshold: 64KiB\n")
    )
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_text()
    assert "Traceback" not in d.log_text(), d.log_text()
    shutil.rmtree(d.dir, ignore_errors=True)


def test_many_big_mails_at_once_do_not_each_take_their_size_in_memory(spooling):
    """20 clients send a 4 MB mail each at the same time: while they send, the daemon holds
    a bounded part of each in memory and the rest in private spool files in its state folder;
    then every mail is filed, one big mail parsed at a time, and no spool file is left."""
    count = 20
    pdfs = [make_pdf(f"big {i}", size=3_000_000) for i in range(count)]
    raws = [
        invoice_mail(sender="rechnung@telekom.example", pdfs=[(f"r{i}.pdf", pdf)])
        for i, pdf in enumerate(pdfs)
    ]
    assert all(b"\r\n." not in raw and raw.endswith(b"\r\n") for raw in raws)  # no stuffing
    total = sum(map(len, raws))
    warm = invoice_mail(sender="rechnung@telekom.example", pdfs=[("w.pdf", make_pdf("warm"))])
    assert spooling.send(warm)[0] == 250  # the code paths of a delivery are loaded
    before = _peak_rss(spooling.proc.pid)
    outside_before = set(spooling.dir.rglob("*"))

    go = threading.Event()
    clients = [HeldDelivery(spooling.smtp_port, raw, go) for raw in raws]
    try:
        spool = _spool_dir(spooling)
        deadline = time.monotonic() + 120
        while True:  # until the daemon has taken in all that the clients sent
            files = list(spool.iterdir())
            sizes = sorted(f.stat().st_size for f in files)
            if len(files) == count and sizes[0] > len(raws[0]) - 300_000:
                break
            assert time.monotonic() < deadline, f"spool files: {sizes}"
            assert not any(c.error for c in clients), [c.error for c in clients]
            time.sleep(0.2)
        growth = _peak_rss(spooling.proc.pid) - before
        modes = {stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        go.set()
        for client in clients:
            client.thread.join(180)
    overall = _peak_rss(spooling.proc.pid) - before
    # About 6 MB and 30 MB here, where a whole mail per session took 90 MB and 210 MB.
    assert growth < total / 4, f"{growth / 1e6:.0f} MB more memory for {total / 1e6:.0f} MB"
    assert overall < total / 2, f"{overall / 1e6:.0f} MB more memory for {total / 1e6:.0f} MB"
    assert modes == {0o600}
    assert all(c.error is None for c in clients), [c.error for c in clients]
    replies = [c.reply for c in clients]
    assert all(r is not None and r[0] == 250 and b"1 new document" in r[1] for r in replies)
    docs = [d for d in _docs(spooling) if d.original_name != "w.pdf"]
    assert sorted((spooling.archive / d.path).read_bytes() for d in docs) == sorted(pdfs)
    assert list(_spool_dir(spooling).iterdir()) == []
    new = set(spooling.dir.rglob("*")) - outside_before
    assert all(p.is_relative_to(spooling.archive) or p.is_relative_to(spooling.state) for p in new)


def _victim(daemon) -> Path:
    """A folder of the user's, with a file in it, where a symlink could point."""
    victim = daemon.dir / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_bytes(b"keep me")
    return victim


def test_a_symlinked_spool_folder_stops_the_start_and_nothing_behind_it_is_removed(daemon_dir):
    victim = _victim(daemon_dir)
    daemon_dir.state.mkdir(parents=True)
    _spool_dir(daemon_dir).symlink_to(victim)
    with pytest.raises(RuntimeError, match="daemon exited"):
        daemon_dir.start()
    assert f"{_spool_dir(daemon_dir)} is a symlink (to {victim})" in daemon_dir.log_text()
    assert os.listdir(victim) == ["precious.txt"]


def test_a_big_mail_is_never_spooled_through_a_symlink(daemon):
    """A spool folder swapped for a symlink while the daemon runs: a mail that would go to a
    spool file gets a temporary failure (the sender tries again), nothing is written behind
    the symlink, and once it is gone the folder is made again and the mail is filed."""
    victim = _victim(daemon)
    spool = _spool_dir(daemon)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    spool.rmdir()
    spool.symlink_to(victim)
    pdf = make_pdf("symlinked spool", size=1_300_000)  # beyond the 1 MiB kept in memory
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", pdf)])
    code, text = daemon.send(raw)
    assert code == 451 and "try again later" in text
    assert os.listdir(victim) == ["precious.txt"]
    assert f"{spool} is a symlink" in daemon.log_text()
    assert _docs(daemon) == []

    spool.unlink()
    code, text = daemon.send(raw)
    assert code == 250 and "1 new document" in text
    [doc] = _docs(daemon)
    assert (daemon.archive / doc.path).read_bytes() == pdf
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700 and not spool.is_symlink()
    assert list(spool.iterdir()) == []


def test_a_client_gone_in_the_middle_of_a_big_mail_leaves_no_spool_file(daemon):
    pdf = make_pdf("cut short", size=1_400_000)
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", pdf)])
    spool = _spool_dir(daemon)
    with _in_data(daemon.smtp_port, timeout=30) as smtp:
        smtp.send(raw[: len(raw) // 2 + 1_000_000])
        deadline = time.monotonic() + 30
        while not list(spool.iterdir()):  # the part beyond 1 MiB went to a file
            assert time.monotonic() < deadline
            time.sleep(0.05)
        smtp.sock.close()  # and gone, without the end of the mail or QUIT
        smtp.sock = None
    deadline = time.monotonic() + 30
    while list(spool.iterdir()):
        assert time.monotonic() < deadline, list(spool.iterdir())
        time.sleep(0.05)
    assert _docs(daemon) == [] and _quarantine(daemon) == []
    assert daemon.send(raw)[0] == 250
