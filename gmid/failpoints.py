"""Crash points for the crash tests: `GMID_FAILPOINT=name` makes the daemon SIGKILL itself there
(`name:TERM`: SIGTERM, a stop asked at that very step).

A test cannot time an outside `kill -9` to land between two particular steps; this lets it put
the kill exactly there, in the real daemon process. Unset (always, outside those tests), a
failpoint is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def hit(name: str) -> None:
    """Die by SIGKILL, as `kill -9` would, if the environment names this failpoint; with
    `name:TERM`, be asked to stop (SIGTERM), as systemd asks, right there."""
    wanted = os.environ.get("GMID_FAILPOINT")
    if wanted == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif wanted == f"{name}:TERM":
        os.kill(os.getpid(), signal.SIGTERM)
