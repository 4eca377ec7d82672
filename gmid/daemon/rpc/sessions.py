"""The control methods about a portal's saved session: `portal.session.import|clear|show`.

They take a cookies.txt file's text, never a path: the daemon opens no file a client names. A
portal whose run is under way is refused (Busy): the run would write its own cookies over the
imported ones when it ends. Cookie values appear in no answer and no log.
"""

from __future__ import annotations

import asyncio
import logging

from gmid.config.load import session_file
from gmid.config.portals import PortalConfig
from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services
from gmid.errors import Busy, GmidError
from gmid.portals import cookiestxt, sessions
from gmid.portals.runner import PortalRunner

logger = logging.getLogger(__name__)


async def session_import(s: Services, params: Params, conn: Connection) -> p.SessionImported:
    """Make a browser's cookies the portal's saved session: those it sends to the portal."""
    portal = _portal(s.runner, params, ("portal", "text"))
    text = params.get("text")
    if not isinstance(text, str):
        raise InvalidParams("text must be the cookies.txt file's text")
    _not_running(s.runner, portal, "import the session")
    hosts = cookiestxt.portal_hosts(portal.options)
    try:
        # blocking: up to MAX_BYTES of text to read through
        selection = await asyncio.to_thread(sessions.select, text, hosts)
    except cookiestxt.CookieFileError as e:
        data = {"problems": e.problems} if e.problems else None
        raise InvalidParams(f"{portal.name}: {e}; its saved session is unchanged", data) from None
    # Checked again and written in one step of the loop: no run can start in between.
    _not_running(s.runner, portal, "import the session")
    cookie_file = session_file(s.daemon.config.state_dir, portal.name)
    try:
        sessions.save(cookie_file, selection)
    except OSError as e:
        raise GmidError(f"could not save the session: {e.strerror}") from None
    kept = len(selection.kept)
    hosts_text = ", ".join(selection.hosts)
    logger.info("portal %s: session imported (%d cookies for %s)", portal.name, kept, hosts_text)
    s.daemon.events.publish("session.imported", portal=portal.name, cookies=kept)
    summary = selection.summary()
    return p.SessionImported.from_dict(summary | {"portal": portal.name, "file": str(cookie_file)})


async def session_clear(s: Services, params: Params, conn: Connection) -> p.SessionCleared:
    """Forget the portal's saved session: its next run logs in."""
    portal = _portal(s.runner, params, ("portal",))
    _not_running(s.runner, portal, "forget the session")
    cookie_file = session_file(s.daemon.config.state_dir, portal.name)
    try:
        cleared = sessions.forget(cookie_file)
    except OSError as e:
        raise GmidError(f"could not delete {cookie_file}: {e.strerror}") from None
    if cleared:
        logger.info("portal %s: saved session forgotten", portal.name)
        s.daemon.events.publish("session.cleared", portal=portal.name)
    return p.SessionCleared(portal=portal.name, cleared=cleared)


async def session_show(s: Services, params: Params, conn: Connection) -> p.SessionInfo:
    """The portal's saved session: its cookies' names, domains and expiry, never a value."""
    portal = _portal(s.runner, params, ("portal",))
    cookie_file = session_file(s.daemon.config.state_dir, portal.name)
    shown = await asyncio.to_thread(sessions.show, cookie_file)
    hosts = cookiestxt.portal_hosts(portal.options)
    return p.SessionInfo.from_dict(
        shown | {"portal": portal.name, "file": str(cookie_file), "hosts": hosts}
    )


def _portal(runner: PortalRunner, params: Params, known: tuple[str, ...]) -> PortalConfig:
    """The portal a request names (NotFound when none is configured by that name)."""
    check.only(params, known)
    return runner.portal(check.text(params, "portal"))


def _not_running(runner: PortalRunner, portal: PortalConfig, doing: str) -> None:
    if runner.running(portal.name):
        raise Busy(
            f"a run of {portal.name} is under way: {doing} when it has ended "
            "(it would save its own session over it)"
        )
