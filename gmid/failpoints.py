"""Crash points for the crash tests: `GMID_FAILPOINT=name` makes the daemon SIGKILL itself there.

A test cannot time an outside `kill -9` to land between two particular steps; this lets it put
the kill exactly there, in the real daemon process. Unset (always, outside those tests), a
failpoint is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def hit(name: str) -> None:
    """Die by SIGKILL, as `kill -9` would, if the environment names this failpoint."""
    if os.environ.get("GMID_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
