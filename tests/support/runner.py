"""A portal runner started on a config file, wired as the daemon wires it, for in-process runs.

async with started_runner(tmp_path / "config.yaml") as (runner, config, index):
    record = await runner.fetch("shop")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from gmid.archive.archive import Archive
from gmid.archive.index import Index
from gmid.config.load import Config, load_config
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.runner import PortalRunner


@contextlib.asynccontextmanager
async def started_runner(path: Path) -> AsyncIterator[tuple[PortalRunner, Config, Index]]:
    """Load the config, open its index and archive, and start a runner on them."""
    config = load_config(path)
    index = Index(config.state_dir / "index.sqlite")
    try:
        archive = Archive(
            config.archive.dir,
            config.archive.name,
            index,
            config.tz,
            quarantine_dir=config.state_dir / "quarantine",
        )
        events = EventBus()
        events.bind(asyncio.get_running_loop())
        broker = ChallengeBroker(events, image_dir=path.parent / "challenges")
        runner = PortalRunner(config, archive, index, broker, events)
        await runner.start()
        yield runner, config, index
    finally:
        index.close()
