"""Shared bits of the benchmarks: a gmid daemon in a subprocess, test mails, medians."""

from __future__ import annotations

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
    """`gmid daemon -c FILE` on a temp state, archive and socket, SMTP on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gmid-b", dir="/tmp"))
        self.port = free_port()
        self.socket = self.dir / "run" / "gmid.sock"
        self.config = self.dir / "config.yaml"
        self.config.write_text(
            f"state_dir: {self.dir / 'state'}\n"
            f"archive:\n  dir: {self.dir / 'archive'}\n"
            f"control:\n  socket: {self.socket}\n"
            f"smtp:\n  listen: 127.0.0.1:{self.port}\n  max_message_size: 25MB\n"
            "companies:\n  - name: Stadtwerke\n    senders: ['@stadtwerke.example']\n"
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

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)
