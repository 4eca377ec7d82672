"""Daemon footprint: time from `gmid daemon` start until the socket answers `status`, idle RSS.

Targets: <= 1.0 s to answer, <= 60 MB RSS when idle (the document readers, lxml and pypdf,
are imported when the first document is read). For scale, the same run times a bare
`python -c "import asyncio"` start, and reports the RSS once one PDF invoice has been mailed in
and read. Medians over --rounds.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GmidDaemon, median, send_all, wait_port
from smtp_ingest import text_invoice_mails


def status_answered(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(path))
            s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "status"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return False
                data += chunk
            return "result" in json.loads(data)
    except OSError:
        return False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_round(idle: float) -> tuple[float, float, float]:
    daemon = GmidDaemon()
    try:
        start = time.perf_counter()
        proc = daemon.start()
        while not status_answered(daemon.socket):
            if proc.poll() is not None:
                raise RuntimeError((daemon.dir / "daemon.log").read_text())
            time.sleep(0.005)
        ready = time.perf_counter() - start
        time.sleep(idle)
        rss = rss_mb(proc.pid)
        wait_port(daemon.port)
        send_all(daemon.port, text_invoice_mails(1))
        return ready, rss, rss_mb(proc.pid)
    finally:
        daemon.stop()


def bare_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import asyncio"], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before reading RSS")
    args = parser.parse_args()
    rounds = [one_round(args.idle) for _ in range(args.rounds)]
    bare = median([bare_python() for _ in range(args.rounds)])
    ready = median([r for r, _, _ in rounds])
    rss = median([m for _, m, _ in rounds])
    reading = median([m for _, _, m in rounds])
    print(
        f"start -> status answered: {ready:.3f} s median (target <= 1.0 s); "
        f"bare `python -c 'import asyncio'`: {bare:.3f} s; ratio {ready / bare:.1f}x"
    )
    print(f"idle RSS: {rss:.1f} MB median (target <= 60 MB); {reading:.1f} MB once it read a PDF")
    print("rounds: " + ", ".join(f"{r:.3f} s/{m:.1f} MB/{x:.1f} MB" for r, m, x in rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
