"""The TUI with 200 portals and 20,000 documents: launch to the first painted home screen, and a
text filter over the documents.

(a) Launch: `gmid-tui --socket S` in a detached tmux of 80x24, from the start of the process until
    capture-pane shows the home table with its rows (the first and the 17th portal). Reference:
    the same for a bare Textual app that shows a DataTable of the same 200 rows, read from a
    JSON file (no socket, no daemon). Target: <= 1.5 s.
(b) Filter: in process (App.run_test against the same daemon), on the documents page, from a
    key typed into the search field until the table shows the answer for the new text. Every
    key is one measurement. Reference: the same query over the socket alone (ControlClient
    .documents with the same text), which is what the daemon's index costs; the ratio is what
    the TUI adds (keys, rendering, the terminal). Target: <= 100 ms on an idle machine; on a
    busy one the query alone takes longer, and the ratio is the figure to compare.

The daemon's index is seeded before it starts: gmid.archive.index.Index creates it, then the 20,000
rows go in with one executemany (Index.add commits and fsyncs each row: minutes for 20,000); the
files themselves are not written, the TUI never opens them. Medians over --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import ROOT, GmidDaemon, median

PORTALS = 200
DOCUMENTS = 20_000
TARGET_LAUNCH = 1.5
TARGET_FILTER = 0.100
BIN = Path(sys.executable).parent

BARE_APP = r"""
import json, sys
from textual.app import App
from textual.widgets import DataTable, Footer

class Bare(App):
    def compose(self):
        yield DataTable(cursor_type="row")
        yield Footer()

    def on_mount(self):
        table = self.query_one(DataTable)
        for label in ("Name", "Type", "State", "Last run", "Next run", "Docs"):
            table.add_column(label)
        for row in json.load(open(sys.argv[1])):
            table.add_row(*row)

