"""The lock on a state folder: one daemon (or one `gmid verify --repair`) uses it at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from gmid.errors import GmidError

LOCK_FILE = "daemon.lock"


class StateLocked(GmidError):
    """Another process holds the lock; pid is what it wrote into the lock file ("?" if none)."""

    def __init__(self, pid: str):
        super().__init__(pid)
        self.pid = pid


def lock_state(state_dir: Path) -> int:
    """Take the lock without waiting and write our pid into it; return the fd that holds it."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StateLocked(pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
