"""IMAP sync: gmid's first sync of a Dovecot folder against a bare aioimaplib fetch of it.

A real Dovecot on 127.0.0.1 (tests/support/dovecot.py) holds --mails mails of ~50 KB with CRLF line
endings: half carry a PDF attachment (distinct content each), half are text/HTML newsletters
with no document. Three things are measured:

1. First sync, the same folder in the same run, alternating over --rounds, medians:
   (a) `gmid daemon` with a fresh state dir and archive, timed from process start until its
   mailbox status says "idle" with every document filed (1,000 for 2,000 mails);
   (b) a subprocess running bare aioimaplib (login, SELECT, `UID FETCH 1:* (BODY.PEEK[])`),
   timed from process start until the fetch is done.
   Target: a/b <= 1.5. gmid downloads only the bodies that may hold a document, but files each
   one durably (fsync) and indexes it; the bare client writes nothing. For transparency the run
   also shows gmid from the moment its mailbox left "connecting" (after login), the bare fetch
   alone (after SELECT), and the start-up time of a daemon without a mailbox. One untimed run
   of each comes first, so that Dovecot has built its index and cache (as a mail client that
   read the folder before leaves them).
2. Latency: with a daemon idling (IDLE) on an empty folder, another client APPENDs an invoice;
   the time from sending the APPEND until the daemon's `document.added` event arrives over the
   control socket (the document is filed and indexed by then). 20 samples, median and max.
   Target: median <= 1 s. Dovecot itself tells IDLE clients of a change 500 ms after it sees
   it (NOTIFY_DELAY_MSECS in its mailbox-watch.c): that much of each sample is the server's.
3. Poll cost: a Dovecot without IDLE, the mailbox polled every 10 s (the minimum); after the
   first sync, the bytes the server sent and the bodies downloaded during polls that found
   nothing new. Target: no body, a few hundred bytes.

Only 127.0.0.1 traffic; every process and temp dir is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SMTP_POLICY, GmidDaemon, median, pdf_of_size

sys.path.insert(0, str(ROOT))
from gmid.control.client import ControlClient
from gmid.errors import DaemonNotRunning
from tests.support.dovecot import Dovecot, quote

MAIL_SIZE = 50_000
PDF_SIZE = 36_000  # base64 makes ~48.7 KB of it
SYNC_TIMEOUT = 900.0
LATENCY_SAMPLES = 20
POLL_SECONDS = 10

MAILBOX = """\
mailboxes:
  - name: bench
    host: 127.0.0.1
    port: {port}
    security: plain
    username: gmid
    password: {{file: {pwfile}}}
    folders: [{folder}]
    poll: {poll}
"""

BARE = r"""
import asyncio, json, os, sys, time
from aioimaplib import IMAP4

async def main():
    client = IMAP4("127.0.0.1", int(sys.argv[1]), timeout=600)
    await client.wait_hello_from_server()
    response = await client.login("gmid", os.environ["BENCH_IMAP_PASSWORD"])
    assert response.result == "OK", response
    response = await client.select("INBOX")
    assert response.result == "OK", response
    start = time.perf_counter()
    response = await client.uid("fetch", "1:*", "(BODY.PEEK[])")
    fetch = time.perf_counter() - start
    assert response.result == "OK", response.lines[-1:]
    bodies = [x for x in response.lines if isinstance(x, bytearray)]
    print(json.dumps({"fetch": fetch, "bodies": len(bodies), "bytes": sum(map(len, bodies))}),
          flush=True)
    await client.logout()

