"""What the control methods work with: the daemon's components, started before the socket opens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gmid.archive.index import Index
    from gmid.daemon.daemon import Daemon
    from gmid.mail.imap.watch import ImapWatchers
    from gmid.portals.challenges.broker import ChallengeBroker
    from gmid.portals.runner import PortalRunner
    from gmid.schedule.scheduler import PortalScheduler


@dataclass(frozen=True)
class Services:
    """The daemon's parts, each method's first argument."""

    daemon: Daemon  # its config (a new one after each reload), reload(), the process's facts
    index: Index
    runner: PortalRunner
    broker: ChallengeBroker
    scheduler: PortalScheduler
    imap: ImapWatchers
    # One change of the config at a time: each checks names against the files on disk.
    edits: asyncio.Lock = field(default_factory=asyncio.Lock)
