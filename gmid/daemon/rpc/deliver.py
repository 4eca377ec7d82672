"""The control methods of delivery: `outbox.list`, `deliver.queue`, `outbox.retry`, and
`deliveries.states` (where the documents of a page stand, for the TUI's list)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services
from gmid.deliver.outbox import STATES, Entry, Outbox
from gmid.deliver.worker import DeliveryWorker


def _worker(s: Services) -> DeliveryWorker:
    assert s.daemon.delivery is not None  # started before the socket
    return s.daemon.delivery


def _when(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _item(entry: Entry) -> p.OutboxItem:
    return p.OutboxItem(
        document_id=entry.document_id,
        destination=entry.destination,
        state=entry.state,
        attempts=entry.attempts,
        path=entry.path,
        company=entry.company,
        next_try=_when(entry.next_try) if entry.state == "pending" else None,
        reference=entry.reference,
        error=entry.error,
        updated_at=entry.updated_at,
    )


async def outbox_list(s: Services, params: Params, conn: Connection) -> p.OutboxPage:
    """The destinations with their counts, and the rows of the outbox asked for."""
    check.only(params, ("destination", "states", "document_id", "limit"))
    states = check.strings(params, "states", "states") or ["pending", "failed"]
    if unknown := [state for state in states if state not in STATES]:
        raise InvalidParams(f"unknown state {unknown[0]!r} (known: {', '.join(STATES)})")
    worker = _worker(s)
    destination = check.optional_text(params, "destination")
    if destination is not None:
        worker.lane(destination)
    document_id = params.get("document_id")
    if document_id is not None:
        document_id = check.whole_number(params, "document_id", 0, 1)
    entries = await worker.entries(
        states=states,
        destination=destination,
        document_id=document_id,
        limit=check.whole_number(params, "limit", 200, 1, 10_000),
    )
    counts = await worker.counts()
    infos = [
        p.DestinationInfo(
            name=name,
            type=lane.config.type,
            **counts.get(name, {}),
            paused_until=_when(lane.hold_until) if lane.hold_until > _now() else None,
        )
        for name, lane in worker.lanes.items()
    ]
    # Rows of a destination no longer in the config wait for it to come back: not shown.
    items = [_item(entry) for entry in entries if entry.destination in worker.lanes]
    return p.OutboxPage(destinations=infos, items=items)


def _now() -> float:
    return datetime.now(UTC).timestamp()


async def deliver_queue(s: Services, params: Params, conn: Connection) -> p.Queued:
    """Queue what was filed before for a destination: `all`, or `since` a day."""
    check.only(params, ("destination", "all", "since"))
    name = check.text(params, "destination")
    every = check.flag(params, "all")
    since_text = check.optional_text(params, "since")
    if bool(every) == (since_text is not None):
        raise InvalidParams("give either all: true or since: a date like 2026-01-31")
    since = None
    if since_text is not None:
        try:
            since = date.fromisoformat(since_text)
        except ValueError:
            raise InvalidParams("since must be a date like 2026-01-31") from None
    queued = await _worker(s).queue_filed(name, since)
    return p.Queued(queued=queued, destination=name)


async def outbox_retry(s: Services, params: Params, conn: Connection) -> p.Queued:
    """Try failed deliveries (of one destination, one document) again now."""
    check.only(params, ("destination", "document_id"))
    name = check.optional_text(params, "destination")
    document_id = params.get("document_id")
    if document_id is not None:
        document_id = check.whole_number(params, "document_id", 0, 1)
    queued = await _worker(s).retry(name, document_id)
    return p.Queued(queued=queued, destination=name)


MAX_STATES = 1000  # documents asked for in one `deliveries.states` (a page of the list)


async def delivery_states(s: Services, params: Params, conn: Connection) -> p.DeliveryStates:
    """The configured destinations, and each state of the documents `document_ids`."""
    check.only(params, ("document_ids",))
    ids = params.get("document_ids")
    if not isinstance(ids, list) or len(ids) > MAX_STATES:
        raise InvalidParams(f"document_ids must be a list of at most {MAX_STATES} document ids")
    if not all(type(i) is int and i >= 0 for i in ids):
        raise InvalidParams("document_ids must be whole numbers")
    worker = _worker(s)
    names = list(worker.lanes)
    rows = await worker.in_db(_states, worker.outbox, sorted(set(ids))) if names and ids else []
    items = [
        p.DeliveryState(document_id=doc, destination=name, state=state)
        for doc, name, state in rows
        if name in worker.lanes  # a destination taken out of the config is not shown
    ]
    return p.DeliveryStates(destinations=names, items=items)


def _states(outbox: Outbox, ids: list[int]) -> list[tuple[int, str, str]]:
    marks = ",".join("?" * len(ids))
    return outbox.index.query(
        "SELECT document_id, destination, state FROM outbox"
        f" WHERE document_id IN ({marks}) ORDER BY document_id, destination",
        ids,
    )
