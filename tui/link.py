"""The TUI's I/O with the daemon, run in workers: follow the connection, scan, call what may be new.

Nothing here touches a widget: results go out as messages (tui/messages.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from gmid.control import protocol as p
from gmid.control.client import ControlClient, ControlError, CookieFileError, DaemonNotRunning
from tui.messages import Connected, DaemonDown, DaemonEvent

__all__ = [
    "ControlError",
    "CookieFileError",
    "DaemonNotRunning",
    "Unsupported",
    "explain",
    "follow",
    "optional",
    "scan",
]

SCAN_PAGE = 1000  # documents per request when counting (the daemon's maximum)


class Unsupported(Exception):
    """The running daemon does not know a method (it is older than the TUI)."""


async def follow(socket: Path, post: Callable[[Message], Any], *, retry: float = 2.0) -> None:
    """Connect, post the status and then every event; when the daemon goes, say so and retry.

    Runs until cancelled. The event subscription is sent before the status request, so no event
    falls between the two.
    """
    while True:
        try:
            client = await ControlClient.connect(socket, timeout=2)
        except DaemonNotRunning as e:
            post(DaemonDown(str(socket), str(e)))
            await asyncio.sleep(retry)
            continue
        stream = client.events()
        first = asyncio.ensure_future(anext(stream, None))
        reason = f"the daemon closed the connection on {socket}"
        try:
            await asyncio.sleep(0)  # lets `first` send the subscription
            post(Connected(client, await client.status()))
            event = await first
            while event is not None:
                post(DaemonEvent(event))
                event = await anext(stream, None)
        except (DaemonNotRunning, ControlError, ConnectionError) as e:
            reason = str(e)
        finally:
            first.cancel()
            with contextlib.suppress(Exception):
                await stream.aclose()
            await client.close()
        post(DaemonDown(str(socket), reason))
        await asyncio.sleep(min(retry, 0.2))  # a restarting daemon is often back at once


async def scan(client: ControlClient) -> dict[int, tuple[str, str, str, str]]:
    """Every document's company, source, source name and time received, by id.

    A few large pages instead of one count per company: 20,000 documents are 20 requests.
    Documents added meanwhile shift the pages; keying by id makes a document seen twice count once.
    """
    seen: dict[int, tuple[str, str, str, str]] = {}
    offset = 0
    while True:
        page = await client.documents(limit=SCAN_PAGE, offset=offset)
        for d in page.documents:
            seen[d.id] = (d.company, d.source, d.source_name, d.received_at)
        offset += len(page.documents)
        if not page.documents or offset >= page.total:
            return seen


def explain(error: ControlError) -> str:
    """A refusal with its details: the daemon lists each problem of a refused entry."""
    problems = error.data.get("problems") if isinstance(error.data, dict) else None
    if not problems:
        return str(error)
    return "\n".join([str(error), *(str(problem) for problem in problems)])


async def optional(client: ControlClient | None, method: str, what: str, *args, **kwargs) -> Any:
    """Call a typed client method the daemon may not have yet; Unsupported names what is missing."""
    if client is None:
        raise DaemonNotRunning("not connected to the daemon")
    fn = getattr(client, method, None)
    if fn is None:
        raise Unsupported(f"the daemon does not support {what} yet")
    try:
        return await fn(*args, **kwargs)
    except ControlError as e:
        if e.code == p.METHOD_NOT_FOUND:
            raise Unsupported(f"the daemon does not support {what} yet") from None
        raise
