"""`gmid-tui` in a real terminal: tmux at 80x24, against a real daemon, read with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_daemon_dir

PORTAL = """\
include: portals.d/*.yaml
portals:
  - name: energie
    company: Demo Energie
    enabled: false
    username: demo
    password: {env: GMID_TMUX_UNUSED}
    form:
      start: http://127.0.0.1:9/login
      login: {form: "form#login"}
      documents: {pages: [/invoices], rows: "tr", download: {selector: "a"}}
"""


def _tmux() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is missing: the TUI's terminal test needs it (apt-get install tmux)")
        pytest.skip("tmux is not installed")
    return tmux


def _screen(tmux: list[str], session: str) -> str:
    return subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True, timeout=10
    ).stdout


def _wait(tmux: list[str], session: str, predicate, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = _screen(tmux, session)
        if predicate(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen did not show what was expected:\n{screen}")
        time.sleep(0.1)


def test_gmid_tui_in_tmux_shows_the_home_screen_and_quits_with_q():
    tmux = _tmux()
    daemon = make_daemon_dir(extra=PORTAL).start()
    session = f"gmid-tui-{os.getpid()}"
    gmid_tui = Path(sys.executable).parent / "gmid-tui"
    # -L: a server of our own, so that the user's tmux and its options stay out of it
    base = [tmux, "-L", session, "-f", "/dev/null"]
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("TMUX", None)
    try:
        done = daemon.dir / "exited"
        command = f"{gmid_tui} --socket {daemon.socket}; echo $? > {done}; sleep 30"
        subprocess.run(
            [*base, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
            check=True,
            env=env,
            timeout=10,
        )
        screen = _wait(base, session, lambda s: "energie" in s)
        assert "gmid — Companies & Portals" in screen
        line = next(line for line in screen.splitlines() if "energie" in line)
        assert "portal" in line and "disabled" in line
        assert "q Quit" in screen
        assert max(len(line) for line in screen.splitlines()) <= 80

        subprocess.run([*base, "send-keys", "-t", session, "q"], check=True, timeout=10)
        deadline = time.monotonic() + 15
        while not done.exists():
            assert time.monotonic() < deadline, _screen(base, session)
            time.sleep(0.1)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=10)
        assert daemon.stop() == 0, daemon.log_text()
        shutil.rmtree(daemon.dir, ignore_errors=True)