asyncio.run(main())
"""

# fmt: off
WORDS = [
    "Angebot", "Woche", "Rabatt", "Lieferung", "Versand", "kostenlos", "Newsletter", "neu",
    "jetzt", "bestellen", "Garten", "Sommer", "Winter", "Aktion", "Kunden", "Preis", "Produkt",
    "Auswahl", "entdecken", "Marke", "Qualitaet", "Service",
]
# fmt: on


# ----------------------------------------------------------------------------- mails


def invoice_mail(n: int, tag: str = "R") -> bytes:
    """An invoice of ~50 KB: a short text and a distinct PDF attachment."""
    msg = EmailMessage()
    msg["From"] = "rechnung@stadtwerke.example"
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = f"Rechnung {tag}{n}"
    msg["Message-ID"] = f"<bench-{tag}{n}-{time.time_ns()}@stadtwerke.example>"
    msg.set_content("Anbei Ihre Rechnung.\n")
    msg.add_attachment(
        pdf_of_size(n, PDF_SIZE), maintype="application", subtype="pdf", filename=f"{tag}{n}.pdf"
    )
    return msg.as_bytes(policy=SMTP_POLICY)


def newsletter_mail(n: int, rng: random.Random) -> bytes:
    """A mail of ~50 KB without any document: a long text part and an HTML part."""
    lines = []
    size = 0
    while size < MAIL_SIZE // 2 - 600:
        line = " ".join(rng.choice(WORDS) for _ in range(10))
        lines.append(line)
        size += len(line) + 2
    text = "\n".join(lines) + "\n"
    html = "<html><body>\n" + "".join(f"<p>{line}</p>\n" for line in lines[: len(lines) - 60])
    html += "</body></html>\n"
    msg = EmailMessage()
    msg["From"] = "news@shop.example"
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = f"Newsletter {n}"
    msg["Message-ID"] = f"<bench-news{n}-{time.time_ns()}@shop.example>"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=SMTP_POLICY)


def build_mails(count: int) -> list[bytes]:
    """count mails, alternating invoice and newsletter, so half carry a PDF."""
    rng = random.Random(1)
    return [invoice_mail(i) if i % 2 == 0 else newsletter_mail(i, rng) for i in range(count)]


# ----------------------------------------------------------------------------- helpers


def wall_offset(event_time: str, wall0: float) -> float:
    """Seconds from wall0 (time.time()) to an event's ISO time stamp."""
    return datetime.fromisoformat(event_time).timestamp() - wall0


def log_excerpt(log: str) -> str:
    """The first traceback of a log (its start and end), and the log's last lines."""
    first = log.find("Traceback")
    head = ""
    if first >= 0:
        trace = log[first:].split("\n")
        head = "\n".join([*trace[:30], "...", *trace[-20:]]) + "\n...\n" if first >= 0 else ""
    return head + "\n".join(log.splitlines()[-20:])


class Daemon(GmidDaemon):
    """A gmid daemon watching one folder of the bench's Dovecot."""

    def __init__(self, dovecot: Dovecot | None, folder: str = "INBOX", poll: str = "10m"):
        super().__init__()
        if dovecot is not None:
            pwfile = self.dir / "imap.pw"
            pwfile.write_text(dovecot.users["gmid"] + "\n")
            pwfile.chmod(0o600)
            with self.config.open("a") as f:
                f.write(MAILBOX.format(port=dovecot.port, pwfile=pwfile, folder=folder, poll=poll))

    async def connect(self, timeout: float = 30) -> ControlClient:
        """Connect to the control socket as soon as it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await ControlClient.connect(self.socket, timeout=2)
            except DaemonNotRunning:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"gmid daemon exited:\n{self.log_text()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gmid daemon did not answer:\n{self.log_text()}") from None
                await asyncio.sleep(0.005)
                continue
            try:
                await client.status()
            except DaemonNotRunning:
                await client.close()
                await asyncio.sleep(0.005)
                continue
            return client

    def run(self, measure):
        """asyncio.run(measure()), showing the daemon's log if it fails; the daemon stops after."""
        try:
            return asyncio.run(measure())
        except Exception:
            print(f"--- gmid daemon log:\n{log_excerpt(self.log_text())}", file=sys.stderr)
            raise
        finally:
            self.stop()

    def archived(self) -> int:
        return sum(1 for _ in (self.dir / "archive").rglob("*.pdf"))


async def mailbox(client: ControlClient):
    (box,) = (await client.status()).mailboxes
    if box.state == "failing":
        raise RuntimeError(f"mailbox failing: {box.error}")
    return box


async def wait_mailbox(daemon: Daemon, client: ControlClient, done, timeout: float = SYNC_TIMEOUT):
    """Wait until done(box) holds; woken by `mailbox.changed` events (on a connection of its
    own), checked at least every 0.5 s. Returns (box, perf_counter when it was seen)."""
    deadline = time.monotonic() + timeout
    async with await daemon.connect() as listener:
        events = listener.events(["mailbox.changed"])
        nxt = asyncio.ensure_future(anext(events))
        try:
            while True:
                box = await mailbox(client)
                seen = time.perf_counter()
                if done(box):
                    return box, seen
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for the mailbox; last status {box}")
                finished, _ = await asyncio.wait({nxt}, timeout=0.5)
                if finished:
                    nxt.result()
                    nxt = asyncio.ensure_future(anext(events))
        finally:
            nxt.cancel()
            with contextlib.suppress(BaseException):
                await nxt


# ----------------------------------------------------------------------------- (a), (b)


