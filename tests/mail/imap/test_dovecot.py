"""The Dovecot test server itself: what the IMAP tests rely on it for."""

from __future__ import annotations

import imaplib
import socket
from datetime import UTC, datetime
from functools import cache

import pytest

import tests.support.dovecot as dovecot_module
from tests.support.dovecot import HOST, Dovecot
from tests.support.mails import invoice_mail, make_pdf


@cache
def _mail(n: int) -> bytes:
    return invoice_mail(
        sender="rechnung@telekom.example",
        subject=f"Rechnung {n}",
        message_id=f"m{n}@gmid.test",
        pdfs=[(f"rechnung-{n}.pdf", make_pdf(f"Invoice {n}"))],
    )


def _login_error(server: Dovecot, user: str, password: str) -> str:
    imap = imaplib.IMAP4(server.host, server.port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error) as refused:
            imap.login(user, password)
    finally:
        imap.shutdown()
    return str(refused.value)


def test_login_works_and_a_wrong_password_is_refused_with_the_servers_message(dovecot):
    with dovecot.client() as imap:
        assert imap.noop()[0] == "OK"
        assert imap.list()[0] == "OK"
    assert "[AUTHENTICATIONFAILED] Authentication failed." in _login_error(dovecot, "gmid", "wrong")
    assert "AUTHENTICATIONFAILED" in _login_error(dovecot, "nobody-here", "imap-secret")


def test_set_password_takes_effect_at_the_next_login(dovecot):
    with dovecot.client():
        pass
    dovecot.set_password("gmid", "new: secret")  # right after a login, in the same second
    with dovecot.client() as imap:
        assert imap.noop()[0] == "OK"
    assert "AUTHENTICATIONFAILED" in _login_error(dovecot, "gmid", "imap-secret")


def test_append_gives_increasing_uids_and_fetch_raw_the_same_bytes(dovecot):
    mails = [_mail(n) for n in range(3)]
    uids = [dovecot.append("INBOX", raw) for raw in mails]
    assert uids == sorted(uids) and len(set(uids)) == 3
    assert dovecot.uids("INBOX") == uids
    assert [dovecot.fetch_raw("INBOX", uid) for uid in uids] == mails
    seen = dovecot.append(
        "INBOX", _mail(3), flags="\\Seen \\Flagged", date=datetime(2024, 3, 15, tzinfo=UTC)
    )
    assert seen > uids[-1]
    flags = dovecot.flags("INBOX")
    assert flags[seen] == {"\\Seen", "\\Flagged"}
    assert flags[uids[0]] == set()  # and fetch_raw did not mark it \Seen


def test_deliver_files_show_up_with_uids_in_delivery_order(dovecot):
    mails = [_mail(n) for n in range(40)]
    dovecot.deliver_files("INBOX", mails[:20])
    dovecot.deliver_files("Archiv", mails[20:])  # a new folder is created first
    inbox, archive = dovecot.uids("INBOX"), dovecot.uids("Archiv")
    assert inbox == list(range(1, 21)) and archive == list(range(1, 21))
    assert dovecot.fetch_raw("INBOX", 1) == mails[0]
    assert dovecot.fetch_raw("Archiv", 20) == mails[39]
    assert dovecot.append("INBOX", _mail(99)) == 21
    dovecot.deliver_files("INBOX", [_mail(100)])  # after the folder was seen by Dovecot
    assert dovecot.uids("INBOX")[-1] == 22
    assert dovecot.flags("INBOX")[22] == set()


def test_restart_and_crash_keep_port_mail_uids_and_uidvalidity(dovecot):
    dovecot.create("Rechnungen")
    uids = [dovecot.append("Rechnungen", _mail(n)) for n in range(3)]
    validity, port = dovecot.uidvalidity("Rechnungen"), dovecot.port
    imap = dovecot.client()  # a client connected across the restart loses its connection
    imap.select('"Rechnungen"')
    dovecot.restart()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        imap.noop()
    imap.shutdown()
    assert dovecot.port == port
    assert dovecot.uids("Rechnungen") == uids
    assert dovecot.uidvalidity("Rechnungen") == validity
    dovecot.kill()
    assert not dovecot.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection((HOST, port), 1):
        pass
    dovecot.start()
    assert dovecot.uids("Rechnungen") == uids
    assert dovecot.uidvalidity("Rechnungen") == validity
    assert dovecot.fetch_raw("Rechnungen", uids[1]) == _mail(1)
    assert dovecot.append("Rechnungen", _mail(9)) == uids[-1] + 1


def test_delete_and_create_of_a_folder_changes_uidvalidity(dovecot):
    dovecot.create("Rechnungen")
    dovecot.append("Rechnungen", _mail(1))
    before = dovecot.uidvalidity("Rechnungen")
    dovecot.delete("Rechnungen")
    dovecot.create("Rechnungen")
    assert dovecot.uidvalidity("Rechnungen") != before
    assert dovecot.uids("Rechnungen") == []


def test_idle_false_hides_idle_before_and_after_login(dovecot, make_dovecot):
    quiet = make_dovecot(idle=False)
    for server, idle in ((dovecot, True), (quiet, False)):
        imap = imaplib.IMAP4(server.host, server.port, timeout=10)
        try:
            assert ("IDLE" in imap.capabilities) is idle  # from the greeting
            assert (b"IDLE" in imap.capability()[1][0].split()) is idle
            imap.login("gmid", "imap-secret")
            assert (b"IDLE" in imap.capability()[1][-1].split()) is idle
            assert b"UIDPLUS" in imap.capability()[1][-1].split()
        finally:
            imap.logout()


@pytest.mark.parametrize("folder", ["Entw&APw-rfe", "Rechnungen/&AMQ-rger", "Mit Leerzeichen"])
def test_folders_with_non_ascii_names_in_modified_utf7(dovecot, folder):
    dovecot.create(folder)
    uid = dovecot.append(folder, _mail(1))
    dovecot.deliver_files(folder, [_mail(2)])
    assert dovecot.uids(folder) == [uid, uid + 1]
    assert dovecot.fetch_raw(folder, uid + 1) == _mail(2)
    with dovecot.client() as imap:
        listed = b"\n".join(imap.list()[1])
    assert folder.encode() in listed


def test_two_servers_at_once_and_a_port_taken_meanwhile_is_retried(make_dovecot, monkeypatch):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = dovecot_module.free_port
        monkeypatch.setattr(
            dovecot_module, "free_port", lambda: next(ports, None) or real_free_port()
        )
        first = make_dovecot(users={"anna": "a-secret"})
        assert first.port != busy
        assert "Address already in use" in first.log_text()
    second = make_dovecot()
    assert second.port != first.port
    first.append("INBOX", _mail(1), user="anna")
    assert second.uids("INBOX") == []
    assert first.uids("INBOX", user="anna") == [1]
    first.restart()
    assert second.running and first.uids("INBOX", user="anna") == [1]
