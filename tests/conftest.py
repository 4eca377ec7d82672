"""Shared fixtures: a real gmid daemon in a subprocess, on a temp socket and loopback SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gmid.control.client import ControlClient
from gmid.control.protocol import Status
from gmid.errors import DaemonNotRunning
from tests.support.dovecot import Dovecot, dovecot_binary
from tests.support.needs import unavailable

ROOT = Path(__file__).resolve().parent.parent

BASE_CONFIG = """\
timezone: Europe/Berlin
state_dir: {state}
archive:
  dir: {archive}
control:
  socket: {socket}
smtp:
  listen: 127.0.0.1:0
  max_message_size: {max_size}
  recipients: [invoices@gmid.local]
companies:
  - name: Stadtwerke
    senders: ["@stadtwerke.example"]
  - name: Telekom
    senders: [rechnung@telekom.example]
"""


@dataclass
class Daemon:
    """A daemon started the way a user starts it: `gmid daemon -c FILE`."""

    dir: Path
    config: Path
    socket: Path
    archive: Path
    state: Path
    log: Path
    proc: subprocess.Popen | None = None
    smtp_port: int = 0

    def start(self, timeout: float = 15, **popen) -> Daemon:
        """Start the daemon and wait until its socket answers `status`.

        `popen` goes to subprocess.Popen (env=, preexec_fn=: tests/daemon/test_systemd.py).
        """
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gmid", "daemon", "-c", str(self.config)],
            stdout=logf,
            stderr=logf,
            cwd=ROOT,
            **popen,
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not answer:\n{self.log_text()}")
            try:
                status = self.status()
                if status.pid == self.proc.pid:  # not another daemon on the same socket
                    break
            except DaemonNotRunning:
                pass
            time.sleep(0.05)
        if status.smtp.listen:
            self.smtp_port = int(status.smtp.listen.rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Stop the daemon with a signal and return its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def call(self, coro_fn):
        """Run `coro_fn(client)` against the daemon on a fresh connection."""

        async def go():
            async with await ControlClient.connect(self.socket) as client:
                return await coro_fn(client)

        return asyncio.run(go())

    def status(self) -> Status:
        return self.call(lambda c: c.status())

    def documents(self, **filters):
        return self.call(lambda c: c.documents(**filters))

    def send(self, raw: bytes, *, rcpt="invoices@gmid.local", sender="someone@example.org"):
        """Deliver one mail over SMTP; return (code, text) of the DATA answer."""
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail(sender)
            code, text = smtp.rcpt(rcpt)
            if code >= 400:
                return code, text.decode()
            code, text = smtp.data(raw)
            return code, text.decode()

    def archived_files(self) -> list[Path]:
        """Every file in the archive a user would see (not the hidden temp folder)."""
        return sorted(
            p for p in self.archive.rglob("*") if p.is_file() and ".gmid-tmp" not in p.parts
        )


def make_daemon_dir(max_size: str = "2MB", extra: str = "") -> Daemon:
    # Unix socket paths are limited to 108 bytes: keep the folder short, not under tmp_path.
    base = Path(tempfile.mkdtemp(prefix="gmid-t", dir="/tmp"))
    os.chmod(base, 0o755)  # tests run a client as `nobody`, which must reach the socket path
    d = Daemon(
        dir=base,
        config=base / "config.yaml",
        socket=base / "run" / "gmid.sock",
        archive=base / "archive",
        state=base / "state",
        log=base / "daemon.log",
    )
    d.config.write_text(
        BASE_CONFIG.format(state=d.state, archive=d.archive, socket=d.socket, max_size=max_size)
        + extra
    )
    return d


@pytest.fixture
def daemon_dir():
    d = make_daemon_dir()
    yield d
    d.stop(signal.SIGKILL)
    shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def daemon(daemon_dir: Daemon):
    daemon_dir.start()
    yield daemon_dir
    code = daemon_dir.stop()
    assert code == 0, daemon_dir.log_text()
    assert "Traceback" not in daemon_dir.log_text(), daemon_dir.log_text()


def require_dovecot() -> str:
    """The dovecot program, or skip the test (fail it under CI=true) when it is missing."""
    binary = dovecot_binary()
    if binary is None:
        unavailable("dovecot is not installed (apt-get install dovecot-imapd)")
    return binary


@pytest.fixture
def dovecot(tmp_path: Path):
    """A started Dovecot IMAP server on 127.0.0.1 with user gmid / imap-secret."""
    require_dovecot()
    server = Dovecot(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def make_dovecot(tmp_path: Path):
    """A factory of further started Dovecot servers (`make_dovecot(idle=False)`), all closed
    at teardown, also when the test fails."""
    require_dovecot()
    servers: list[Dovecot] = []

    def make(**kwargs) -> Dovecot:
        server = Dovecot(tmp_path, **kwargs)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@contextlib.contextmanager
def crowded_daemon(section: str, option: str) -> Iterator[Daemon]:
    """A started daemon with 300 file descriptors and `option` (a small cap) in `section`."""
    d = make_daemon_dir(extra="")
    d.config.write_text(d.config.read_text().replace(f"{section}:\n", f"{section}:\n  {option}\n"))

    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

    d.start(preexec_fn=few_fds)
    try:
        yield d
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(d.dir, ignore_errors=True)
