"""Commands from the user's config (password commands, captcha solvers), run with a time limit.

The command runs through the shell, in its own process group, so that a timeout also ends what
the shell started: a child still holding the pipes would otherwise keep us waiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass

from gmid.errors import GmidError


class CommandTimeout(GmidError):
    """The command did not finish in time; it and its children were killed."""


@dataclass(frozen=True)
class Finished:
    """What a command left: its exit code and its output, as bytes."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def first_error_line(self, limit: int = 200) -> str:
        """The first line of stderr, stripped and cut to limit characters ("" if none)."""
        lines = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[0].strip()[:limit] if lines else ""


def run(command: str, stdin: bytes | None, timeout: float) -> Finished:
    """Run command with stdin (None: no input); OSError if it cannot start, CommandTimeout."""
    proc = subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    with proc:
        try:
            stdout, stderr = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise CommandTimeout(command) from None
    return Finished(proc.returncode, stdout, stderr)
