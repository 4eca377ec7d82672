"""SMTP ingest throughput: the gmid daemon against a bare aiosmtpd handler that only fsyncs.

500 mails with a ~130 KB PDF invoice, over one connection and over 4 parallel connections, into
(a) `gmid daemon` (parse, read the PDF: its e-invoice attachment if any and its text, for its
date, number and amount; file it durably under that name, index it and its text) and (b) a bare
aiosmtpd handler on one event loop that writes and fsyncs each raw message. Both run as
subprocesses in the same run, alternating; the figures are medians over --rounds.
Target: a/b >= 0.9. `--kind random` sends PDFs of random bytes (nothing to read) instead.

gmid reads DATA with its own chunked reader (gmid/mail/smtpdata.py) instead of aiosmtpd's
line-by-line loop. For transparency the run also measures (c), the bare handler on that same
reader, so a/c shows what parsing, filing and indexing cost on their own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    ROOT,
    SMTP_POLICY,
    GmidDaemon,
    free_port,
    invoice_mails,
    median,
    send_all,
    wait_port,
)

BARE = r"""
import asyncio, os, sys
from aiosmtpd.smtp import SMTP

out, port, chunked = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "chunked"
if chunked:
    from gmid.mail.smtpdata import ChunkedDataSMTP as SMTP
count = 0

class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        fd = os.open(os.path.join(out, f"{count}.eml"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, envelope.original_content)
            os.fsync(fd)
        finally:
            os.close(fd)
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), data_size_limit=25_000_000), "127.0.0.1", port)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def text_invoice_mails(n: int, size: int = 130_000) -> list[bytes]:
    """n distinct mails, each with a PDF invoice whose text gives its date, number and amount
    (padded with an unused stream to about size bytes, as a real invoice's fonts and logo)."""
    from email.message import EmailMessage

    from gmid.demo.pdf import simple_pdf

    mails = []
    for i in range(n):
        pdf = simple_pdf(
            [
                "Stadtwerke Musterstadt GmbH, Hauptstr. 1, 12345 Musterstadt",
                f"Rechnung Nr. SW-2025-{i:05d}",
                f"Rechnungsdatum: {1 + i % 28:02d}.04.2025",
                "Strom, Abschlag April 2025",
                f"Gesamtbetrag: {100 + i},{i % 100:02d} EUR",
                "USt-IdNr.: DE123456789",
            ],
            filler=os.urandom(size),
        )
        msg = EmailMessage()
        msg["From"] = "rechnung@stadtwerke.example"
        msg["To"] = "invoices@gmid.local"
        msg["Subject"] = f"Rechnung {i}"
        msg["Message-ID"] = f"<bench-text-{i}-{time.time_ns()}@stadtwerke.example>"
        msg.set_content("Anbei Ihre Rechnung.\n")
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"R{i}.pdf")
        mails.append(msg.as_bytes(policy=SMTP_POLICY))
    return mails


def deliver(port: int, mails: list[bytes], connections: int) -> float:
    """Send all mails over `connections` parallel SMTP connections; return mails per second."""
    chunks = [mails[i::connections] for i in range(connections)]
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda chunk: send_all(port, chunk), chunks))
    return len(mails) / (time.perf_counter() - start)


def run_gmid(mails: list[bytes], connections: int) -> float:
    daemon = GmidDaemon()
    try:
        daemon.start()
        wait_port(daemon.port)
        rate = deliver(daemon.port, mails, connections)
        stored = list((daemon.dir / "archive").rglob("*.pdf"))
        assert len(stored) == len(mails), f"gmid archived {len(stored)} of {len(mails)}"
        return rate
    finally:
        daemon.stop()


def run_bare(mails: list[bytes], connections: int, reader: str = "stock") -> float:
    out = Path(tempfile.mkdtemp(prefix="gmid-bare", dir="/tmp"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(out), str(port), reader], cwd=ROOT)
    try:
        wait_port(port)
        rate = deliver(port, mails, connections)
        assert len(list(out.iterdir())) == len(mails)
        return rate
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kind", choices=["text", "random"], default="text")
    args = parser.parse_args()
    print(f"building {args.mails} mails with a ~130 KB PDF ({args.kind}) each...", flush=True)
    mails = text_invoice_mails(args.mails) if args.kind == "text" else invoice_mails(args.mails)
    print(f"mail size: {len(mails[0]) / 1000:.0f} KB")
    worst = float("inf")
    for connections in (1, 4):
        gmid_rates, bare_rates, chunked_rates = [], [], []
        for _ in range(args.rounds):
            bare_rates.append(run_bare(mails, connections))
            gmid_rates.append(run_gmid(mails, connections))
            chunked_rates.append(run_bare(mails, connections, "chunked"))
        a, b, c = median(gmid_rates), median(bare_rates), median(chunked_rates)
        worst = min(worst, a / b)
        print(
            f"{connections} connection(s): (a) gmid {a:6.1f} mails/s, (b) bare aiosmtpd+fsync "
            f"{b:6.1f} mails/s, ratio a/b {a / b:.2f}; (c) bare on gmid's DATA reader "
            f"{c:6.1f} mails/s, a/c {a / c:.2f}"
        )
        rounds = ", ".join(
            f"{x:.0f}/{y:.0f}/{z:.0f}"
            for x, y, z in zip(gmid_rates, bare_rates, chunked_rates, strict=True)
        )
        print(f"    rounds a/b/c: {rounds}")
    print(f"worst ratio {worst:.2f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
