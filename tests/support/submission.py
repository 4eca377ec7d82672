"""A real mail submission server for tests: a private Postfix with Dovecot SASL, on 127.0.0.1.

What an accounting inbox's users send through: Postfix's smtpd with STARTTLS (a certificate of
a CA the test made, `ca_file`) and AUTH PLAIN/LOGIN checked by a private Dovecot's auth service
(its passwd-file holds the users), delivering every mail for `@accounting.test` into a maildir
that the test reads back (`mails()`). Three listeners:

- `port`: submission, STARTTLS required before AUTH and MAIL (as on port 587),
- `tls_port`: TLS from the first byte (as on port 465),
- `plain_port`: the same server offering no STARTTLS at all (a client must refuse it).

Postfix's master starts as root only; without root, or without postfix or dovecot installed
(scripts/test installs both), `usable()` says why.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from tests.support.ca import make_ca
from tests.support.dovecot import dovecot_binary
from tests.support.ports import free_port
from tests.support.postfix import postfix_binary
from tests.support.postfix import usable as postfix_usable

HOST = "127.0.0.1"
DOMAIN = "accounting.test"
INBOX = f"inbox@{DOMAIN}"
START_TIMEOUT = 20.0

MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
{host}:{tls_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
{host}:{plain_port} inet n - n - - smtpd -o smtpd_tls_security_level=none -o smtpd_tls_auth_only=no
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
virtual   unix  -       n       n       -       -       virtual
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
inet_interfaces = {host}
inet_protocols = ipv4
myhostname = submission.gmid.test
mydestination =
mynetworks =
relay_domains =
alias_maps =
alias_database =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/conf/mailboxes
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtpd_tls_cert_file = {root}/conf/server.pem
smtpd_tls_key_file = {root}/conf/server.key
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {root}/auth/auth-postfix
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
maillog_file = /dev/stdout
"""

DOVECOT_CONF = """\
protocols =
base_dir = {root}/dovecot
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
instance_name = gmid-submission-{token}
auth_mechanisms = plain login
auth_failure_delay = 0
disable_plaintext_auth = no
ssl = no
passdb {{
  driver = passwd-file
  args = {root}/conf/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {root}/auth/auth-postfix {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def usable() -> str | None:
    """Why the submission server cannot run here, or None when it can."""
    if dovecot_binary() is None:
        return "dovecot is not installed (apt-get install dovecot-imapd)"
    return postfix_usable()


class Submission:
    """A private Postfix + Dovecot auth: start(), `port`, `ca_file`, `mails()`, stop()."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = dict(users)
        self.root = Path(tempfile.mkdtemp(prefix="gmid-sub-", dir="/tmp"))
        os.chmod(self.root, 0o755)  # Postfix's and Dovecot's own users pass through
        self.conf = self.root / "conf"
        self.log = self.root / "maillog"
        self.port, self.tls_port, self.plain_port = free_port(), free_port(), free_port()
        self.ca_file = self.root / "ca.pem"
        self.postfix: subprocess.Popen[bytes] | None = None
        self.dovecot: subprocess.Popen[bytes] | None = None

    def start(self) -> Submission:
        postfix = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        for folder in ("conf", "queue", "data", "mail", "auth", "dovecot", "dovecot-state"):
            (self.root / folder).mkdir(mode=0o755)
        os.chown(self.root / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        ca, cert, key = make_ca(self.conf)
        shutil.copyfile(ca, self.ca_file)
        os.chmod(key, 0o600)
        del cert
        passwd = "".join(f"{user}:{{PLAIN}}{pw}\n" for user, pw in self.users.items())
        (self.conf / "passwd").write_text(passwd)
        os.chmod(self.conf / "passwd", 0o644)
        (self.conf / "mailboxes").write_text(f"{INBOX} inbox/\n")
        values = {"host": HOST, "root": self.root, "domain": DOMAIN}
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(**values, uid=nobody.pw_uid, gid=nobody.pw_gid)
        )
        ports = {"port": self.port, "tls_port": self.tls_port, "plain_port": self.plain_port}
        (self.conf / "master.cf").write_text(MASTER_CF.format(host=HOST, **ports))
        dovecot_conf = self.conf / "dovecot.conf"
        dovecot_conf.write_text(DOVECOT_CONF.format(root=self.root, token=os.urandom(4).hex()))
        with self.log.open("ab") as out:
            self.dovecot = subprocess.Popen(
                [dovecot_binary() or "dovecot", "-F", "-c", str(dovecot_conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.postfix = subprocess.Popen(
                [postfix_binary() or "postfix", "-c", str(self.conf), "start-fg"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        auth = self.root / "auth" / "auth-postfix"
        while not (auth.exists() and "daemon started" in self.log_text() and self._answers()):
            dead = self.postfix.poll() is not None or self.dovecot.poll() is not None
            if dead or time.monotonic() > deadline:
                log = self.log_text()[-3000:]
                self.stop()
                raise RuntimeError(f"the submission server did not start:\n{log}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"220")
        except OSError:
            return False

    def maildir(self) -> Path:
        return self.root / "mail" / "inbox"

    def mails(self) -> list[EmailMessage]:
        """The mails delivered to INBOX so far, oldest first."""
        new = self.maildir() / "new"
        files = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime) if new.is_dir() else []
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(f.read_bytes()) for f in files]  # type: ignore[misc]

    def wait_mail(self, message_id: str, timeout: float = 20) -> EmailMessage:
        """Wait until the mail with that Message-ID is in INBOX; it."""
        deadline = time.monotonic() + timeout
        while not (found := [m for m in self.mails() if m["Message-ID"] == message_id]):
            if time.monotonic() > deadline:
                log = self.log_text()[-3000:]
                raise AssertionError(f"no mail {message_id} delivered:\n{log}")
            time.sleep(0.05)
        return found[0]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.postfix is not None and self.postfix.poll() is None:
            subprocess.run(
                [postfix_binary() or "postfix", "-c", str(self.conf), "stop"],
                capture_output=True,
                timeout=30,
            )
            try:
                self.postfix.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.postfix.pid, signal.SIGKILL)
                self.postfix.wait()
        if self.dovecot is not None and self.dovecot.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.dovecot.pid, signal.SIGTERM)
            try:
                self.dovecot.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.dovecot.pid, signal.SIGKILL)
                self.dovecot.wait()
        shutil.rmtree(self.root, ignore_errors=True)
