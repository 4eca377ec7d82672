"""SMTP memory: many clients sending big mails to `gmid daemon` at the same time.

--mails clients connect at once and each sends all of one mail with a --size PDF but its last
kilobyte; once the daemon has taken in what they sent, the run reads the daemon's peak resident
memory (VmHWM), then lets every client finish and reads it again once all mails are filed.
Reported: the growth over the idle daemon in both phases, against the mails' total size.

A mail beyond smtp.spool_threshold (1 MiB) waits in a spool file while it arrives, and big mails
are parsed one at a time: the first figure is about mails x threshold, the second about one big
mail's parse on top. Before the spool, both were the total size and more (the issue's example:
40 mails of 24 MB took 954 MB).
"""

from __future__ import annotations

import argparse
import re
import smtplib
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GmidDaemon, invoice_mails, wait_port


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match is not None
    return int(match.group(1)) * 1024


def held_delivery(port: int, raw: bytes, sent: threading.Semaphore, go: threading.Event) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=600) as smtp:
        smtp.ehlo()
        smtp.mail("rechnung@stadtwerke.example")
        smtp.rcpt("invoices@gmid.local")
        smtp.putcmd("data")
        if smtp.getreply()[0] != 354:
            raise RuntimeError("DATA refused")
        smtp.send(raw[:-1000])
        sent.release()
        go.wait()
        smtp.send(raw[-1000:] + b".\r\n")
        code, text = smtp.getreply()
        if code != 250:
            raise RuntimeError(f"{code} {text.decode()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=40)
    parser.add_argument("--size", type=float, default=24, help="PDF size in MB")
    args = parser.parse_args()
    mails = invoice_mails(args.mails, int(args.size * 1e6))
    assert all(b"\r\n." not in raw for raw in mails)  # sent as they are, no dot-stuffing
    total = sum(map(len, mails))
    daemon = GmidDaemon()
    try:
        proc = daemon.start()
        daemon.wait_ready()
        wait_port(daemon.port)
        idle = peak_rss(proc.pid)
        sent = threading.Semaphore(0)
        go = threading.Event()
        errors: list[BaseException] = []

        def run(raw: bytes) -> None:
            try:
                held_delivery(daemon.port, raw, sent, go)
            except BaseException as e:
                errors.append(e)
                sent.release()

        threads = [threading.Thread(target=run, args=(raw,)) for raw in mails]
        for thread in threads:
            thread.start()
        for _ in mails:
            sent.acquire()
        # The client's send() returns once the kernel has the data: give the daemon time to
        # read it, until its spool stops growing.
        spool = daemon.dir / "state" / "smtp-spool"
        size = -1
        while size != (size := sum(f.stat().st_size for f in spool.iterdir())):
            time.sleep(1)
        receiving = peak_rss(proc.pid) - idle
        started = time.monotonic()
        go.set()
        for thread in threads:
            thread.join()
        filing = time.monotonic() - started
        overall = peak_rss(proc.pid) - idle
        if errors:
            raise SystemExit(f"deliveries failed: {errors[:3]}")
    finally:
        daemon.stop()
    print(f"{args.mails} mails of {total / args.mails / 1e6:.1f} MB = {total / 1e6:.0f} MB")
    print(f"peak RSS growth while receiving: {receiving / 1e6:.1f} MB")
    print(f"peak RSS growth overall:         {overall / 1e6:.1f} MB")
    print(f"filing after the last byte:      {filing:.1f} s")


if __name__ == "__main__":
    main()