async def first_change(daemon: Daemon) -> str:
    """The time stamp of the daemon's first `mailbox.changed`: the folder leaving "connecting"
    (logged in, syncing). It comes after the control socket opens, but may come before the
    subscription does: then it is among the recent events."""
    async with await daemon.connect() as listener:
        events = listener.events(["mailbox.changed"])
        first = asyncio.ensure_future(anext(events))
        try:
            await asyncio.sleep(0.05)  # subscribed by now
            recent = await listener.recent_events(200)
            changed = [e for e in recent if e.type == "mailbox.changed"]
            return changed[0].time if changed else (await asyncio.wait_for(first, 60)).time
        finally:
            first.cancel()
            with contextlib.suppress(BaseException):
                await first


def run_gmid(dovecot: Dovecot, documents: int) -> dict[str, float]:
    """gmid's first sync on a fresh state; seconds from start, from leaving "connecting"."""
    daemon = Daemon(dovecot)

    async def measure() -> dict[str, float]:
        wall0, start = time.time(), time.perf_counter()
        daemon.start()
        client = await daemon.connect()
        async with client:
            ready = time.perf_counter() - start
            logged_in = asyncio.ensure_future(first_change(daemon))
            box, seen = await wait_mailbox(
                daemon, client, lambda b: b.state == "idle" and b.documents >= documents
            )
            total = seen - start
            synced_from = wall_offset(await logged_in, wall0)
            status = await client.status()
        assert box.documents == documents, f"mailbox status has {box.documents} documents"
        assert status.documents == documents, f"index has {status.documents} documents"
        archived = daemon.archived()
        assert archived == documents, f"archive has {archived} PDFs, want {documents}"
        return {
            "total": total,
            "after_login": total - synced_from,
            "ready": ready,
            "bodies": box.bodies,
            "bytes": box.bytes,
        }

    return daemon.run(measure)


def run_bare(dovecot: Dovecot, mails: int) -> dict[str, float]:
    """The bare aioimaplib fetch; seconds from process start to the end of the fetch."""
    env = dict(os.environ, BENCH_IMAP_PASSWORD=dovecot.users["gmid"])
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", BARE, str(dovecot.port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        total = time.perf_counter() - start
        if not line:
            raise RuntimeError(f"the bare fetch failed (exit {proc.wait(30)})")
        result = json.loads(line)
        assert result["bodies"] == mails, f"bare fetch got {result['bodies']} of {mails} bodies"
        if proc.wait(60) != 0:
            raise RuntimeError(f"the bare fetch exited with {proc.returncode}")
        return {"total": total, "fetch": result["fetch"], "bytes": result["bytes"]}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def run_startup() -> float:
    """Seconds from start until a daemon without a mailbox answers `status`."""
    daemon = Daemon(None)

    async def measure() -> float:
        start = time.perf_counter()
        daemon.start()
        client = await daemon.connect()
        ready = time.perf_counter() - start
        await client.close()
        return ready

    return daemon.run(measure)


# ----------------------------------------------------------------------------- latency


def run_latency(dovecot: Dovecot, samples: int) -> list[float]:
    """Seconds from sending an APPEND to the daemon's `document.added`, per sample."""
    folder = "Live"
    dovecot.create(folder)
    daemon = Daemon(dovecot, folder=folder)

    async def measure() -> list[float]:
        daemon.start()
        client = await daemon.connect()
        imap = dovecot.client()
        arrived: asyncio.Queue[tuple[float, str]] = asyncio.Queue()

        async def listen() -> None:
            async for event in client.events(["document.added"]):
                arrived.put_nowait((time.perf_counter(), event.data["document"]["original_name"]))

        listener = asyncio.ensure_future(listen())
        try:
            async with client:
                await wait_mailbox(daemon, client, lambda b: b.state == "idle", 60)
                took = []
                for n in range(samples):
                    raw = invoice_mail(n, tag="L")
                    await asyncio.sleep(0.3)  # back in IDLE after the previous one
                    start = time.perf_counter()
                    typ, data = await asyncio.to_thread(imap.append, quote(folder), None, None, raw)
                    assert typ == "OK", (typ, data)
                    while True:
                        at, name = await asyncio.wait_for(arrived.get(), 30)
                        if name == f"L{n}.pdf":
                            break
                    took.append(at - start)
                    await wait_mailbox(daemon, client, lambda b: b.state == "idle", 30)
                return took
        finally:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
            with contextlib.suppress(Exception):
                imap.logout()

    return daemon.run(measure)


# ----------------------------------------------------------------------------- poll


