"""IMAP ingest against GNU imap4d (GNU Mailutils), a server whose quirks gmid must live with.

imap4d 3.15 answers `UID SEARCH UID n:*` with nothing, sends no new-mail notice while a client
idles, and writes its own headers into its mbox files (the size of a mail changes with its place
in the folder). The daemon runs as a user runs it, against a real imap4d on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mail.imap.test_watch import ImapSetup, filed_once, invoice, wait_for
from tests.support.imap4d import Imap4d, imap4d_binary
from tests.support.needs import unavailable


def require_imap4d() -> None:
    """Skip the test when imap4d is missing; fail it under CI=true."""
    if imap4d_binary() is None:
        unavailable("imap4d is not installed (apt-get install mailutils-imap4d)")


@pytest.fixture
def imap4d(tmp_path: Path) -> Iterator[ImapSetup]:
    """A started imap4d and a daemon to configure for it; the daemon's log must stay clean."""
    require_imap4d()
    server = Imap4d(tmp_path).start()
    setup = ImapSetup(server)  # type: ignore[arg-type]  # the same helpers as Dovecot's
    try:
        yield setup
    finally:
        try:
            setup.finish()
        finally:
            server.close()


def test_mail_already_in_the_folder_is_filed(imap4d: ImapSetup) -> None:
    server = imap4d.dovecot
    raws = [invoice(n) for n in range(3)]
    for raw, _ in raws:
        server.append("INBOX", raw)
    daemon = imap4d.configure().start()
    imap4d.wait_documents(3)
    box = imap4d.wait_state("idle")
    filed_once(daemon, [pdf for _, pdf in raws])
    assert (box.messages, box.documents) == (3, 3)


def test_new_mail_is_filed_within_idle_check_though_idle_tells_nothing(
    imap4d: ImapSetup,
) -> None:
    daemon = imap4d.configure(rest="    idle_check: 2s\n").start()
    imap4d.wait_state("idle")
    raw, pdf = invoice(7)
    started = time.monotonic()
    imap4d.dovecot.append("INBOX", raw)
    # imap4d reports the mail only when the IDLE ends; poll is 10m, the IDLE would last 28m
    (doc,) = imap4d.wait_documents(1, timeout=15)
    assert time.monotonic() - started < 2 + 6  # the check interval, and time to file it
    assert doc.original_name == "R7.pdf"
    filed_once(daemon, [pdf])


def test_a_folder_made_anew_while_idling_is_read_again(imap4d: ImapSetup) -> None:
    server = imap4d.dovecot
    server.create("Rechnungen")
    raws = [invoice(n) for n in range(3)]
    for raw, _ in raws[:2]:
        server.append("Rechnungen", raw)
    daemon = imap4d.configure(folders="[Rechnungen]", rest="    idle_check: 2s\n").start()
    imap4d.wait_documents(2)
    imap4d.wait_state("idle")
    server.delete("Rechnungen")
    server.create("Rechnungen")
    server.append("Rechnungen", raws[2][0])  # UID 1 again, below the two read before
    imap4d.wait_documents(3, timeout=10)
    filed_once(daemon, [pdf for _, pdf in raws])
    assert "UIDVALIDITY changed" in daemon.log_text()


def test_a_folder_made_anew_is_read_again_without_counting_a_mail_twice(
    imap4d: ImapSetup,
) -> None:
    server = imap4d.dovecot
    server.create("Rechnungen")
    raws = [invoice(n) for n in range(3)]
    for raw, _ in raws[:2]:
        server.append("Rechnungen", raw)
    daemon = imap4d.configure(folders="[Rechnungen]").start()
    imap4d.wait_documents(2)
    imap4d.wait_state("idle")
    daemon.stop()
    server.delete("Rechnungen")
    server.create("Rechnungen")
    # in another order: imap4d's own headers (X-IMAPbase on the first) change their sizes
    for raw, _ in (raws[1], raws[0], raws[2]):
        server.append("Rechnungen", raw)
    daemon.start()
    imap4d.wait_documents(3)
    box = imap4d.wait_state("idle")
    assert box.bodies == 1, "mails filed before were downloaded again"
    assert (box.messages, box.documents) == (3, 3), "a mail read twice is counted twice"
    filed_once(daemon, [pdf for _, pdf in raws])


DELETE_AND_MOVE = """\
    idle_check: 2s
    rules:
      - from: [delete@shop.example]
        then: delete
      - from: [billing@*]
        then: {move: Erledigt}
"""


def _deliver_three(server: Imap4d) -> list[bytes]:
    """A mail to delete, one to move and one no rule wants, in this order (UIDs 1, 2, 3)."""
    delete, delete_pdf = invoice(1, "delete@shop.example", "Beleg")
    billing, billing_pdf = invoice(2, "billing@cloud.example", "Invoice")
    other, _ = invoice(3, "someone@else.example", "Hallo")
    for raw in (delete, billing, other):
        server.append("INBOX", raw)
    return [delete_pdf, billing_pdf]


def test_without_uidplus_deleted_and_moved_mails_stay_flagged_and_gmid_says_so(
    imap4d: ImapSetup,
) -> None:
    server: Imap4d = imap4d.dovecot  # type: ignore[assignment]
    with server.client() as imap:
        capabilities = imap.capabilities
    assert "UIDPLUS" not in capabilities and "MOVE" not in capabilities
    pdfs = _deliver_three(server)
    daemon = imap4d.configure(rest=DELETE_AND_MOVE).start()
    imap4d.wait_documents(2)
    box = wait_for("the note", lambda: (b := imap4d.mailbox()).error and b)
    assert box.state == "idle"
    assert box.error == (
        "INBOX: 2 mail(s) deleted or moved stay flagged \\Deleted here "
        "(no UIDPLUS; `expunge: true` removes them)"
    )
    assert "flagged \\Deleted" in imap4d.gmid("mailboxes")

    # said once in the log, however many more there are
    server.append("INBOX", invoice(4, "delete@shop.example", "Beleg")[0])
    wait_for("the third", lambda: "3 mail(s)" in (imap4d.mailbox().error or ""), timeout=15)
    assert daemon.log_text().count("the server has no UIDPLUS") == 1
    filed_once(daemon, pdfs)
    # imap4d writes flags into its mbox file when the session ends
    daemon.stop()
    flags = server.flags("INBOX")
    assert sorted(flags) == [1, 2, 3, 4], "a mail was expunged"
    assert all("\\Deleted" in flags[uid] for uid in (1, 2, 4))
    assert "\\Deleted" not in flags[3]
    assert len(server.uids("Erledigt")) == 1


def test_expunge_true_removes_deleted_and_moved_mails(imap4d: ImapSetup) -> None:
    server: Imap4d = imap4d.dovecot  # type: ignore[assignment]
    pdfs = _deliver_three(server)
    daemon = imap4d.configure(rest=DELETE_AND_MOVE + "    expunge: true\n").start()
    imap4d.wait_documents(2)
    wait_for("the mails to be expunged", lambda: len(server.uids("INBOX")) == 1)
    assert server.flags("INBOX") == {3: set()}, "the mail no rule wants must stay as it was"
    (moved,) = server.uids("Erledigt")
    assert "Invoice 2" in server.fetch_subject("Erledigt", moved)
    box = imap4d.wait_state("idle")
    assert box.error is None
    assert "UIDPLUS" not in daemon.log_text()
    filed_once(daemon, pdfs)