Bare().run()
"""


def portals_config(n: int) -> str:
    lines = ["portals:"]
    for i in range(n):
        lines += [
            f"  - name: portal-{i:03d}",
            f"    company: Company {i:03d}",
            "    enabled: false",
            "    username: me",
            "    password: {env: GMID_BENCH_UNUSED}",
            "    form:",
            f"      start: http://127.0.0.1:9/p{i}/login",
            "      login: {form: 'form#login'}",
            "      documents: {pages: [/invoices], rows: tr, download: {selector: a}}",
        ]
    return "\n".join(lines) + "\n"


def seed_index(state: Path, portals: int, documents: int) -> None:
    """Create the index as the daemon would, then put the documents rows in at once."""
    from gmid.archive.index import Index

    Index(state / "index.sqlite").close()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(documents):
        p = i % (portals + 20)  # 20 companies without a portal: their documents came by mail
        company = f"Company {p:03d}" if p < portals else f"Mail Supplier {p - portals:02d}"
        source, name = ("portal", f"portal-{p:03d}") if p < portals else ("smtp", "smtp")
        when = start + timedelta(minutes=37 * i)
        number = f"INV-{i:06d}"
        rows.append(
            (
                f"{i:064x}",
                f"{company}/{when:%Y}/{when:%Y-%m-%d} {company} {number}.pdf",
                48_000,
                "application/pdf",
                source,
                name,
                company,
                f"{number}.pdf",
                None,
                number if source == "portal" else None,
                when.isoformat(timespec="microseconds"),
                when.date().isoformat(),
                number,
                f"{10 + i % 500}.{i % 100:02d}",
            )
        )
    db = sqlite3.connect(state / "index.sqlite")
    with db:
        db.executemany(
            "INSERT INTO documents (sha256, path, size, media_type, source, source_name, company,"
            " original_name, message_id, source_ref, received_at, date, number, amount)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.close()


class Tmux:
    """A tmux server of our own with one 80x24 session."""

    count = 0

    def __init__(self) -> None:
        Tmux.count += 1
        self.name = f"gmid-bench-{os.getpid()}-{Tmux.count}"
        self.base = [shutil.which("tmux") or "tmux", "-L", self.name, "-f", "/dev/null"]
        self.env = dict(os.environ, TERM="xterm-256color")
        self.env.pop("TMUX", None)

    def start(self, command: str) -> None:
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "b", "-x", "80", "-y", "24", command],
            check=True,
            env=self.env,
        )

    def screen(self) -> str:
        out = subprocess.run([*self.base, "capture-pane", "-p", "-t", "b"], capture_output=True)
        return out.stdout.decode(errors="replace")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "b", *keys], check=True)

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def painted(command: str, marks: tuple[str, ...], timeout: float = 30) -> float:
    """Seconds from starting `command` in tmux until every mark is on the screen."""
    tmux = Tmux()
    try:
        start = time.perf_counter()
        tmux.start(command + "; sleep 60")
        while True:
            screen = tmux.screen()
            if all(mark in screen for mark in marks):
                took = time.perf_counter() - start
                break
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"not painted within {timeout} s:\n{screen}")
            time.sleep(0.005)
        tmux.keys("q")
        return took
    finally:
        tmux.stop()


def home_rows(portals: int, documents: int) -> list[list[str]]:
    n = str(documents // (portals + 20))
    return [[f"portal-{i:03d}", "portal", "disabled", "-", "-", n] for i in range(portals)]


def typed(socket: Path, texts: list[str], totals: dict[str, int], total: int) -> list[float]:
    """Type each text key by key into the documents search of `gmid-tui` in tmux; return the
    seconds from each key to the screen showing its answer (the summary line names the text
    and the count, and it changes with the table)."""
    tmux = Tmux()
    latencies = []
    try:
        tmux.start(f"{BIN / 'gmid-tui'} --socket {socket}; sleep 60")
        wait_screen(tmux, lambda s: "portal-000" in s)
        tmux.keys("d")
        unfiltered = f"{total:,} documents · 100 loaded"
        wait_screen(tmux, lambda s: unfiltered in s)
        tmux.keys("/")
        # Textual hands a key to the widget that has the focus when the key arrives: the keys
        # that move the focus or clear the field must have been handled before the next one.
        wait_screen(tmux, lambda s: "Refresh" not in s, "the search field's focus")
        empty = lambda s: unfiltered in s and "search name" in s  # noqa: E731
        for text in texts:
            # Clear the field only when it holds text: the keys that follow must wait until the
            # clearing shows. Textual runs a key's binding (ctrl+k) after the printable keys
            # that came in the same read, so "C-a C-k i" sent at once can end as an empty field.
            if not empty(tmux.screen()):
                tmux.keys("C-a", "C-k")
                wait_screen(tmux, empty, "an empty field")
            for i, key in enumerate(text):
                wanted = text[: i + 1].strip()
                mark = f"{totals[wanted]:,} documents matching “{wanted}”"
                start = time.perf_counter()
                tmux.keys("-l", key)
                wait_screen(tmux, lambda s, mark=mark: mark in s, f"{mark!r} after {key!r}")
                latencies.append(time.perf_counter() - start)
        tmux.keys("Escape", "q")
    finally:
        tmux.stop()
    return latencies


def wait_screen(tmux: Tmux, predicate, what: str = "", timeout: float = 30) -> str:
    deadline = time.perf_counter() + timeout
    while True:
        screen = tmux.screen()
        if predicate(screen):
            return screen
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the screen did not show {what or 'the mark'}:\n{screen}")
        time.sleep(0.002)


async def query_times(socket: Path, texts: list[str]) -> tuple[dict[str, int], list[float]]:
    """Each prefix's count, and how long the same query takes over the socket alone."""
    from gmid.control.client import ControlClient

    totals, times = {}, []
    async with await ControlClient.connect(socket) as client:
        for text in texts:
            for i in range(len(text)):
                prefix = text[: i + 1].strip()
                start = time.perf_counter()
                page = await client.documents(text=prefix, limit=100)
                times.append(time.perf_counter() - start)
                totals[prefix] = page.total
    return totals, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--portals", type=int, default=PORTALS)
    parser.add_argument("--documents", type=int, default=DOCUMENTS)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("bench/tui.py needs tmux (apt-get install tmux)")

    daemon = GmidDaemon(extra=portals_config(args.portals))
    work = Path(tempfile.mkdtemp(prefix="gmid-tui-bench-"))
    try:
        t = time.perf_counter()
        seed_index(daemon.dir / "state", args.portals, args.documents)
        print(f"seeded {args.documents:,} documents in {time.perf_counter() - t:.1f} s")
        daemon.start()
        daemon.wait_ready()
        rows = work / "rows.json"
        rows.write_text(json.dumps(home_rows(args.portals, args.documents)))
        bare_script = work / "bare.py"
        bare_script.write_text(BARE_APP)
        marks = ("portal-000", "portal-016")

        gmid_launch, bare_launch = [], []
        for _ in range(args.rounds):
            gmid_launch.append(painted(f"{BIN / 'gmid-tui'} --socket {daemon.socket}", marks))
            bare_launch.append(painted(f"{sys.executable} {bare_script} {rows}", marks))

        texts = ["inv-0123", "company 01", "mail supplier"]
        keyed, socket_only = [], []
        for _ in range(args.rounds):
            totals, times = asyncio.run(query_times(daemon.socket, texts))
            socket_only += times
            keyed += typed(daemon.socket, texts, totals, args.documents)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)

    launch, bare = median(gmid_launch), median(bare_launch)
    print(f"\n{args.portals} portals, {args.documents:,} documents, 80x24, {args.rounds} rounds")
    print(
        f"launch to painted home:  gmid-tui {launch:.3f} s   bare DataTable app {bare:.3f} s   "
        f"ratio {launch / bare:.2f}   target {TARGET_LAUNCH} s: {launch / TARGET_LAUNCH:.2f} "
        f"of it ({'ok' if launch <= TARGET_LAUNCH else 'MISSED'})"
    )
    key, query = median(keyed), median(socket_only)
    worst = sorted(keyed)[int(len(keyed) * 0.9)]
    print(
        f"filter, key to table:    median {key * 1000:.1f} ms (p90 {worst * 1000:.1f} ms)   "
        f"socket-only query {query * 1000:.1f} ms   ratio {key / query:.2f}   "
        f"target {TARGET_FILTER * 1000:.0f} ms: "
        f"{key / TARGET_FILTER:.2f} of it ({'ok' if key <= TARGET_FILTER else 'MISSED'})"
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
