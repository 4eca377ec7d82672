"""SMTP from other machines: the allow-list, STARTTLS with AUTH, and the config that insists.

Real daemons and real SMTP over TCP. Tests can only use loopback, so the listener is on
127.0.0.2 and clients connect from other addresses of 127.0.0.0/8: once `smtp.clients` is set,
only the addresses it lists count as trusted, loopback or not, so 127.0.0.3 is a stranger.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gmid.mail.smtp import allowed
from tests.conftest import ROOT, Daemon, make_daemon_dir
from tests.support.mails import invoice_mail, make_pdf

LISTEN = "127.0.0.2"
TRUSTED = "127.0.0.4"  # listed in smtp.clients
STRANGER = "127.0.0.3"  # not listed
PASSWORD = "correct horse battery staple"
WRONG = "wrong-password-for-the-log"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.2 and its key (0600)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "smtp.pem", folder / "smtp.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=gmid.test"),
            *("-addext", f"subjectAltName=IP:{LISTEN}"),
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(key, 0o600)
    return cert, key


def _with_smtp(smtp: str) -> Daemon:
    """A daemon folder whose smtp: section says `smtp` instead of listening on 127.0.0.1:0."""
    d = make_daemon_dir()
    lines = textwrap.indent(textwrap.dedent(smtp), "  ")
    d.config.write_text(d.config.read_text().replace("  listen: 127.0.0.1:0\n", lines))
    return d


@pytest.fixture
def start() -> Iterator[Callable[[str], Daemon]]:
    """Start daemons with a given smtp: section; each must stop cleanly, without a traceback."""
    started: list[Daemon] = []

    def make(smtp: str) -> Daemon:
        d = _with_smtp(smtp)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        code = d.stop()
        assert code == 0, d.log_text()
        assert "Traceback" not in d.log_text(), d.log_text()
        shutil.rmtree(d.dir, ignore_errors=True)


def _client(d: Daemon, source: str) -> smtplib.SMTP:
    return smtplib.SMTP(LISTEN, d.smtp_port, source_address=(source, 0), timeout=30)


def _deliver(smtp: smtplib.SMTP, text: str) -> tuple[int, str]:
    """MAIL, RCPT and DATA of one invoice; the first answer that is not a success."""
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf(text))])
    smtp.ehlo_or_helo_if_needed()
    for code, answer in (
        smtp.mail("rechnung@telekom.example"),
        smtp.rcpt("invoices@gmid.local"),
    ):
        if code >= 400:
            return code, answer.decode()
    code, answer = smtp.data(raw)
    return code, answer.decode()


def _tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))  # verifies the name: IP 127.0.0.2


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


# --- the config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("smtp", "line", "option", "message"),
    [
        ("listen: 0.0.0.0:0\n", 8, "smtp.listen", "0.0.0.0 is not a loopback address"),
        (
            "listen: 0.0.0.0:0\nallow_remote: true\n",
            9,
            "smtp.allow_remote",
            "no other machine could deliver: clients: is not set (this machine only) and auth:",
        ),
        (
            "listen: 127.0.0.2:0\nauth: {username: scanner, password: {env: SMTP_PW}}\n",
            9,
            "smtp.auth",
            "AUTH is only offered over TLS",
        ),
    ],
)
def test_the_daemon_refuses_to_start_with_an_open_listener(
    smtp: str, line: int, option: str, message: str
) -> None:
    d = _with_smtp(smtp)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gmid", "daemon", "-c", str(d.config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        shutil.rmtree(d.dir, ignore_errors=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{d.config}:{line}: {option}: {message}"), proc.stderr


# --- the allow-list ---------------------------------------------------------------------------


def test_a_client_outside_the_list_is_refused_and_logged_once(start) -> None:
    d = start(f"listen: {LISTEN}:0\nclients: [{TRUSTED}]\n")
    for _ in range(2):
        with pytest.raises(smtplib.SMTPConnectError) as info:
            _client(d, STRANGER)
        assert info.value.smtp_code == 554
        assert info.value.smtp_error == f"5.7.1 {STRANGER} may not send mail here".encode()
    # Loopback is trusted only by default: with clients: set, 127.0.0.1 is a stranger too.
    with pytest.raises(smtplib.SMTPConnectError):
        smtplib.SMTP(LISTEN, d.smtp_port, source_address=("127.0.0.1", 0), timeout=30)
    refusals = [line for line in d.log_text().splitlines() if "refused" in line]
    assert len(refusals) == 2, refusals  # 127.0.0.3 once, 127.0.0.1 once
    assert f"SMTP client {STRANGER} refused: not in smtp.clients" in refusals[0]

    with _client(d, TRUSTED) as smtp:
        smtp.ehlo()
        assert "auth" not in smtp.esmtp_features
        assert _deliver(smtp, "trusted")[0] == 250
    assert d.documents().total == 1


def test_a_reload_changes_the_list_for_the_next_client(start) -> None:
    d = start(f"listen: {LISTEN}:0\nclients: [{TRUSTED}]\n")
    with pytest.raises(smtplib.SMTPConnectError):
        _client(d, STRANGER)
    d.config.write_text(d.config.read_text().replace(TRUSTED, f"{TRUSTED}, 127.0.0.0/30"))
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "config reloaded" not in d.log_text():
        assert time.monotonic() < deadline, d.log_text()
        time.sleep(0.05)
    with _client(d, STRANGER) as smtp:
        assert _deliver(smtp, "after reload")[0] == 250


# --- STARTTLS and AUTH ------------------------------------------------------------------------


def _auth_config(cert: tuple[Path, Path], password_file: Path) -> str:
    return (
        f"listen: {LISTEN}:0\n"
        f"clients: [{TRUSTED}]\n"
        f"tls: {{cert: {cert[0]}, key: {cert[1]}}}\n"
        f"auth: {{username: scanner, password: {{file: {password_file}}}}}\n"
    )


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "smtp.pw"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def test_a_stranger_delivers_after_starttls_and_auth(start, cert, password_file) -> None:
    d = start(_auth_config(cert, password_file))
    with _client(d, STRANGER) as smtp:
        smtp.ehlo()
        assert "starttls" in smtp.esmtp_features
        assert "auth" not in smtp.esmtp_features  # not offered in clear
        code, text = smtp.docmd("AUTH", f"PLAIN {_plain('scanner', PASSWORD)}")
        assert (code, text) == (
            538,
            b"5.7.11 Encryption required for requested authentication mechanism",
        )
        assert smtp.mail("rechnung@telekom.example") == (530, b"5.7.0 Authentication required")

        smtp.starttls(context=_tls(cert[0]))
        smtp.ehlo()
        assert smtp.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert smtp.mail("rechnung@telekom.example")[0] == 530  # TLS alone is not enough
        # smtplib tries PLAIN, then LOGIN: two of the three attempts a connection has.
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.login("scanner", WRONG)
        assert info.value.smtp_code == 535
        assert smtp.login("scanner", PASSWORD)[0] == 235
        assert _deliver(smtp, "authenticated") == (250, "2.0.0 OK: 1 new document(s) for Telekom")

    with _client(d, STRANGER) as smtp:
        smtp.starttls(context=_tls(cert[0]))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("someone", PASSWORD)  # the right password, for another user

    log = d.log_text()
    assert f"SMTP client {STRANGER} authenticated as scanner" in log
    assert f"SMTP AUTH from {STRANGER} failed: wrong user name or password" in log
    for secret in (PASSWORD, WRONG, _plain("scanner", PASSWORD), _plain("scanner", WRONG)):
        assert secret not in log
    assert base64.b64encode(PASSWORD.encode()).decode() not in log  # AUTH LOGIN's form


def test_a_listed_client_needs_no_auth_and_others_need_it(start, cert, password_file) -> None:
    d = start(_auth_config(cert, password_file))
    with _client(d, TRUSTED) as smtp:
        assert _deliver(smtp, "listed")[0] == 250
    with smtplib.SMTP(LISTEN, d.smtp_port, timeout=30) as smtp:  # from 127.0.0.1: not listed
        smtp.ehlo()
        assert smtp.mail("rechnung@telekom.example") == (530, b"5.7.0 Authentication required")


def test_three_wrong_passwords_close_the_connection(start, cert, password_file) -> None:
    d = start(_auth_config(cert, password_file))
    with _client(d, STRANGER) as smtp:
        smtp.starttls(context=_tls(cert[0]))
        smtp.ehlo()
        for _ in range(2):
            assert smtp.docmd("AUTH", f"PLAIN {_plain('scanner', WRONG)}")[0] == 535
        code, text = smtp.docmd("AUTH", f"PLAIN {_plain('scanner', WRONG)}")
        assert (code, text) == (421, b"4.7.0 Too many failed authentications, closing")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.docmd("AUTH", f"PLAIN {_plain('scanner', PASSWORD)}")


def test_a_password_that_cannot_be_read_is_a_temporary_failure(
    start, cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GMID_TEST_SMTP_PASSWORD", raising=False)
    d = start(
        f"listen: {LISTEN}:0\n"
        f"tls: {{cert: {cert[0]}, key: {cert[1]}}}\n"
        "auth: {username: scanner, password: {env: GMID_TEST_SMTP_PASSWORD}}\n"
    )
    with _client(d, STRANGER) as smtp:
        smtp.starttls(context=_tls(cert[0]))
        smtp.ehlo()
        assert smtp.docmd("AUTH", f"PLAIN {_plain('scanner', PASSWORD)}")[0] == 454
    assert "smtp.auth.password: env GMID_TEST_SMTP_PASSWORD is not set" in d.log_text()


def test_tls_without_auth_offers_starttls_and_no_auth(start, cert) -> None:
    d = start(
        f"listen: {LISTEN}:0\nclients: [{TRUSTED}]\ntls: {{cert: {cert[0]}, key: {cert[1]}}}\n"
    )
    with _client(d, TRUSTED) as smtp:
        smtp.starttls(context=_tls(cert[0]))
        smtp.ehlo()
        assert "auth" not in smtp.esmtp_features
        assert smtp.docmd("AUTH", f"PLAIN {_plain('scanner', PASSWORD)}")[0] == 502
        assert _deliver(smtp, "over tls")[0] == 250


def test_a_certificate_that_does_not_load_stops_the_start(tmp_path: Path, cert) -> None:
    d = _with_smtp(f"listen: {LISTEN}:0\ntls: {{cert: {cert[0]}, key: {cert[0]}}}\n")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gmid", "daemon", "-c", str(d.config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        shutil.rmtree(d.dir, ignore_errors=True)
    assert proc.returncode == 1
    assert f"gmid: smtp.tls: cannot use the certificate {cert[0]} with the key {cert[0]}" in (
        proc.stderr
    )


# --- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (("192.168.1.5", 40000), True),
        (("::ffff:192.168.1.5", 40000, 0, 0), True),  # IPv4 client of a dual-stack listener
        (("192.168.2.5", 40000), False),
        (("2001:db8::7", 40000, 0, 0), True),
        (("fe80::1%eth0", 40000, 0, 2), False),
        (("::1", 40000, 0, 0), False),
        ("not a peer", False),
    ],
)
def test_which_peers_are_allowed(peer: object, expected: bool) -> None:
    networks = (ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("2001:db8::/32"))
    assert allowed(peer, networks) is expected
