"""The daemon's event bus: components publish, control-socket subscribers receive."""

from __future__ import annotations

import asyncio
import collections
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]


class Subscription:
    """One subscriber's bounded queue; a subscriber that stops reading loses events, not memory."""

    def __init__(self, size: int):
        self._queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.lost = 0

    def offer(self, event: Event) -> None:
        """Queue an event, or count it as lost when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost += 1

    async def get(self) -> Event:
        """Wait for the next event; an `events.lost` event reports any that were dropped."""
        event = await self._queue.get()
        if self.lost:
            lost, self.lost = self.lost, 0
            return _make("events.lost", {"count": lost})
        return event


def _make(type_: str, data: dict[str, Any]) -> Event:
    return {"type": type_, "time": datetime.now(UTC).isoformat(), "data": data}


class EventBus:
    """Fans events out to subscriptions; safe to publish from worker threads."""

    def __init__(self, *, history: int = 200, queue_size: int = 1000):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: set[Subscription] = set()
        self._queue_size = queue_size
        self.recent: collections.deque[Event] = collections.deque(maxlen=history)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the bus to the loop that owns the subscriptions."""
        self._loop = loop

    def publish(self, type_: str, **data: Any) -> None:
        """Send one event to every subscriber, from any thread."""
        event = _make(type_, data)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: Event) -> None:
        self.recent.append(event)
        for subscription in self._subscriptions:
            subscription.offer(event)

    def subscribe(self) -> Subscription:
        """Return a subscription that receives every event published from now on."""
        subscription = Subscription(self._queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to a subscription."""
        self._subscriptions.discard(subscription)
