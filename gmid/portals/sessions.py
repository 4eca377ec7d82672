"""A portal's saved session (its cookies): import one from a browser, show it, forget it.

The session is the file the runner loads before a run and writes back after it,
`state_dir/sessions/NAME.cookies` (LWP format, 0600). `gmid session import` fills it from a
browser's cookies.txt export (gmid/portals/cookiestxt.py checks them): the next run finds the
session valid and does not log in, which gets past a login a form client cannot do (a captcha).

The control socket's methods take the file's text, never a path: the daemon opens no file a
client names. A portal whose run is under way is refused (BUSY): the run would write its own
cookies over the imported ones when it ends. Cookie values appear in no answer and no log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gmid.archive.fs import fsync_dir
from gmid.config.load import session_file
from gmid.config.portals import PortalConfig
from gmid.control import protocol as p
from gmid.daemon.rpc.server import Connection, Handler, RpcError
from gmid.errors import Busy
from gmid.portals import cookiestxt
from gmid.portals.runner import PortalRunner

logger = logging.getLogger(__name__)


def show(cookie_file: Path, now: float | None = None) -> dict[str, Any]:
    """The saved cookies without their values: name, domain, path, expiry, flags."""
    now = time.time() if now is None else now
    from gmid.portals.web import read_cookies  # requests: not at daemon start

    try:
        info = cookie_file.stat()
        cookies = read_cookies(cookie_file, ignore_expires=True)
    except FileNotFoundError:
        return {"saved": False, "cookies": []}
    except (OSError, ValueError) as e:
        return {"saved": True, "cookies": [], "error": f"unreadable ({type(e).__name__})"}
    shown = []
    for cookie in cookies:
        entry = cookiestxt.describe(cookie)
        entry["expired"] = cookie.expires is not None and cookie.expires <= now
        shown.append(entry)
    saved_at = datetime.fromtimestamp(info.st_mtime, UTC).isoformat()
    return {"saved": True, "saved_at": saved_at, "cookies": shown}


def session_methods(runner: PortalRunner) -> dict[str, Handler]:
    """The control socket's `portal.session.*` methods."""

    def find(params: dict[str, Any], known: tuple[str, ...]) -> PortalConfig:
        unknown = ", ".join(sorted(set(params) - set(known)))
        if unknown:
            raise RpcError(
                p.INVALID_PARAMS, f"unknown parameter {unknown} (known: {', '.join(known)})"
            )
        name = params.get("portal")
        if not isinstance(name, str) or not name.strip():
            raise RpcError(p.INVALID_PARAMS, "portal must be a non-empty string")
        return runner.portal(name)

    def not_running(portal: PortalConfig, doing: str) -> None:
        if runner.running(portal.name):
            raise Busy(
                f"a run of {portal.name} is under way: {doing} when it has ended "
                "(it would save its own session over it)"
            )

    async def session_import(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        portal = find(params, ("portal", "text"))
        text = params.get("text")
        if not isinstance(text, str):
            raise RpcError(p.INVALID_PARAMS, "text must be the cookies.txt file's text")
        not_running(portal, "import the session")
        hosts = cookiestxt.portal_hosts(portal.options)
        try:
            # blocking: up to MAX_BYTES of text to read through
            selection = await asyncio.to_thread(_select, text, hosts)
        except cookiestxt.CookieFileError as e:
            data = {"problems": e.problems} if e.problems else None
            raise RpcError(
                p.INVALID_PARAMS, f"{portal.name}: {e}; its saved session is unchanged", data
            ) from None
        # Checked again and written in one step of the loop: no run can start in between.
        not_running(portal, "import the session")
        cookie_file = session_file(runner.config.state_dir, portal.name)
        from gmid.portals.web import write_cookies

        try:
            write_cookies([c.to_cookiejar() for c in selection.kept], cookie_file)
        except OSError as e:
            raise RpcError(p.INTERNAL_ERROR, f"could not save the session: {e.strerror}") from None
        logger.info(
            "portal %s: session imported (%d cookies for %s)",
            portal.name,
            len(selection.kept),
            ", ".join(selection.hosts),
        )
        runner.events.publish("session.imported", portal=portal.name, cookies=len(selection.kept))
        return {"portal": portal.name, "file": str(cookie_file), **selection.summary()}

    async def session_clear(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        portal = find(params, ("portal",))
        not_running(portal, "forget the session")
        cookie_file = session_file(runner.config.state_dir, portal.name)
        try:
            cookie_file.unlink()
        except FileNotFoundError:
            return {"portal": portal.name, "cleared": False}
        except OSError as e:
            raise RpcError(
                p.INTERNAL_ERROR, f"could not delete {cookie_file}: {e.strerror}"
            ) from None
        fsync_dir(cookie_file.parent)
        logger.info("portal %s: saved session forgotten", portal.name)
        runner.events.publish("session.cleared", portal=portal.name)
        return {"portal": portal.name, "cleared": True}

    async def session_show(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        portal = find(params, ("portal",))
        cookie_file = session_file(runner.config.state_dir, portal.name)
        shown = await asyncio.to_thread(show, cookie_file)
        hosts = cookiestxt.portal_hosts(portal.options)
        return {"portal": portal.name, "file": str(cookie_file), "hosts": hosts, **shown}

    return {
        "portal.session.import": session_import,
        "portal.session.clear": session_clear,
        "portal.session.show": session_show,
    }


def _select(text: str, hosts: list[str]) -> cookiestxt.Selection:
    return cookiestxt.select(cookiestxt.parse(text), hosts, time.time())
