"""A real Postfix for tests: a private instance that relays every mail to gmid's listener.

Debian's `postfix` package, installed by the test command with no configuration and its
service disabled, is run here with a config folder of its own under /tmp: it listens on
127.0.0.1 on a free port, accepts mail from this machine for any address, and relays it to
`[127.0.0.1]:RELAY_PORT` (gmid). Its log goes to its standard output, kept in a file the tests
read (`status=sent (250 ...)` carries gmid's reply). Postfix's master must start as root:
without root the tests that need it are skipped (under CI=true they fail).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT = 20.0

# The services a relay needs; every one outside a chroot ("n" in the fifth column).
MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
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
myhostname = relay.gmid.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [{host}]:{relay_port}
smtp_tls_security_level = none
maillog_file = /dev/stdout
message_size_limit = {size}
# a refused mail is not retried for minutes, and a test never waits for that
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
"""


class PostfixError(RuntimeError):
    """The private Postfix could not be set up or started."""


def postfix_binary() -> str | None:
    """The postfix command: on PATH or in /usr/sbin."""
    found = shutil.which("postfix")
    if found:
        return found
    return "/usr/sbin/postfix" if os.access("/usr/sbin/postfix", os.X_OK) else None


def usable() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    if postfix_binary() is None:
        return "postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "Postfix's master starts as root only"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix user is missing (the postfix package makes it)"
    return None


class Postfix:
    """A private Postfix on 127.0.0.1 that relays to RELAY_PORT; start(), send(), stop()."""

    def __init__(self, relay_port: int, size_limit: int = 40_000_000) -> None:
        self.binary = postfix_binary() or "postfix"
        self.root = Path(tempfile.mkdtemp(prefix="gmid-pf-", dir="/tmp"))
        os.chmod(self.root, 0o755)  # Postfix's own processes pass through as user postfix
        self.conf = self.root / "conf"
        self.log = self.root / "maillog"
        self.port = free_port()
        self.relay_port = relay_port
        self.size_limit = size_limit
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Postfix:
        postfix = pwd.getpwnam("postfix")
        self.conf.mkdir()
        for folder in ("queue", "data"):
            (self.root / folder).mkdir(mode=0o755)
        os.chown(self.root / "data", postfix.pw_uid, postfix.pw_gid)
        values = {"host": HOST, "root": self.root, "relay_port": self.relay_port}
        (self.conf / "main.cf").write_text(MAIN_CF.format(**values, size=self.size_limit))
        (self.conf / "master.cf").write_text(MASTER_CF.format(host=HOST, port=self.port))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf), "start-fg"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while "daemon started" not in self.log_text() or not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PostfixError(f"Postfix did not start:\n{self.log_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"220")
        except OSError:
            return False

    def send(self, raw: bytes, *, rcpt: str = "invoices@gmid.local", sender: str) -> None:
        """Hand one mail to Postfix; it relays it to gmid in its own time."""
        with smtplib.SMTP(HOST, self.port, timeout=30) as smtp:
            smtp.sendmail(sender, [rcpt], raw)

    def replies(self) -> list[str]:
        """gmid's answers as Postfix logged them (`status=sent (250 ...)`), in order."""
        return re.findall(r"status=\w+ \((.*)\)$", self.log_text(), re.M)

    def wait_replies(self, count: int, timeout: float = 30) -> list[str]:
        """Wait until Postfix has delivered (or given up on) `count` mails; their replies."""
        deadline = time.monotonic() + timeout
        while len(found := self.replies()) < count:
            if time.monotonic() > deadline:
                raise PostfixError(f"{len(found)} of {count} relayed:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        return found

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run(
                [self.binary, "-c", str(self.conf), "stop"], capture_output=True, timeout=30
            )
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
