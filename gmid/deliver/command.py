"""Deliver by running a command of the user's, once per document.

The command runs through /bin/sh -c in its own process group. It gets the document's fields as
one JSON object on stdin and the file's path in $GMID_FILE (also $GMID_KEY, stable per document
and destination, for a command that wants to recognise a second call; $GMID_DESTINATION;
$GMID_NAME). Exit 0 is success, its last line of output the reference shown; exit 65
(EX_DATAERR: "this document is refused") stops the retries; anything else is tried again later,
with the last line of its stderr as the reason. At the timeout it is killed with its children.
What it prints is read up to 64 KiB (its last 64 KiB of stderr): a chatty command cannot fill
the daemon's memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO

from yaml.nodes import Node

from gmid.config.reader import Reader, is_null
from gmid.deliver.base import Delivery, DeliveryFailed, reason

REFUSED = 65  # EX_DATAERR: the command refuses this document for good
KEEP = 64 * 1024  # bytes of its output kept
SHOWN = 200  # characters of a line shown


@dataclass(frozen=True)
class Options:
    """The command line."""

    command: str


def read_options(r: Reader, node: Node, option: str) -> Options:
    """Read a command destination's options: command."""
    m = r.mapping(node, option, ("command",))
    text = r.text(m.get("command"), f"{option}.command", "")
    if is_null(m.get("command")) or not text.strip():
        r.problem(m.get("command", node), f"{option}.command", "needed: the command to run")
    return Options(command=text)


def destination(name: str, options: Options) -> CommandDestination:
    """The command destination of these options."""
    return CommandDestination(name, options)


class CommandDestination:
    """A command run once per document."""

    def __init__(self, name: str, options: Options):
        self.name = name
        self.options = options

    def deliver(self, item: Delivery, deadline: float) -> str:
        """Run the command for the document; return the last line it printed."""
        if not item.path.is_file():
            raise DeliveryFailed(f"the archived file {item.path} is gone")
        fields = dict(item.fields) | {
            "name": item.name,
            "file": str(item.path),
            "media_type": item.media_type,
            "sha256": item.sha256,
            "key": item.key,
            "destination": self.name,
        }
        env = dict(os.environ) | {
            "GMID_FILE": str(item.path),
            "GMID_KEY": item.key,
            "GMID_DESTINATION": self.name,
            "GMID_NAME": item.name,
        }
        stdin = json.dumps(fields, ensure_ascii=False).encode() + b"\n"
        code, out, err = _run(self.options.command, stdin, env, deadline)
        if code == 0:
            return _last_line(out) or "exit 0"
        why = _last_line(err) or f"exited {code}"
        if code < 0:
            why = f"ended by signal {-code}" + (f": {why}" if _last_line(err) else "")
        raise DeliveryFailed(reason(why, SHOWN), permanent=code == REFUSED)

    def close(self) -> None:
        """Nothing to let go of."""


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return reason(lines[-1], SHOWN) if lines else ""


def _run(command: str, stdin: bytes, env: dict[str, str], deadline: float):
    """Run command until it ends or the deadline; (exit code, stdout head, stderr tail)."""
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            process_group=0,
        )
    except OSError as e:
        raise DeliveryFailed(f"cannot start the command: {e.strerror}") from None
    assert proc.stdin and proc.stdout and proc.stderr
    out, err = bytearray(), bytearray()
    threads = [
        threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True),
        threading.Thread(target=_drain, args=(proc.stdout, out, False), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err, True), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        code = proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise DeliveryFailed("did not finish in time; killed") from None
    finally:
        # What the command left running in its group ends with it; a child that left the group
        # and holds a pipe is not waited for (its reader thread is left to end with it).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pipe, thread in zip((proc.stdout, proc.stderr), threads[1:], strict=True):
            thread.join(1)
            if not thread.is_alive():
                pipe.close()
    return code, bytes(out), bytes(err)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError):  # a command that does not read its stdin
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


def _drain(pipe: IO[bytes], kept: bytearray, tail: bool) -> None:
    """Read a pipe to its end, keeping its first (or, with tail, last) KEEP bytes."""
    with contextlib.suppress(OSError, ValueError):
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
            if tail:
                kept += chunk
                del kept[:-KEEP]
            elif len(kept) < KEEP:
                kept += chunk[: KEEP - len(kept)]
