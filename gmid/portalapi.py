"""The control socket's portal and challenge methods."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gmid.challenges import ChallengeBroker
from gmid.control import protocol as p
from gmid.control.server import Connection, Handler, RpcError
from gmid.runner import PortalRunner
from gmid.scheduler import PortalScheduler
from gmid.suggest import suggest


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RpcError(p.INVALID_PARAMS, f"{key} must be a non-empty string")
    return value


def portal_methods(
    runner: PortalRunner,
    broker: ChallengeBroker,
    reload: Callable[[], Awaitable[bool]],
) -> dict[str, Handler]:
    """Return the portal and challenge methods of the control socket, by method name.

    `reload` reloads the daemon's config (after `suggest` wrote a draft into portals.d).
    """

    async def portals_list(params: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        return runner.states()

    async def portal_fetch(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        name = _text(params, "portal")
        wait = params.get("wait", False)
        if not isinstance(wait, bool):
            raise RpcError(p.INVALID_PARAMS, "wait must be true or false")
        try:
            future = runner.fetch(name, manual=True)
        except KeyError as e:
            raise RpcError(p.NOT_FOUND, str(e.args[0])) from None
        if not wait:
            return {"started": True}
        # shield: a client that goes away must not cancel the run itself.
        record = await asyncio.shield(future)
        return {"run": record.to_dict()}

    async def portal_suggest(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        url = _text(params, "url")
        domain = params.get("domain")
        if domain is not None:
            domain = _text(params, "domain")
        # blocking: the page is fetched and the draft written in a worker thread
        result = await asyncio.to_thread(
            suggest, url, domain=domain, config=runner.config, index=runner.index
        )
        # The draft is a portal at once: `gmid fetch NAME --wait` can try it right away.
        result["loaded"] = bool(result.get("draft")) and await reload()
        return result

    async def challenges_list(params: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        return [c.to_dict() for c in broker.pending()]

    async def challenge_answer(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        key = _text(params, "key")
        answer = _text(params, "answer")
        try:
            return broker.answer(key, answer).to_dict()
        except LookupError as e:
            raise RpcError(p.NOT_FOUND, str(e.args[0] if e.args else e)) from None
        except ValueError as e:
            raise RpcError(p.INVALID_PARAMS, str(e)) from None

    return {
        "portals.list": portals_list,
        "portal.fetch": portal_fetch,
        "portal.suggest": portal_suggest,
        "challenges.list": challenges_list,
        "challenge.answer": challenge_answer,
    }


def schedule_methods(scheduler: PortalScheduler) -> dict[str, Handler]:
    """Handlers for schedule.preview."""

    async def schedule_preview(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        days = params.get("days", 7)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
            raise RpcError(p.INVALID_PARAMS, "days must be a whole number 1..366")
        return await asyncio.to_thread(scheduler.preview, days)

    return {"schedule.preview": schedule_preview}
