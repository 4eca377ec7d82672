"""Full-text search: 100,000 documents, `documents.list` with `search` through the socket.

An index of --documents documents (numbers, companies, sellers, amounts and ~60 words of text
each) is built, then a `gmid daemon` is started on it and asked for a page of 50 with the total
(`gmid documents --search WORD` does the same) for words that match many documents, few, one
and none. The same run times the bare SQLite FTS5 queries on the same file (the page and the
count, as the index asks them) for the ratio, and the naive join (every match fetched, then
sorted) for scale. Medians over --rounds per word.
Target: median under 50 ms through the socket.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GmidDaemon, median

from gmid.archive.index import Index
from gmid.control.client import ControlClient

WORDS = [
    "Strom",
    "Gas",
    "Wasser",
    "Abschlag",
    "Grundgebühr",
    "Arbeitspreis",
    "Zählerstand",
    "Verbrauch",
    "Mobilfunk",
    "Festnetz",
    "Internet",
    "Glasfaser",
    "Miete",
    "Nebenkosten",
    "Versicherung",
    "Beitrag",
    "Wartung",
    "Lieferung",
    "Versand",
    "Porto",
    "Lizenz",
    "Abonnement",
    "Hosting",
    "Domain",
    "Server",
    "Speicher",
    "Beratung",
    "Stunden",
    "Material",
    "Reparatur",
    "Fahrtkosten",
    "Rabatt",
    "Gutschrift",
    "Mahnung",
    "Zahlung",
    "Überweisung",
    "Lastschrift",
]
COMPANIES = ["Telekom", "Stadtwerke", "Vodafone", "Hetzner", "Allianz", "IKEA", "Amazon"]
QUERIES = ["Strom", "Glasfaser Hosting", "R-2025-04711", "1014,50", "Zylinderkopfdichtung"]
# As typed, a word at a time: prefixes (search as you type).
QUERIES += ["S", "Str", "Glasfaser Ho", "R-2025-047", "1014,5", "Zylinder"]


def build(path: Path, n: int) -> None:
    rng = random.Random(16)
    index = Index(path)
    start = time.perf_counter()
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    try:
        for first in range(0, n, 5000):
            rows = []
            for i in range(first, min(n, first + 5000)):
                company = COMPANIES[i % len(COMPANIES)]
                rows.append(
                    {
                        "sha256": f"{i:064x}",
                        "path": f"{company}/{i}.pdf",
                        "size": 1000,
                        "media_type": "application/pdf",
                        "source": "smtp",
                        "source_name": "smtp",
                        "company": company,
                        "received_at": t0 + timedelta(minutes=i),
                        "date": date(2020, 1, 1) + timedelta(days=i % 2000),
                        "number": f"R-2025-{i:05d}",
                        "amount": f"{rng.randint(1, 5000)}.{rng.randint(0, 99):02d}",
                        "seller": f"{company} GmbH",
                        "text": " ".join(rng.choices(WORDS, k=60)),
                        "read_version": 2,
                    }
                )
            if first == 0:  # one document of each rare kind
                rows[0]["text"] += " Zylinderkopfdichtung"
                rows[0]["amount"] = "1014.50"
            index.add_many(rows)
    finally:
        index.close()
    print(f"built {n} documents in {time.perf_counter() - start:.0f} s")


async def through_socket(socket: Path, query: str, rounds: int) -> tuple[float, int]:
    times = []
    async with await ControlClient.connect(socket) as client:
        for _ in range(rounds):
            start = time.perf_counter()
            page = await client.documents(search=query, limit=50)
            times.append(time.perf_counter() - start)
    return median(times), page.total


def bare(path: Path, query: str, rounds: int) -> tuple[float, float]:
    """The same page and count straight from SQLite: (as gmid's index asks, the naive way:
    every match fetched, then sorted)."""
    from gmid.archive.reads import match_query

    db = sqlite3.connect(path)
    match = match_query(query)
    order = "ORDER BY coalesce(date, substr(received_at, 1, 10)) DESC, received_at DESC, id DESC"
    many = db.execute(
        "SELECT count(*) FROM (SELECT 1 FROM documents_fts WHERE documents_fts MATCH ? LIMIT 501)",
        (match,),
    ).fetchone()[0]
    if many > 500:
        page = (
            "SELECT * FROM documents INDEXED BY documents_by_date WHERE id IN (SELECT rowid "
            f"FROM documents_fts WHERE documents_fts MATCH ?) {order} LIMIT 50"
        )
    else:
        page = (
            "SELECT * FROM documents WHERE id IN (SELECT rowid FROM documents_fts "
            f"WHERE documents_fts MATCH ?) {order} LIMIT 50"
        )
    naive = (
        "SELECT * FROM documents WHERE id IN (SELECT rowid FROM documents_fts "
        f"WHERE documents_fts MATCH ?) {order} LIMIT 50"
    )
    count = "SELECT count(*) FROM documents_fts WHERE documents_fts MATCH ?"
    timings = []
    for sql in (page, naive):
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            db.execute(sql, (match,)).fetchall()
            db.execute(count, (match,)).fetchall()
            times.append(time.perf_counter() - start)
        timings.append(median(times))
    db.close()
    return timings[0], timings[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    daemon = GmidDaemon()
    try:
        path = daemon.dir / "state" / "index.sqlite"
        path.parent.mkdir(mode=0o700, parents=True)
        build(path, args.documents)
        daemon.start()
        daemon.wait_ready(60)
        worst = 0.0
        for query in QUERIES:
            ours, total = asyncio.run(through_socket(daemon.socket, query, args.rounds))
            theirs, naive = bare(path, query, args.rounds)
            worst = max(worst, ours)
            print(
                f"{query!r:24} {total:6d} found: socket {ours * 1000:6.1f} ms, bare FTS5 "
                f"{theirs * 1000:6.1f} ms, ratio {ours / theirs:.1f}x (naive FTS5 join "
                f"{naive * 1000:.1f} ms)"
            )
        print(f"slowest median {worst * 1000:.1f} ms (target < 50 ms)")
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
