"""The delivery worker's retries: growing pauses, a pause of the whole destination, no retry of
a refusal; against the real index and a command destination that fails."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gmid.archive.index import Index
from gmid.config.deliver import DestinationConfig
from gmid.deliver import command
from gmid.deliver.worker import FAILURES_BEFORE_HOLD, DeliveryWorker, pause
from gmid.events import EventBus


def config(cmd: str, **more) -> DestinationConfig:
    return DestinationConfig("c", "command", command.Options(cmd), **more)


def test_pauses_double_from_retry_up_to_retry_max():
    c = config("true", retry=timedelta(seconds=30), retry_max=timedelta(minutes=5))
    assert [pause(c, n) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


def filed(tmp_path: Path, n: int) -> Index:
    index = Index(tmp_path / "index.sqlite")
    (tmp_path / "archive").mkdir()
    rows = []
    for i in range(n):
        (tmp_path / "archive" / f"{i}.pdf").write_bytes(b"%%PDF %d" % i)
        rows.append(
            {
                "sha256": f"{i:064x}",
                "path": f"{i}.pdf",
                "size": 6,
                "media_type": "application/pdf",
                "source": "smtp",
                "source_name": "smtp",
                "company": "Telekom",
                "received_at": datetime.now(UTC),
            }
        )
    index.add_many(rows)
    return index


async def attempts_of(worker: DeliveryWorker) -> list[tuple[int, int, float | None]]:
    entries = await worker.entries(states=["pending", "failed", "done"])
    return [(e.document_id, e.attempts, e.next_try) for e in entries]


async def test_a_failing_document_waits_longer_each_time(tmp_path: Path):
    index = filed(tmp_path, 1)
    events = EventBus()
    events.bind(asyncio.get_running_loop())
    c = config("echo down >&2; exit 1", retry=timedelta(seconds=1), retry_max=timedelta(hours=1))
    worker = DeliveryWorker([c], index, tmp_path / "archive", events)
    await worker.start()
    try:
        assert await worker.queue_filed("c", None) == 1
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            for _, attempts, next_try in await attempts_of(worker):
                if attempts and attempts not in seen:
                    seen[attempts] = next_try - time.time()
            await asyncio.sleep(0.05)
        # After the 1st failure 1 s, after the 2nd 2 s, after the 3rd 4 s (give or take).
        assert [round(seen[n]) for n in (1, 2, 3)] == [1, 2, 4]
        entry = (await worker.entries())[0]
        assert (entry.state, entry.error) == ("pending", "down")
    finally:
        await worker.stop()
        index.close()


async def test_a_destination_failing_again_and_again_pauses_as_a_whole(tmp_path: Path):
    index = filed(tmp_path, 12)
    events = EventBus()
    events.bind(asyncio.get_running_loop())
    c = config("exit 1", retry=timedelta(seconds=5), concurrency=4)
    worker = DeliveryWorker([c], index, tmp_path / "archive", events)
    await worker.start()
    try:
        await worker.queue_filed("c", None)
        await asyncio.sleep(2)
        lane = worker.lanes["c"]
        assert lane.failures >= FAILURES_BEFORE_HOLD
        assert lane.hold_until > time.time()
        tried = [a for _, a, _ in await attempts_of(worker)]
        await asyncio.sleep(1.5)  # paused: nothing is tried meanwhile
        assert [a for _, a, _ in await attempts_of(worker)] == tried
        assert await worker.retry("c", None) == 12  # `gmid deliver c --retry`: at once
        assert lane.hold_until == 0
    finally:
        await worker.stop()
        index.close()
