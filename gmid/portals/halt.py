"""The daemon's stop, as portal runs see it: their requests end at once.

Apart from gmid/portals/guard.py, which acts on it, so that the runner holds one without
importing requests at the daemon's start.
"""

from __future__ import annotations

import threading
from typing import Any


class Halt:
    """Stops the requests of runs at once (the daemon is stopping): the ones under way, whose
    sockets are shut down, and every next one before it is sent; retries wait on it."""

    def __init__(self):
        self.event = threading.Event()
        self._watches: set[Any] = set()
        self._lock = threading.Lock()

    def halt(self) -> None:
        """Stop every request now and from now on."""
        with self._lock:
            self.event.set()
            watches = list(self._watches)
        for watch in watches:
            watch.expire()

    def add(self, watch) -> bool:
        """Follow a request's watch; False once halted (the request must not be sent)."""
        with self._lock:
            if self.event.is_set():
                return False
            self._watches.add(watch)
            return True

    def discard(self, watch) -> None:
        """Stop following a watch (its request is over)."""
        with self._lock:
            self._watches.discard(watch)
