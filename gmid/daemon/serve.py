"""Run the daemon as a process: signal handling, and systemd's READY=/STATUS= and watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from gmid import __version__
from gmid.config.load import Config
from gmid.daemon.daemon import Daemon
from gmid.daemon.systemd import SdNotify
from gmid.events import Subscription

# The daemon's logger: "ready" and "stopping" are the daemon's own lines in the journal.
logger = logging.getLogger("gmid.daemon.daemon")

STATUS_DELAY = 0.25  # seconds of events gathered into one STATUS= line for systemd


async def serve(
    config: Config, *, shutdown: asyncio.Event | None = None, demo: bool = False
) -> None:
    """Run the daemon until `shutdown` is set or SIGTERM/SIGINT arrives; SIGHUP reloads.

    Under systemd (Type=notify) it says READY=1 once every listener is up, keeps a STATUS= line
    current, pings the watchdog, and brackets reloads and the shutdown.
    """
    loop = asyncio.get_running_loop()
    shutdown = shutdown or asyncio.Event()
    daemon = Daemon(config)
    notify = SdNotify.from_environ()
    background: set[asyncio.Task] = set()

    def spawn(coro) -> None:
        task = loop.create_task(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    async def reload() -> None:
        if notify is None:
            await daemon.reload()
            return
        notify.reloading()
        try:
            await daemon.reload()
        finally:
            notify.ready()  # also after a refused config: the old one keeps running

    installed = []
    for sig, action in (
        (signal.SIGTERM, shutdown.set),
        (signal.SIGINT, shutdown.set),
        (signal.SIGHUP, lambda: spawn(reload())),
    ):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, action)
            installed.append(sig)
    if notify is not None:
        # From the start: opening a large index must not look like a hung daemon.
        spawn(notify.keep_alive())
    try:
        await daemon.start()
        logger.info("gmid %s ready (pid %d)", __version__, os.getpid())
        if notify is not None:
            events = daemon.events.subscribe()  # before the count: no change falls in between
            documents = await daemon.document_count()
            notify.ready(daemon.summary(documents))
            spawn(_report_status(notify, daemon, events, documents))
        if demo:
            from gmid.demo.feed import run_demo

            spawn(run_demo(daemon))
        await shutdown.wait()
        logger.info("stopping")
    finally:
        if notify is not None:
            notify.stopping()
        for task in list(background):
            task.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        await daemon.stop()
        if notify is not None:
            notify.close()


async def _report_status(
    notify: SdNotify, daemon: Daemon, events: Subscription, documents: int
) -> None:
    """Send a STATUS= line whenever the summary changes; count documents only when added."""
    last = daemon.summary(documents)
    try:
        while True:
            changed = {(await events.get())["type"]}
            with contextlib.suppress(TimeoutError):  # a burst of events makes one line
                async with asyncio.timeout(STATUS_DELAY):
                    while True:
                        changed.add((await events.get())["type"])
            if changed & {"document.added", "config.reloaded", "events.lost"}:
                documents = await daemon.document_count()
            text = daemon.summary(documents)
            if text != last:
                notify.status(text)
                last = text
    finally:
        daemon.events.unsubscribe(events)
