"""systemd's notify protocol (Type=notify), without libsystemd: datagrams to $NOTIFY_SOCKET.

    notify = SdNotify.from_environ()   # None when not started by systemd with a notify socket
    if notify:
        notify.ready("3 portals; 1 mailbox; 12 documents")

`READY=1` when the daemon serves, `STATUS=` lines for `systemctl status`, `WATCHDOG=1` every
half of `$WATCHDOG_USEC` (from the event loop: a stuck loop stops the pings and systemd restarts
the service), `RELOADING=1` ... `READY=1` around a reload, `STOPPING=1` on the way out.
`$NOTIFY_SOCKET` is a path, or an abstract socket when it starts with "@". A failed send is
logged once and otherwise ignored: telling systemd is never worth stopping the daemon for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import MutableMapping

logger = logging.getLogger(__name__)

ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class SdNotify:
    """One notify socket; every method is a single non-blocking datagram."""

    def __init__(self, address: str, watchdog_usec: int | None = None):
        if address.startswith("@"):
            self.address: bytes = b"\0" + os.fsencode(address[1:])  # Linux abstract namespace
        else:
            self.address = os.fsencode(address)
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> SdNotify | None:
        """Read and remove the notify variables; None when there is no usable socket.

        They are removed so that the commands gmid runs (password commands, notify commands)
        cannot talk to systemd in the daemon's name.
        """
        environ = os.environ if environ is None else environ
        address, usec, pid = (environ.pop(name, "") for name in ENV)
        if not address:
            return None
        if not (address.startswith(("/", "@"))):
            logger.warning("NOTIFY_SOCKET=%s: not a Unix socket; not notifying systemd", address)
            return None
        watchdog = None
        if usec and (not pid or pid == str(os.getpid())):
            try:
                watchdog = int(usec)
            except ValueError:
                logger.warning("WATCHDOG_USEC=%s is not a number; no watchdog pings", usec)
            else:
                watchdog = watchdog if watchdog > 0 else None
        return cls(address, watchdog)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two watchdog pings: half the watchdog timeout, as systemd advises."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` fields in one datagram; False (logged the first time) on failure."""
        message = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never wait on systemd from the event loop
            self._sock.sendto(message, self.address)
        except OSError as e:
            if not self._failed:
                self._failed = True
                logger.warning("could not notify systemd at %s: %s", self.address_text, e)
            return False
        return True

    @property
    def address_text(self) -> str:
        if self.address[:1] == b"\0":
            return "@" + self.address[1:].decode(errors="replace")
        return self.address.decode(errors="replace")

    def ready(self, status: str | None = None) -> bool:
        extra = [f"STATUS={_one_line(status)}"] if status is not None else []
        return self.send("READY=1", *extra)

    def reloading(self) -> bool:
        # systemd >= 253 wants the moment of the reload request with it (and ignores it before).
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    async def keep_alive(self) -> None:
        """Ping the watchdog from the event loop until cancelled (no-op without a watchdog)."""
        interval = self.watchdog_interval
        if interval is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())