def run_poll(dovecot: Dovecot, documents: int, cycles: int) -> list[dict[str, float]]:
    """Bytes and bodies per poll that found nothing new, after the first sync."""
    daemon = Daemon(dovecot, poll=f"{POLL_SECONDS}s")

    async def measure() -> list[dict[str, float]]:
        daemon.start()
        client = await daemon.connect()
        listener = await daemon.connect()
        changes: asyncio.Queue[float] = asyncio.Queue()

        async def listen() -> None:
            async for _event in listener.events(["mailbox.changed"]):
                changes.put_nowait(time.perf_counter())

        listening = asyncio.ensure_future(listen())
        try:
            async with client, listener:
                box, at = await wait_mailbox(
                    daemon, client, lambda b: b.state == "polling" and b.documents >= documents
                )
                result = []
                while len(result) < cycles:
                    # every pass ends with a mailbox.changed; one within 2 s of the first
                    # sync's end is that sync's own
                    when = await asyncio.wait_for(changes.get(), POLL_SECONDS * 3)
                    if when < at + 2:
                        continue
                    before, box = box, await mailbox(client)
                    assert box.state == "polling", box
                    result.append(
                        {"bytes": box.bytes - before.bytes, "bodies": box.bodies - before.bodies}
                    )
                return result
        finally:
            listening.cancel()
            with contextlib.suppress(BaseException):
                await listening

    return daemon.run(measure)


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 mails, 1 round, 5 samples")
    args = parser.parse_args()
    if args.quick:
        args.mails, args.rounds = 200, 1
    samples = 5 if args.quick else LATENCY_SAMPLES
    cycles = 1 if args.quick else 2
    documents = (args.mails + 1) // 2

    tmp = Path(tempfile.mkdtemp(prefix="gmid-bimap", dir="/tmp"))
    servers: list[Dovecot] = []
    try:
        print(f"building {args.mails} mails of ~{MAIL_SIZE // 1000} KB...", flush=True)
        mails = build_mails(args.mails)
        avg = sum(map(len, mails)) / len(mails)
        dovecot = Dovecot(tmp / "idle")
        servers.append(dovecot)
        dovecot.start()
        dovecot.deliver_files("INBOX", mails)
        print(f"{len(mails)} mails in Dovecot, {avg / 1000:.1f} KB on average", flush=True)

        cold_bare = run_bare(dovecot, args.mails)
        cold_gmid = run_gmid(dovecot, documents)
        print(
            f"warm-up (untimed): bare {cold_bare['total']:.2f} s, gmid {cold_gmid['total']:.2f} s",
            flush=True,
        )
        gmid_runs, bare_runs, startups = [], [], []
        for r in range(args.rounds):
            bare_runs.append(run_bare(dovecot, args.mails))
            gmid_runs.append(run_gmid(dovecot, documents))
            startups.append(run_startup())
            print(
                f"round {r + 1}: gmid {gmid_runs[-1]['total']:.2f} s, "
                f"bare {bare_runs[-1]['total']:.2f} s",
                flush=True,
            )

        latencies = run_latency(dovecot, samples)
        print(f"latency samples (ms): {' '.join(f'{x * 1000:.0f}' for x in latencies)}", flush=True)

        polling = Dovecot(tmp / "poll", idle=False)
        servers.append(polling)
        polling.start()
        polling.deliver_files("INBOX", mails)
        polls = run_poll(polling, documents, cycles)
    except Exception:
        for server in servers:
            print(f"--- Dovecot log:\n{server.log_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(runs: list[dict[str, float]], key: str) -> float:
        return median([run[key] for run in runs])

    a, b = med(gmid_runs, "total"), med(bare_runs, "total")
    a_sync, b_fetch = med(gmid_runs, "after_login"), med(bare_runs, "fetch")
    mb = 1e6
    print()
    print(f"IMAP first sync, {args.mails} mails ({documents} with a PDF), medians of {args.rounds}")
    print(
        f"  (a) gmid      {a:6.2f} s from process start   {a_sync:6.2f} s from login   "
        f"{gmid_runs[-1]['bodies']} bodies, {gmid_runs[-1]['bytes'] / mb:.1f} MB"
    )
    print(
        f"  (b) bare      {b:6.2f} s from process start   {b_fetch:6.2f} s UID FETCH alone   "
        f"{args.mails} bodies, {bare_runs[-1]['bytes'] / mb:.1f} MB"
    )
    print(f"  daemon start-up without a mailbox: {median(startups):.2f} s")
    print(f"  ratio a/b {a / b:.2f} (target <= 1.5); from login/fetch alone {a_sync / b_fetch:.2f}")
    print(
        f"APPEND -> document in the index, {len(latencies)} samples: median "
        f"{median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms (target <= 1 s; "
        "Dovecot holds IDLE notices 500 ms)"
    )
    per_poll = ", ".join(f"{p['bytes']} bytes / {p['bodies']} bodies" for p in polls)
    print(f"poll with nothing new (every {POLL_SECONDS} s): {per_poll} (target: no body)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
