"""Folder names against a Dovecot set up like Cyrus: every folder below INBOX, "." between.

A config names folders as a mail program shows them ("Archive", "Rechnungen/2026"); gmid asks
the server for its namespace and finds "INBOX.Archive", and a folder that is not there is
refused with the one the user most likely meant, not retried in a loop.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator

import pytest

from tests.mail.imap.test_watch import ImapSetup, filed_once, invoice, wait_for
from tests.support.dovecot import Dovecot


@pytest.fixture
def cyrus(make_dovecot) -> Iterator[ImapSetup]:
    """A Dovecot whose personal namespace has prefix "INBOX." and separator ".", as Cyrus's."""
    setup = ImapSetup(make_dovecot(prefix="INBOX.", separator="."))
    yield setup
    setup.finish()


def logins(dc: Dovecot) -> int:
    return dc.log_text().count("Login: user=<gmid>")


def test_names_get_the_servers_prefix_and_separator(cyrus: ImapSetup) -> None:
    dc = cyrus.dovecot
    for folder in ("INBOX.Rechnungen", "INBOX.Rechnungen.2026", "INBOX.Archive"):
        dc.create(folder)
    raws = [invoice(n) for n in range(2)]
    for raw, _ in raws:
        dc.append("INBOX.Rechnungen.2026", raw)
    rules = "    rules:\n      - then: {move: Archive}\n"
    daemon = cyrus.configure(folders='["Rechnungen/2026"]', rest=rules).start()
    docs = cyrus.wait_documents(2)
    assert {d.source_name for d in docs} == {"work/Rechnungen/2026"}
    wait_for("the mails to be moved", lambda: not dc.uids("INBOX.Rechnungen.2026"))
    assert len(dc.uids("INBOX.Archive")) == 2
    box = cyrus.wait_state("idle")
    assert box.error is None
    assert [f.folder for f in box.folders] == ["Rechnungen/2026"]
    filed_once(daemon, [pdf for _, pdf in raws])


def test_a_missing_folder_is_refused_naming_the_one_meant(cyrus: ImapSetup) -> None:
    dc = cyrus.dovecot
    dc.create("INBOX.Archive")
    dc.create("INBOX.Rechnungen")
    raw, pdf = invoice(1)
    dc.append("INBOX", raw)
    rules = "    rules:\n      - then: {move: Archiv}\n"
    daemon = cyrus.configure(folders="[INBOX, Rechnung]", rest=rules).start()

    def failing():
        box = cyrus.mailbox()
        return all(f.state == "failing" for f in box.folders) and box

    box = wait_for("both folders to fail", failing)
    errors = {f.folder: f.error for f in box.folders}
    assert errors == {
        "INBOX": "then: {move: Archiv}: folder 'Archiv' does not exist on the server "
        "(as INBOX.Archiv); did you mean INBOX.Archive?",
        "Rechnung": "folder 'Rechnung' does not exist on the server (as INBOX.Rechnung); "
        "did you mean INBOX.Rechnungen?",
    }
    assert "did you mean INBOX.Archive?" in cyrus.gmid("status")
    (shown,) = json.loads(cyrus.gmid("mailboxes", "--json"))
    assert [f["error"] for f in shown["folders"]] == list(errors.values())
    # not retried in a loop; the mail is neither filed nor moved meanwhile
    before = logins(dc)
    time.sleep(3)
    assert logins(dc) == before
    assert daemon.documents().total == 0
    assert len(dc.uids("INBOX")) == 1

    # the names fixed as suggested: `gmid reload` is enough
    text = daemon.config.read_text()
    text = text.replace("[INBOX, Rechnung]", "[INBOX, Rechnungen]")
    daemon.config.write_text(text.replace("{move: Archiv}", "{move: Archive}"))
    assert daemon.call(lambda c: c.reload())
    cyrus.wait_documents(1)
    wait_for("the mail to be moved", lambda: not dc.uids("INBOX"))
    assert len(dc.uids("INBOX.Archive")) == 1
    assert cyrus.wait_state("idle").error is None
    filed_once(daemon, [pdf])


def test_a_move_target_like_no_folder_is_made_below_inbox(cyrus: ImapSetup) -> None:
    dc = cyrus.dovecot
    raw, pdf = invoice(1)
    dc.append("INBOX", raw)
    daemon = cyrus.configure(rest="    rules:\n      - then: {move: Erledigt/2026}\n").start()
    cyrus.wait_documents(1)
    wait_for("the mail to be moved", lambda: not dc.uids("INBOX"))
    assert len(dc.uids("INBOX.Erledigt.2026")) == 1
    assert cyrus.wait_state("idle").error is None
    filed_once(daemon, [pdf])


def test_a_move_owed_from_before_a_config_change_finds_the_folder(
    cyrus: ImapSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    dc = cyrus.dovecot
    dc.create("INBOX.Archive")
    raw, pdf = invoice(1)
    dc.append("INBOX", raw)
    daemon = cyrus.configure(rest="    rules:\n      - then: {move: Archive}\n")
    monkeypatch.setenv("GMID_FAILPOINT", "imap-before-action")
    with contextlib.suppress(RuntimeError):  # it may die before it answers
        daemon.start()
    assert daemon.proc is not None
    assert daemon.proc.wait(15) == -signal.SIGKILL, "the failpoint was not reached"
    assert len(dc.uids("INBOX")) == 1
    monkeypatch.delenv("GMID_FAILPOINT")
    # the rule is gone, the move it owes is still done, to INBOX.Archive
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace("    rules:\n      - then: {move: Archive}\n", ""))
    daemon.start()
    wait_for("the owed move", lambda: not dc.uids("INBOX"))
    assert len(dc.uids("INBOX.Archive")) == 1
    assert cyrus.wait_state("idle").error is None
    filed_once(daemon, [pdf])


def test_a_shared_folder_outside_inbox_is_found_and_a_suggestion_works_as_written(
    make_dovecot,
) -> None:
    setup = ImapSetup(make_dovecot(prefix="INBOX.", separator=".", public="Public."))
    dc = setup.dovecot
    dc.create("Public.Rechnungen")
    raw, pdf = invoice(1)
    dc.append("Public.Rechnungen", raw)
    try:
        daemon = setup.configure(folders='["Public/Rechnung"]').start()
        box = setup.wait_state("failing")
        assert box.error == (
            "Public/Rechnung: folder 'Public/Rechnung' does not exist on the server "
            "(as INBOX.Public.Rechnung); did you mean Public.Rechnungen?"
        )
        text = daemon.config.read_text()
        daemon.config.write_text(text.replace('"Public/Rechnung"', "Public.Rechnungen"))
        assert daemon.call(lambda c: c.reload())
        (doc,) = setup.wait_documents(1)
        assert doc.source_name == "work/Public.Rechnungen"
        assert setup.wait_state("idle").error is None
        filed_once(daemon, [pdf])
    finally:
        setup.finish()
