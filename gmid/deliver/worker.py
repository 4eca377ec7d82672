"""The delivery worker: a daemon component that queues filed documents and delivers them.

Every destination has its lane: its own threads (as many as its `concurrency`), its own pauses.
A destination that is down holds up nothing else: ingest and portal runs only publish the
`document.added` event, which wakes the queueing, and the outbox's SQL runs on one thread of
its own. Failures are retried with growing pauses (`retry`, doubled each time, at most
`retry_max`); a destination that fails several times in a row, or asks for rest (Retry-After),
is paused as a whole; a permanent failure stops the retries of that document.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from gmid import failpoints
from gmid.archive.index import Index
from gmid.config.deliver import DestinationConfig
from gmid.deliver import registry
from gmid.deliver.base import DeliveryFailed, Destination, reason
from gmid.deliver.outbox import Claimed, Entry, Outbox, Outcome
from gmid.deliver.pool import DaemonThreadPool
from gmid.errors import NotFound
from gmid.events import EventBus

logger = logging.getLogger(__name__)

T = TypeVar("T")
IDLE_LOOK = 60.0  # seconds between looks at the outbox when nothing is due
FAILURES_BEFORE_HOLD = 3  # failures in a row after which the whole destination pauses
# Documents taken from the outbox ahead, per thread of a lane: its threads never wait for a
# look at the outbox, nor for the outcomes before to be written.
AHEAD = 8
GATHER = 0.02  # seconds outcomes are gathered into one transaction
_WAKING = frozenset({"document.added", "events.lost"})


def pause(config: DestinationConfig, failures: int) -> float:
    """Seconds to wait after the n-th failure in a row: retry, doubled each time, capped."""
    first, most = config.retry.total_seconds(), config.retry_max.total_seconds()
    return min(most, first * 2 ** min(max(failures - 1, 0), 30))


class Lane:
    """One destination: its threads, what it has on its way, its pauses."""

    def __init__(self, worker: DeliveryWorker, config: DestinationConfig):
        self.worker = worker
        self.busy: set[int] = set()  # documents claimed whose attempt has not ended
        self.ended: set[int] = set()  # attempts ended, not recorded yet: not to claim again
        self.stopped = False
        self.wake = asyncio.Event()
        self.hold_until = 0.0  # time.time() before which the destination is left alone
        self.failures = 0  # in a row
        self.task: asyncio.Task | None = None
        # Attempts ended in the lane's threads, handed to the loop in batches: one wake-up of
        # the loop for all that end meanwhile, not one each.
        self._finished: collections.deque[tuple[Claimed, Future]] = collections.deque()
        self._handing = False
        self._hand_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._use(config)

    def _use(self, config: DestinationConfig) -> None:
        self.config = config
        module = registry.module(config.type)
        self.destination: Destination = module.destination(config.name, config.options)
        self.pool = DaemonThreadPool(config.concurrency, f"gmid-deliver-{config.name}")

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.task = self._loop.create_task(self.run())

    def replace(self, config: DestinationConfig) -> None:
        """Deliver with a changed config from now on; what is on its way ends as it began."""
        old_pool, old_destination = self.pool, self.destination
        self._use(config)
        self.hold_until, self.failures = 0.0, 0
        old_pool.shutdown(wait=False)
        threading.Thread(target=_close_after, args=(old_pool, old_destination), daemon=True).start()
        self.wake.set()

    def stop(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.destination.close()

    async def run(self) -> None:
        """Deliver until stopped; an error of the outbox is logged and tried again later."""
        while not self.stopped:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.stopped:  # a wake that came with the stop
                    return
                logger.exception("delivering to %s failed; trying again", self.config.name)
                await asyncio.sleep(IDLE_LOOK / 4)

    async def _run(self) -> None:
        """Claim due documents while there is room, and wait for a wake or the next due one."""
        name = self.config.name
        while not self.stopped:
            self.wake.clear()
            now = time.time()
            room = AHEAD * self.config.concurrency - len(self.busy)
            if self.failures >= FAILURES_BEFORE_HOLD:
                room = min(room, 1 - len(self.busy))  # after a pause, one tries for all
            if now < self.hold_until:
                timeout = self.hold_until - now
            elif room <= 0 or len(self.busy) >= AHEAD // 2 * self.config.concurrency:
                timeout = IDLE_LOOK  # a completion wakes us
            else:
                # As it is now: the outbox's thread reads it later.
                busy = (*self.busy, *self.ended)
                claimed = await self.worker.in_db(self.worker.outbox.claim, name, room, busy)
                for one in claimed:
                    self._submit(one)
                if claimed:
                    continue
                due = await self.worker.in_db(self.worker.outbox.next_due, name, busy)
                timeout = IDLE_LOOK if due is None else min(IDLE_LOOK, max(0.0, due - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)

    def _submit(self, claimed: Claimed) -> None:
        try:
            future = self.pool.submit(self._try, claimed)
        except RuntimeError:  # the pool was shut down (a stop): tried again later
            return
        self.busy.add(claimed.document_id)
        future.add_done_callback(functools.partial(self._ended, claimed))

    def _ended(self, claimed: Claimed, future: Future) -> None:
        """An attempt ended (in a thread of the lane): hand it to the loop."""
        with self._hand_lock:
            self._finished.append((claimed, future))
            if self._handing or self._loop is None:
                return
            self._handing = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon has stopped
            self._loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:
        """Take the attempts that ended (on the loop)."""
        with self._hand_lock:
            self._handing = False
            ended, self._finished = self._finished, collections.deque()
        for claimed, future in ended:
            self.busy.discard(claimed.document_id)
            if future.cancelled() or self.stopped:
                continue  # cut off by a stop or a reload: tried again later
            self.ended.add(claimed.document_id)
            self.worker.done(self, self._outcome(claimed, *future.result()))
        if len(self.busy) < AHEAD // 2 * self.config.concurrency:
            self.wake.set()  # room for more

    def _try(self, claimed: Claimed) -> tuple[str | None, DeliveryFailed | None]:
        """Deliver one document (in a thread of the lane): its reference, or why not."""
        if claimed.item is None:
            return None, DeliveryFailed("not a file of the archive", permanent=True)
        deadline = time.monotonic() + self.config.timeout.total_seconds()
        try:
            reference = self.destination.deliver(claimed.item, deadline)
            failpoints.hit("deliver-sent")  # delivered; the outbox does not know it yet
            return reference, None
        except DeliveryFailed as e:
            return None, e
        except Exception as e:
            logger.exception("delivery to %s failed unexpectedly", self.config.name)
            return None, DeliveryFailed(f"unexpected error: {type(e).__name__}")

    def _outcome(
        self, claimed: Claimed, reference: str | None, failure: DeliveryFailed | None
    ) -> Outcome:
        """Record the end of an attempt in the lane's state; the outbox row it makes."""
        key = (claimed.document_id, claimed.destination)
        if failure is None:
            self.failures = 0
            return Outcome(*key, "done", reference=reason(reference or "", 1000))
        why = reason(str(failure))
        if failure.permanent:
            return Outcome(*key, "failed", error=why)
        self.failures += 1
        attempt = claimed.item.attempt if claimed.item else 1
        wait = pause(self.config, attempt)
        now = time.time()
        if failure.retry_after:
            wait = max(wait, failure.retry_after)
            self.hold_until = max(self.hold_until, now + failure.retry_after)
        if self.failures >= FAILURES_BEFORE_HOLD:
            held = pause(self.config, self.failures - FAILURES_BEFORE_HOLD + 1)
            self.hold_until = max(self.hold_until, now + held)
        return Outcome(*key, "pending", error=why, next_try=now + wait)


