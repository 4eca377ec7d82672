"""Delivery to WebDAV: the gmid daemon's outbox against a bare requests client, same files.

1,000 documents (~50 KB PDFs) are filed in a gmid archive over SMTP first. Then, alternating in
the same run, into a fresh folder of one WebDAV server (wsgidav on cheroot, its own process,
tests/support/webdav.py) each round:
(a) gmid: `deliver.queue --all` for a destination with `concurrency: 4`, timed until the outbox
    says all 1,000 are done (claimed, PUT with If-None-Match, recorded in the index);
(b) bare: requests, 4 threads with a Session each, PUT of the same files, nothing recorded.
Throughput is documents per second; the figures are medians over --rounds. Target: a/b >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import GmidDaemon, invoice_mails, median, send_all, wait_port

from gmid.control.client import ControlClient
from tests.support.webdav import serve

CONCURRENCY = 4


def destinations(url: str, rounds: int) -> str:
    """One destination per round, each into its own folder."""
    text = "deliver:\n"
    for i in range(rounds):
        text += (
            f"  - name: round{i}\n    type: webdav\n    url: {url}gmid{i}/\n"
            f'    file_name: "{{name}}"\n    concurrency: {CONCURRENCY}\n'
        )
    return text


async def run_gmid(socket: Path, round_: int, expected: int) -> float:
    """Queue every document for this round's destination; documents/s until all are done."""
    name = f"round{round_}"
    async with await ControlClient.connect(socket) as client:
        # Counted by the daemon's events, not by asking it: asking costs the daemon time too.
        events = await client.subscribe(["delivery.done", "delivery.failed", "events.lost"])
        start = time.perf_counter()
        queued = await client.deliver(name)
        assert queued.queued == expected, queued
        done = 0
        async for event in events:
            if event.type == "events.lost":
                raise RuntimeError("events lost: the count is off")
            assert event.type == "delivery.done", event
            done += event.data["destination"] == name
            if done == expected:
                break
        elapsed = time.perf_counter() - start
        page = await client.outbox(destination=name, limit=1)
        info = next(d for d in page.destinations if d.name == name)
        assert (info.done, info.failed) == (expected, 0), info
        return expected / elapsed


def run_bare(url: str, files: list[Path]) -> float:
    """PUT every file with CONCURRENCY threads, a requests.Session each; documents/s."""
    local = threading.local()

    def put(path: Path) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        answer = session.put(url + path.name, data=path.read_bytes(), timeout=60)
        assert answer.status_code in (201, 204), answer.status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(put, files))
    return len(files) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="gmid-bdav", dir="/tmp"))
    try:
        with serve(base / "dav", threads=16) as dav:
            daemon = GmidDaemon()
            try:
                daemon.start()
                wait_port(daemon.port)
                print(f"filing {args.documents} documents of ~50 KB over SMTP...", flush=True)
                send_all(daemon.port, invoice_mails(args.documents, size=50_000))
                files = sorted((daemon.dir / "archive").rglob("*.pdf"))
                assert len(files) == args.documents, len(files)
                # Added after the filing: a destination gets what is filed from then on.
                assert daemon.proc is not None
                daemon.proc.terminate()
                daemon.proc.wait(30)
                with daemon.config.open("a") as config:
                    config.write(destinations(dav.url, args.rounds))
                daemon.start()
                daemon.wait_ready()
                gmid_rates, bare_rates = [], []
                for i in range(args.rounds):
                    for folder in (f"gmid{i}/", f"bare{i}/"):
                        requests.request("MKCOL", dav.url + folder, timeout=10)
                    bare_rates.append(run_bare(f"{dav.url}bare{i}/", files))
                    gmid_rates.append(asyncio.run(run_gmid(daemon.socket, i, len(files))))
                    for folder in (f"gmid{i}", f"bare{i}"):
                        assert len(list((dav.root / folder).iterdir())) == len(files), folder
                        shutil.rmtree(dav.root / folder)
            finally:
                daemon.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    a, b = median(gmid_rates), median(bare_rates)
    print(
        f"{args.documents} documents, {CONCURRENCY} at a time: (a) gmid {a:6.1f} docs/s, "
        f"(b) bare requests {b:6.1f} docs/s, ratio a/b {a / b:.2f} (target >= 0.8)"
    )
    pairs = list(zip(gmid_rates, bare_rates, strict=True))
    rounds = ", ".join(f"{x:.0f}/{y:.0f}" for x, y in pairs)
    each = median([x / y for x, y in pairs])
    print(f"    rounds a/b: {rounds}; median of the rounds' own ratios {each:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
