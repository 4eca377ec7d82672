"""Running an install or setup step of a test server with its output in a log file."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_logged(
    cmd: list[str],
    log: Path,
    timeout: float,
    error: type[Exception],
    *,
    noise: str | None = None,
    **kwargs,
) -> None:
    """Run cmd with its output appended to log; `error` with the log's tail when it fails.

    Lines holding `noise` are left out of that tail (pip's warnings, say).
    """
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            done = subprocess.run(cmd, stdout=out, stderr=out, timeout=timeout, **kwargs)
        except subprocess.TimeoutExpired as exc:
            msg = f"{' '.join(cmd[:4])}... took over {timeout:.0f}s; see {log}"
            raise error(msg) from exc
    if done.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()
        tail = "\n".join([line for line in lines if not noise or noise not in line][-25:])
        raise error(f"{' '.join(cmd[:4])}... failed ({done.returncode}):\n{tail}")
