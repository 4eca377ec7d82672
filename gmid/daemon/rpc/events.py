"""The control methods about the daemon's events: `events.recent` and `subscribe`."""

from __future__ import annotations

from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services


async def events_recent(s: Services, params: Params, conn: Connection) -> list[p.Event]:
    """The recent events the daemon keeps, oldest first."""
    limit = check.whole_number(params, "limit", 100, 1, 1000)
    return [p.Event.from_dict(event) for event in list(s.daemon.events.recent)[-limit:]]


async def subscribe(s: Services, params: Params, conn: Connection) -> p.Subscribed:
    """Push the events of these types (all when none are named) on this connection.

    A notification "event" each, until the client goes away; "events.lost" always comes.
    One subscription per connection: another `subscribe` replaces it (thousands of them would
    each hold a queue of events in the daemon).
    """
    wanted = set(check.strings(params, "types", "event type names") or ())
    bus = s.daemon.events
    if conn.subscription is not None:
        conn.subscription.cancel()
    subscription = bus.subscribe()

    async def pump() -> None:
        try:
            while True:
                event = await subscription.get()
                if not wanted or event["type"] in wanted or event["type"] == "events.lost":
                    await conn.send(p.notification("event", event))
        finally:
            bus.unsubscribe(subscription)

    conn.subscription = conn.spawn(pump())
    return p.Subscribed(subscribed=sorted(wanted) or "all")
