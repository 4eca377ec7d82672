"""Open an archived file with the desktop's opener: xdg-open, or the command in GMID_OPENER.

GMID_OPENER (a command line, split as a shell would, the file's path appended) is for desktops
without xdg-open (macOS: `open`), for a viewer of one's choice, and for a terminal without a
desktop whose files reach a desktop another way. Without it, xdg-open needs a desktop to open
the file on: DISPLAY or WAYLAND_DISPLAY.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from textual.screen import Screen

ENV = "GMID_OPENER"
WAIT = 30.0  # an opener that has not ended by then runs on, unwatched (a viewer in front)
# xdg-open's exit codes (xdg-utils), what they tell a user.
XDG_EXITS = {
    1: "error in the command line",
    2: "the file does not exist (or cannot be read)",
    3: "a tool it needs is missing",
    4: "no application would open it",
}


@dataclass(frozen=True)
class Opener:
    """The command that opens a file, or why there is none."""

    command: list[str] | None
    why_not: str = ""


def opener(env: Mapping[str, str] | None = None) -> Opener:
    """The opener this environment has: GMID_OPENER, else xdg-open on a desktop."""
    env = os.environ if env is None else env
    chosen = env.get(ENV, "").strip()
    if chosen:
        try:
            command = shlex.split(chosen)
        except ValueError as e:
            return Opener(None, f"{ENV} is not a command line: {e}")
        return Opener(command)
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return Opener(None, f"no desktop to open it on (no DISPLAY; {ENV} sets an opener)")
    found = shutil.which("xdg-open", path=env.get("PATH"))
    if found is None:
        return Opener(None, f"no opener: xdg-open is not installed ({ENV} sets another)")
    return Opener([found])


def run_opener(command: list[str], path: str) -> str | None:
    """Run the opener on path, detached from the terminal; None when it started and did not
    fail within WAIT seconds, else what went wrong. Blocking: call it from a thread."""
    try:
        proc = subprocess.Popen(
            [*command, path],
            stdin=subprocess.DEVNULL,
            # Not a pipe: a viewer that outlives the wait must not die writing to a closed one.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the terminal's process group: Ctrl-C is not its
        )
    except OSError as e:
        return f"{command[0]}: {e.strerror or e}"
    try:
        code = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        return None  # still open in front of the user: fine
    if code == 0:
        return None
    name = os.path.basename(command[0])
    why = XDG_EXITS.get(code, "") if name == "xdg-open" else ""
    return f"{name} failed (exit {code})" + (f": {why}" if why else "")


def open_from(screen: Screen, path: str) -> None:
    """Open path with the desktop's opener, from a screen: it says what happens, and why not
    when there is no opener or no desktop (with the file's path, to open it another way)."""
    found = opener()
    if found.command is None:
        screen.notify(f"{found.why_not}. The file is {path}", title="Cannot open", timeout=12)
        return
    command = found.command
    screen.notify(f"opening {path}")

    def run() -> None:
        problem = run_opener(command, path)
        if problem:
            message = f"{problem}. The file is {path}"
            screen.app.call_from_thread(screen.notify, message, severity="error", timeout=12)

    screen.run_worker(run, thread=True, group="opener", exit_on_error=False)
