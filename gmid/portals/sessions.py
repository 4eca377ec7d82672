"""A portal's saved session (its cookies): import one from a browser, show it, forget it.

The session is the file the runner loads before a run and writes back after it,
`state_dir/sessions/NAME.cookies` (LWP format, 0600). `gmid session import` fills it from a
browser's cookies.txt export (gmid/portals/cookiestxt.py checks them): the next run finds the
session valid and does not log in, which gets past a login a form client cannot do (a captcha).

The control socket's methods (gmid/daemon/rpc/sessions.py) take the file's text, never a path:
the daemon opens no file a client names. Cookie values appear in no answer and no log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gmid.archive.fs import fsync_dir
from gmid.portals import cookiestxt


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


def select(text: str, hosts: list[str]) -> cookiestxt.Selection:
    """The cookies of a cookies.txt text that a browser sends to the portal's hosts.

    CookieFileError says why none can be used. Blocking: up to MAX_BYTES of text to read.
    """
    return cookiestxt.select(cookiestxt.parse(text), hosts, time.time())


def save(cookie_file: Path, selection: cookiestxt.Selection) -> None:
    """Make the selected cookies the portal's saved session (0600); OSError if it cannot."""
    from gmid.portals.web import write_cookies  # requests: not at daemon start

    write_cookies([c.to_cookiejar() for c in selection.kept], cookie_file)


def forget(cookie_file: Path) -> bool:
    """Delete the portal's saved session; False when there was none, OSError if it cannot."""
    try:
        cookie_file.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(cookie_file.parent)
    return True
