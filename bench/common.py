"""Shared bits of the benchmarks: a gmid daemon in a subprocess, test mails, medians."""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

from gmid.control.client import ControlClient
from gmid.errors import DaemonNotRunning

ROOT = Path(__file__).resolve().parent.parent
SMTP_POLICY = policy.default.clone(linesep="\r\n")


def pdf_of_size(seed: int, size: int = 130_000) -> bytes:
    """A valid-looking PDF of about `size` bytes whose content differs with `seed`."""
    body = os.urandom(size)
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Length "
        + str(len(body)).encode()
        + b" >>\nstream\n"
        + body
        + b"\nendstream\nendobj\n% seed "
        + str(seed).encode()
        + b"\n%%EOF\n"
    )


def invoice_mails(n: int, size: int = 130_000) -> list[bytes]:
    """n distinct invoice mails, each with one PDF attachment."""
    mails = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = "rechnung@stadtwerke.example"
        msg["To"] = "invoices@gmid.local"
        msg["Subject"] = f"Rechnung {i}"
        msg["Message-ID"] = f"<bench-{i}-{time.time_ns()}@stadtwerke.example>"
        msg.set_content("Anbei Ihre Rechnung.\n")
        msg.add_attachment(
            pdf_of_size(i, size), maintype="application", subtype="pdf", filename=f"R{i}.pdf"
        )
        mails.append(msg.as_bytes(policy=SMTP_POLICY))
    return mails


def send_all(port: int, mails: list[bytes]) -> None:
    """Deliver mails over one SMTP connection, failing loudly on any non-250 answer."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for raw in mails:
            smtp.sendmail("rechnung@stadtwerke.example", ["invoices@gmid.local"], raw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(100)  # the 220 greeting, not only the open port
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class GmidDaemon:
    """`gmid daemon -c FILE` on a temp state, archive and socket, SMTP on a free port.

    `extra` is appended to the config (e.g. `portals:` and `runs:` sections).
    """

    def __init__(self, extra: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gmid-b", dir="/tmp"))
        self.port = free_port()
        self.socket = self.dir / "run" / "gmid.sock"
        self.config = self.dir / "config.yaml"
        self.config.write_text(
            f"state_dir: {self.dir / 'state'}\n"
            f"archive:\n  dir: {self.dir / 'archive'}\n"
            f"control:\n  socket: {self.socket}\n"
            f"smtp:\n  listen: 127.0.0.1:{self.port}\n  max_message_size: 25MB\n"
            "companies:\n  - name: Stadtwerke\n    senders: ['@stadtwerke.example']\n" + extra
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gmid", "daemon", "-c", str(self.config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "daemon.log").open("wb"),
        )
        return self.proc

    def wait_ready(self, timeout: float = 15) -> None:
        """Wait until the control socket answers `status` (the daemon has started)."""

        async def answered() -> bool:
            try:
                async with await ControlClient.connect(self.socket, timeout=2) as client:
                    await client.status()
                    return True
            except DaemonNotRunning:
                return False

        deadline = time.monotonic() + timeout
        while not asyncio.run(answered()):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gmid daemon exited:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gmid daemon did not answer:\n{self.log_text()}")
            time.sleep(0.02)

    def log_text(self) -> str:
        path = self.dir / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn, rounds: int) -> float:
    """Median seconds of fn() over rounds, after one warm-up call."""
    fn()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
