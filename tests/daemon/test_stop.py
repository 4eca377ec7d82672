"""The daemon's stop leaves the state locked while a portal thread may still write to it."""

from __future__ import annotations

import shutil

import pytest

from gmid.archive.statelock import StateLocked, lock_state
from gmid.config.load import load_config
from gmid.daemon.daemon import Daemon
from tests.conftest import make_daemon_dir


@pytest.fixture
def paths():
    d = make_daemon_dir()
    yield d
    shutil.rmtree(d.dir, ignore_errors=True)


async def test_a_portal_thread_still_busy_keeps_the_state_locked(paths, monkeypatch):
    daemon = Daemon(load_config(paths.config))
    await daemon.start()
    monkeypatch.setattr(daemon.runner, "idle", lambda: False)  # a thread stuck past the stop
    await daemon.stop()
    try:
        with pytest.raises(StateLocked):
            lock_state(paths.state)
    finally:
        daemon.index.close()


async def test_with_every_portal_thread_ended_the_stop_releases_the_state(paths):
    daemon = Daemon(load_config(paths.config))
    await daemon.start()
    await daemon.stop()
    lock_state(paths.state)