def _close_after(pool: DaemonThreadPool, destination: Destination) -> None:
    pool.shutdown(wait=True)
    destination.close()


class DeliveryWorker:
    """Queues each filed document for the destinations it matches, and delivers it."""

    def __init__(
        self,
        destinations: Sequence[DestinationConfig],
        index: Index,
        archive_root: Path,
        events: EventBus,
    ):
        self.configs = tuple(destinations)
        self.outbox = Outbox(index, archive_root)
        self.events = events
        self.lanes: dict[str, Lane] = {}
        self._db = ThreadPoolExecutor(1, thread_name_prefix="gmid-outbox")
        self._outcomes: list[tuple[Lane, Outcome]] = []
        self._flushing: asyncio.Task | None = None
        self._queueing: asyncio.Task | None = None
        self._again = False  # filed while queueing: queue once more
        self._listener: asyncio.Task | None = None
        self._stopped = False

    async def in_db(self, function: Callable[..., T], *args: Any) -> T:
        """Run an outbox function on the outbox's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    async def start(self) -> None:
        """Queue what was filed while the daemon was not running, then deliver."""
        subscription = self.events.subscribe()
        queued = await self.in_db(self.outbox.queue_new, self.configs)
        if queued:
            logger.info("queued %d document(s) filed before the start for delivery", queued)
        for config in self.configs:
            self.lanes[config.name] = lane = Lane(self, config)
            lane.start()
        self._listener = asyncio.get_running_loop().create_task(self._listen(subscription))

    async def _listen(self, subscription) -> None:
        try:
            while True:
                event = await subscription.get()
                if event["type"] in _WAKING:
                    self.queue_soon()
        finally:
            self.events.unsubscribe(subscription)

    def queue_soon(self) -> None:
        """Queue newly filed documents (once more if a look is under way)."""
        if self._queueing is not None and not self._queueing.done():
            self._again = True
            return
        self._queueing = asyncio.get_running_loop().create_task(self._queue())

    async def _queue(self) -> None:
        self._again = True
        while self._again and not self._stopped:
            self._again = False
            failpoints.hit("deliver-before-queue")  # filed, not queued yet
            try:
                if await self.in_db(self.outbox.queue_new, self.configs):
                    for lane in self.lanes.values():
                        lane.wake.set()
            except Exception:
                logger.exception("queueing documents for delivery failed")
                return

    def done(self, lane: Lane, outcome: Outcome) -> None:
        """Take an attempt's outcome; it is written (with others that end meanwhile) at once."""
        if self._stopped:
            return
        self._outcomes.append((lane, outcome))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        # Written a moment late, several at once: a crash meanwhile only means they are tried
        # again, and found delivered.
        await asyncio.sleep(GATHER)
        while self._outcomes and not self._stopped:
            batch, self._outcomes = self._outcomes, []
            try:
                await self.in_db(self.outbox.record, [outcome for _, outcome in batch])
            except Exception:
                logger.exception("recording deliveries failed; they are tried again")
            for lane, outcome in batch:
                lane.ended.discard(outcome.document_id)
                lane.wake.set()
                self._tell(outcome)

    def _tell(self, o: Outcome) -> None:
        if o.state == "done":
            logger.info(
                "delivered document %d to %s: %s", o.document_id, o.destination, o.reference
            )
            self.events.publish(
                "delivery.done", document_id=o.document_id, destination=o.destination
            )
            return
        logger.warning(
            "delivery of document %d to %s failed%s: %s",
            o.document_id,
            o.destination,
            "" if o.state == "failed" else " (tried again later)",
            o.error,
        )
        self.events.publish(
            "delivery.failed",
            document_id=o.document_id,
            destination=o.destination,
            error=o.error,
            permanent=o.state == "failed",
        )

    def reload(self, destinations: Sequence[DestinationConfig]) -> None:
        """Use a changed `deliver:` list: new lanes, changed ones, removed ones."""
        new = {config.name: config for config in destinations}
        for name in list(self.lanes):
            if name not in new:
                self.lanes.pop(name).stop()
        for name, config in new.items():
            lane = self.lanes.get(name)
            if lane is None:
                self.lanes[name] = lane = Lane(self, config)
                lane.start()
            elif lane.config != config:
                lane.replace(config)
        self.configs = tuple(destinations)
        self.queue_soon()

    def lane(self, name: str) -> Lane:
        """The lane of a configured destination; NotFound names the configured ones."""
        if name not in self.lanes:
            known = ", ".join(self.lanes) or "none is configured"
            raise NotFound(f"no destination {name!r} in deliver: ({known})")
        return self.lanes[name]

    async def queue_filed(self, name: str, since: date | None) -> int:
        """Queue what was filed before for a destination (all, or since a day)."""
        lane = self.lane(name)
        queued = await self.in_db(self.outbox.queue_filed, lane.config, since)
        lane.wake.set()
        return queued

    async def retry(self, name: str | None, document_id: int | None) -> int:
        """Try failed deliveries (and those waiting for their next try) again now."""
        if name is not None:
            self.lane(name)
        count = await self.in_db(self.outbox.retry, name, document_id)
        for lane in self.lanes.values():
            if name in (None, lane.config.name):
                lane.hold_until, lane.failures = 0.0, 0
                lane.wake.set()
        return count

    async def entries(self, **filters: Any) -> list[Entry]:
        """Rows of the outbox (see Outbox.entries)."""
        return await self.in_db(lambda: self.outbox.entries(**filters))

    async def counts(self) -> dict[str, dict[str, int]]:
        """How many rows each destination has in each state."""
        return await self.in_db(self.outbox.counts)

    async def stop(self) -> None:
        """Write the outcomes known, and stop; deliveries under way are tried again later."""
        for task in (self._listener, self._queueing):
            if task is not None:
                task.cancel()
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await self._flushing
        self._stopped = True
        for lane in self.lanes.values():
            lane.stop()
        self._db.shutdown(wait=True)
