"""IMAP ingest against a real Dovecot on loopback, with the daemon run as a user runs it."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from gmid.mail.imap.wire import utf7_encode
from tests.conftest import Daemon, make_daemon_dir
from tests.support import mails
from tests.support.dovecot import Dovecot
from tests.support.mails import invoice_mail, make_pdf

MAILBOX = """\
mailboxes:
  - name: work
    host: 127.0.0.1
    port: {port}
    security: plain
    username: gmid
    password: {{file: {pwfile}}}
    folders: {folders}
    poll: 10m
{rest}"""


def wait_for(what: str, check: Callable[[], object], timeout: float = 15.0) -> object:
    """Poll check() until it returns something true; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class ImapSetup:
    """A Dovecot and a daemon configured to watch it."""

    def __init__(self, dovecot: Dovecot):
        self.dovecot = dovecot
        self.daemon: Daemon | None = None

    def configure(self, *, folders: str = "[INBOX]", rest: str = "") -> Daemon:
        daemon = make_daemon_dir()
        pwfile = daemon.dir / "imap.pw"
        pwfile.write_text(self.dovecot.users["gmid"] + "\n")
        pwfile.chmod(0o600)
        extra = MAILBOX.format(port=self.dovecot.port, pwfile=pwfile, folders=folders, rest=rest)
        with daemon.config.open("a") as f:
            f.write(extra)
        self.daemon = daemon
        return daemon

    def mailbox(self) -> dict:
        assert self.daemon is not None
        (box,) = self.daemon.status().mailboxes
        return box

    def wait_state(self, *states: str, timeout: float = 15.0):
        return wait_for(
            f"mailbox state in {states}",
            lambda: (b := self.mailbox()).state in states and b,
            timeout,
        )

    def gmid(self, *args: str) -> str:
        """What a `gmid` command against the daemon prints; it must succeed."""
        assert self.daemon is not None
        done = subprocess.run(
            [sys.executable, "-m", "gmid", *args, "-c", str(self.daemon.config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def finish(self) -> None:
        """Kill the daemon and remove its folder; its log must hold no traceback."""
        if self.daemon is not None:
            self.daemon.stop(signal.SIGKILL)
            log = self.daemon.log_text()
            shutil.rmtree(self.daemon.dir, ignore_errors=True)
            assert "Traceback" not in log, log

    def wait_documents(self, n: int, timeout: float = 15.0) -> list:
        assert self.daemon is not None
        daemon = self.daemon
        page = wait_for(
            f"{n} documents",
            lambda: (p := daemon.documents(limit=1000)).total >= n and p,
            timeout,
        )
        return page.documents


@pytest.fixture
def imap(dovecot: Dovecot) -> Iterator[ImapSetup]:
    setup = ImapSetup(dovecot)
    yield setup
    setup.finish()


def invoice(n: int, sender: str = "rechnung@stadtwerke.example", subject: str = "Rechnung"):
    pdf = make_pdf(f"imap invoice {n}")
    raw = invoice_mail(
        sender=sender, subject=f"{subject} {n}", pdfs=[(f"R{n}.pdf", pdf)], message_id=f"i{n}@t"
    )
    return raw, pdf


def filed_once(daemon: Daemon, pdfs: list[bytes]) -> None:
    on_disk = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in daemon.archived_files())
    for pdf in pdfs:
        assert on_disk[hashlib.sha256(pdf).hexdigest()] == 1
    assert max(on_disk.values(), default=1) == 1, "a document was filed twice"


def test_first_sync_fetches_only_mails_that_may_hold_a_document(imap: ImapSetup) -> None:
    dc = imap.dovecot
    pdfs = []
    for n in range(3):
        raw, pdf = invoice(n)
        dc.append("INBOX", raw)
        pdfs.append(pdf)
    dc.append("INBOX", mails.no_attachment_mail(sender="friend@example.org"))
    dc.append("INBOX", mails.inline_logo_mail(sender="news@shop.example", pdf=False))
    daemon = imap.configure().start()
    box = imap.wait_state("idle")
    docs = imap.wait_documents(3)
    assert {d.source for d in docs} == {"imap"}
    assert {d.source_name for d in docs} == {"work/INBOX"}
    assert {d.company for d in docs} == {"Stadtwerke"}
    filed_once(daemon, pdfs)
    box = imap.mailbox()
    assert (box.messages, box.documents, box.bodies) == (5, 3, 3)
    assert box.last_sync is not None and box.error is None
    # the mails stay as they were: unread, in place (no rule asked for an action)
    assert all("\\Seen" not in f for f in dc.flags("INBOX").values())

    # A restart with nothing new downloads no body and files nothing again.
    daemon.stop()
    daemon.start()
    box = imap.wait_state("idle")
    assert box.bodies == 0 and box.bytes < 4000, box
    assert daemon.documents().total == 3


def test_new_mail_while_idling_is_filed_at_once(imap: ImapSetup) -> None:
    daemon = imap.configure().start()
    imap.wait_state("idle")
    raw, pdf = invoice(7)
    started = time.monotonic()
    imap.dovecot.append("INBOX", raw)
    # poll is 10m: only IDLE can bring it this fast
    (doc,) = imap.wait_documents(1, timeout=10)
    assert time.monotonic() - started < 10
    assert doc.original_name == "R7.pdf"
    filed_once(daemon, [pdf])
    assert imap.wait_state("idle").documents == 1


def test_rules_pick_mails_and_every_action_is_done(imap: ImapSetup) -> None:
    dc = imap.dovecot
    rules = """\
    rules:
      - from: ["@telekom.example"]
        subject: [Rechnung]
        attachment: ["*.pdf"]
        company: Telekom
        then: seen
      - from: [rechnung@stadtwerke.example]
        then: flag
      - from: [billing@*]
        then: {move: Erledigt}
      - from: [delete@shop.example]
        then: delete
      - subject: [Gutschrift]
"""
    telekom, telekom_pdf = invoice(1, "service@telekom.example")
    newsletter, _ = invoice(2, "news@telekom.example", "Angebote")
    stadtwerke, stadtwerke_pdf = invoice(3)
    billing, billing_pdf = invoice(4, "billing@cloud.example", "Invoice")
    delete, delete_pdf = invoice(5, "delete@shop.example", "Beleg")
    credit, credit_pdf = invoice(6, "shop@other.example", "Gutschrift")
    other, _ = invoice(7, "someone@else.example", "Hallo")
    uids = {name: dc.append("INBOX", raw) for name, raw in [
        ("telekom", telekom), ("newsletter", newsletter), ("stadtwerke", stadtwerke),
        ("billing", billing), ("delete", delete), ("credit", credit), ("other", other),
    ]}  # fmt: skip
    daemon = imap.configure(rest=rules).start()
    docs = imap.wait_documents(5)
    box = imap.wait_state("idle")
    assert box.bodies == 5, "mails no rule matches must not be downloaded"
    by_name = {d.original_name: d for d in docs}
    assert set(by_name) == {"R1.pdf", "R3.pdf", "R4.pdf", "R5.pdf", "R6.pdf"}
    assert by_name["R1.pdf"].company == "Telekom"
    filed_once(daemon, [telekom_pdf, stadtwerke_pdf, billing_pdf, delete_pdf, credit_pdf])

    flags = dc.flags("INBOX")
    assert "\\Seen" in flags[uids["telekom"]]
    assert "\\Flagged" in flags[uids["stadtwerke"]]
    assert uids["billing"] not in flags and uids["delete"] not in flags
    assert flags[uids["newsletter"]] == set() and flags[uids["other"]] == set()
    assert flags[uids["credit"]] == set()  # no then: nothing done to it
    (moved,) = dc.uids("Erledigt")  # created on the first move
    assert dc.fetch_raw("Erledigt", moved) == billing


def test_kill_9_between_archive_and_action_acts_once(
    imap: ImapSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    dc = imap.dovecot
    raws = [invoice(n) for n in range(3)]
    for raw, _ in raws:
        dc.append("INBOX", raw)
    daemon = imap.configure(rest="    rules:\n      - then: {move: Erledigt}\n")
    for point in ("imap-after-archive", "imap-before-action"):
        monkeypatch.setenv("GMID_FAILPOINT", point)
        with contextlib.suppress(RuntimeError):  # it may die before it answers
            daemon.start()
        assert daemon.proc is not None
        assert daemon.proc.wait(15) == -signal.SIGKILL, f"{point} was not reached"
        assert len(dc.uids("INBOX")) == 3, "acted before the crash point"
        filed_once(daemon, [pdf for _, pdf in raws])
    monkeypatch.delenv("GMID_FAILPOINT")
    daemon.start()
    wait_for("the mails to be moved", lambda: not dc.uids("INBOX"))
    imap.wait_state("idle")
    assert len(dc.uids("Erledigt")) == 3
    filed_once(daemon, [pdf for _, pdf in raws])
    assert daemon.documents().total == 3


def test_changed_uidvalidity_rescans_without_filing_twice(imap: ImapSetup) -> None:
    dc = imap.dovecot
    dc.create("Rechnungen")
    raws = [invoice(n) for n in range(4)]
    for raw, _ in raws[:2]:
        dc.append("Rechnungen", raw)
    daemon = imap.configure(folders="[Rechnungen]").start()
    imap.wait_documents(2)
    imap.wait_state("idle")
    before = dc.uidvalidity("Rechnungen")
    daemon.stop()
    dc.delete("Rechnungen")
    dc.create("Rechnungen")
    for raw, _ in raws:  # the two known ones again, and two new ones
        dc.append("Rechnungen", raw)
    assert dc.uidvalidity("Rechnungen") != before
    daemon.start()
    imap.wait_documents(4)
    box = imap.wait_state("idle")
    assert box.bodies == 2, "mails filed before were downloaded again"
    filed_once(daemon, [pdf for _, pdf in raws])
    assert "UIDVALIDITY changed" in daemon.log_text()


def test_a_server_restart_mid_sync_loses_and_doubles_nothing(imap: ImapSetup) -> None:
    dc = imap.dovecot
    raws = [invoice(n) for n in range(300)]
    dc.deliver_files("INBOX", [raw for raw, _ in raws])
    daemon = imap.configure().start()
    wait_for("the first documents", lambda: daemon.documents(limit=1).total > 0, 30)
    dc.kill()
    filed = daemon.documents(limit=1).total
    assert filed < 300, "the sync ended before the server could be killed"
    wait_for("the mailbox to notice", lambda: imap.mailbox().state in ("failing", "connecting"))
    dc.restart()
    imap.wait_documents(300, timeout=60)
    imap.wait_state("idle", timeout=30)
    filed_once(daemon, [pdf for _, pdf in raws])


def test_a_wrong_password_is_reported_and_not_retried_in_a_loop(imap: ImapSetup) -> None:
    dc = imap.dovecot
    daemon = imap.configure()
    (daemon.dir / "imap.pw").write_text("wrong\n")
    daemon.start()
    box = imap.wait_state("failing")
    assert box.error is not None and "login refused" in box.error
    assert "Authentication failed" in box.error  # the server's own words
    time.sleep(3)
    attempts = dc.log_text().count("auth failed") or dc.log_text().count("Authentication failed")
    assert imap.mailbox().state == "failing"
    assert attempts <= 2, f"{attempts} login attempts in 3 s"
    assert "wrong" not in daemon.log_text()
    # fixed: `gmid reload` retries at once
    (daemon.dir / "imap.pw").write_text(dc.users["gmid"] + "\n")
    raw, pdf = invoice(1)
    dc.append("INBOX", raw)
    assert daemon.call(lambda c: c.reload())
    imap.wait_documents(1)
    filed_once(daemon, [pdf])
    assert imap.wait_state("idle").error is None


def test_hostile_mails_are_quarantined_and_left_in_the_mailbox(imap: ImapSetup) -> None:
    dc = imap.dovecot
    hostile = [
        mails.traversal_name_mail(),
        mails.broken_base64_mail(where="middle"),
        mails.nested_multipart_mail(),
        mails.big_header_mail(),
        mails.malformed_mime_mail(),
    ]
    uids = [dc.append("INBOX", raw) for raw in hostile]
    good, pdf = invoice(1)
    good_uid = dc.append("INBOX", good)
    daemon = imap.configure(rest="    rules:\n      - then: delete\n").start()
    imap.wait_documents(1)
    box = imap.wait_state("idle")
    assert box.error is None
    status = daemon.status()
    assert status.quarantined >= 1
    # only the good mail was deleted; what could not be read whole stays in the mailbox
    left = dc.uids("INBOX")
    assert good_uid not in left
    assert any(uid in left for uid in uids)
    for path in daemon.archived_files():
        assert path.resolve().is_relative_to(daemon.archive.resolve())
    filed_once(daemon, [pdf])


def test_a_folder_with_a_non_ascii_name(imap: ImapSetup) -> None:
    dc = imap.dovecot
    wire = utf7_encode("Rechnungen/Ärger")
    dc.create(wire)
    raw, pdf = invoice(1)
    dc.append(wire, raw)
    daemon = imap.configure(folders='["Rechnungen/Ärger"]').start()
    (doc,) = imap.wait_documents(1)
    assert doc.source_name == "work/Rechnungen/Ärger"
    assert imap.wait_state("idle").folders[0].folder == "Rechnungen/Ärger"
    filed_once(daemon, [pdf])


def test_the_same_mail_by_smtp_and_imap_is_filed_once(imap: ImapSetup) -> None:
    raw, pdf = invoice(1)
    daemon = imap.configure().start()
    imap.wait_state("idle")
    assert daemon.send(raw, sender="rechnung@stadtwerke.example")[0] == 250
    imap.dovecot.append("INBOX", raw)
    wait_for("the IMAP copy to be read", lambda: imap.mailbox().messages == 1)
    imap.wait_state("idle")
    filed_once(daemon, [pdf])
    assert daemon.documents().total == 1


def test_a_server_without_idle_is_polled(make_dovecot) -> None:
    dc = make_dovecot(idle=False)
    setup = ImapSetup(dc)
    raw, pdf = invoice(1)
    dc.append("INBOX", raw)
    daemon = setup.configure()
    try:
        daemon.start()
        setup.wait_documents(1)
        assert setup.wait_state("polling").error is None
        filed_once(daemon, [pdf])
    finally:
        daemon.stop(signal.SIGKILL)
        shutil.rmtree(daemon.dir, ignore_errors=True)


def test_tls_with_a_private_ca_and_a_refused_certificate(make_dovecot) -> None:
    dc = make_dovecot(tls=True)
    setup = ImapSetup(dc)
    raw, pdf = invoice(1)
    dc.append("INBOX", raw)
    daemon = setup.configure()
    text = daemon.config.read_text()
    tls = f"port: {dc.tls_port}\n    security: tls\n    ca_bundle: {dc.ca_file}"
    daemon.config.write_text(text.replace(f"port: {dc.port}\n    security: plain", tls))
    try:
        daemon.start()
        setup.wait_documents(1)
        assert setup.wait_state("idle").error is None
        filed_once(daemon, [pdf])
        # without the private CA the certificate is not trusted: no login, a clear reason
        text = daemon.config.read_text()
        daemon.config.write_text(text.replace(f"    ca_bundle: {dc.ca_file}\n", ""))
        assert daemon.call(lambda c: c.reload())
        box = setup.wait_state("failing")
        assert "certificate is not trusted (self-signed certificate)" in box.error, box.error
    finally:
        daemon.stop(signal.SIGKILL)
        shutil.rmtree(daemon.dir, ignore_errors=True)


def test_since_limits_the_first_sync_and_the_cli_shows_the_mailbox(imap: ImapSetup) -> None:
    import json
    from datetime import UTC, datetime

    dc = imap.dovecot
    old, _ = invoice(1)
    new, new_pdf = invoice(2)
    dc.append("INBOX", old, date=datetime(2025, 6, 1, tzinfo=UTC))
    dc.append("INBOX", new, date=datetime(2026, 2, 1, tzinfo=UTC))
    daemon = imap.configure(rest="    since: 2026-01-01\n").start()
    imap.wait_documents(1)
    imap.wait_state("idle")
    filed_once(daemon, [new_pdf])
    gmid = imap.gmid

    (box,) = json.loads(gmid("mailboxes", "--json"))
    assert (box["name"], box["state"], box["documents"], box["messages"]) == ("work", "idle", 1, 1)
    assert box["folders"] == [
        {"folder": "INBOX", "state": "idle", "error": None, "bytes": box["bytes"]}
    ]
    table = gmid("mailboxes")
    assert "gmid@127.0.0.1" in table and "idle" in table
    assert "mailbox     work: idle, last sync" in gmid("status")
    assert "1 mail seen, 1 document filed" in gmid("status")


def test_mail_arriving_during_a_sync_is_not_missed(imap: ImapSetup) -> None:
    import threading

    dc = imap.dovecot
    raws = [invoice(n) for n in range(60)]
    daemon = imap.configure().start()
    imap.wait_state("idle")

    def deliver() -> None:
        for raw, _ in raws:
            dc.append("INBOX", raw)
            time.sleep(0.01)

    thread = threading.Thread(target=deliver)
    thread.start()
    thread.join(60)
    # poll is 10m: every mail must come through IDLE, including those that arrived while
    # the connection was busy filing the ones before
    # a missed mail would wait for the 10-minute poll: 45 s leaves a loaded machine room
    imap.wait_documents(60, timeout=45)
    filed_once(daemon, [pdf for _, pdf in raws])


async def test_idle_is_renewed_and_still_hears_new_mail(dovecot, tmp_path, monkeypatch) -> None:
    """In-process, with the renewal shortened from 28 minutes to a fraction of a second."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from gmid.archive.archive import Archive
    from gmid.archive.index import Index
    from gmid.config.load import load_config
    from gmid.events import EventBus
    from gmid.mail.imap import watch as imapwatch
    from gmid.mail.ingest import Ingestor

    monkeypatch.setattr(imapwatch, "IDLE_RENEW", 0.3)
    pw = tmp_path / "pw"
    pw.write_text(dovecot.users["gmid"])
    pw.chmod(0o600)
    (tmp_path / "c.yaml").write_text(
        f"state_dir: {tmp_path}/state\narchive:\n  dir: {tmp_path}/archive\n"
        + MAILBOX.format(port=dovecot.port, pwfile=pw, folders="[INBOX]", rest="")
    )
    config = load_config(tmp_path / "c.yaml")
    index = Index(config.state_dir / "index.sqlite")
    archive = Archive(
        config.archive.dir, config.archive.name, index, config.tz, quarantine_dir=tmp_path / "q"
    )
    executor = ThreadPoolExecutor(2)
    watchers = imapwatch.ImapWatchers(
        config.mailboxes, Ingestor(config, archive, index), index, executor, EventBus()
    )
    idles = 0
    original = imapwatch.FolderWatcher._idle  # noqa: SLF001 (counts the renewals it makes)

    async def counted(self, client):
        nonlocal idles
        idles += 1
        return await original(self, client)

    monkeypatch.setattr(imapwatch.FolderWatcher, "_idle", counted)
    await watchers.start()
    try:
        for _ in range(200):
            if idles >= 4:
                break
            await asyncio.sleep(0.05)
        assert idles >= 4, "IDLE was not renewed"
        assert watchers.status()[0]["state"] == "idle"
        raw, _ = invoice(1)
        await asyncio.to_thread(dovecot.append, "INBOX", raw)
        for _ in range(200):
            if index.count():
                break
            await asyncio.sleep(0.05)
        assert index.count() == 1
        assert watchers.status()[0]["error"] is None
    finally:
        await watchers.stop()
        executor.shutdown()
        index.close()
