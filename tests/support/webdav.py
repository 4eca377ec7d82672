"""A real WebDAV server (wsgidav on cheroot) on loopback, in its own process.

    with serve(tmp_path / "dav", user="gmid", password="secret") as dav:
        ...  # dav.url is http://127.0.0.1:PORT/, dav.root the folder it serves
        assert dav.files() == {"Telekom/2026-03-04 Telekom 4711.pdf": b"%PDF..."}

The server runs as a separate process (`python -m tests.support.webdav ROOT`), so that a test
may kill the daemon delivering to it, and a benchmark does not share the interpreter with it.
It prints its port on its first line of output. Without a user it accepts anyone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.needs import unavailable

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WebDav:
    """A running server: its base URL and the folder whose files it serves."""

    url: str
    root: Path
    process: subprocess.Popen

    def files(self) -> dict[str, bytes]:
        """Every file on the server, by its path below the root ('/' between folders)."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                found[path.relative_to(self.root).as_posix()] = path.read_bytes()
        return found

    def stop(self) -> None:
        """End the server (a destination that is down)."""
        # Killed: cheroot's stop waits for every kept-alive connection; what it answered is on
        # disk already.
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def serve(
    root: Path,
    *,
    user: str | None = None,
    password: str | None = None,
    port: int = 0,
    threads: int = 10,
) -> Iterator[WebDav]:
    """Serve root over WebDAV on 127.0.0.1 until the block ends."""
    try:
        import cheroot  # noqa: F401
        import wsgidav  # noqa: F401
    except ImportError:
        unavailable("wsgidav is not installed (scripts/setup test installs it)")
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tests.support.webdav", str(root), "--port", str(port)]
    command += ["--threads", str(threads)]
    env = dict(os.environ)
    if user is not None:
        command += ["--user", user]
        env["WEBDAV_PASSWORD"] = password or ""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        process.wait()
        raise RuntimeError(f"the WebDAV server did not start: {line!r}")
    dav = WebDav(f"http://127.0.0.1:{line}/", root, process)
    try:
        yield dav
    finally:
        dav.stop()
        process.stdout.close()


def _main() -> None:
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--user")
    args = parser.parse_args()
    if args.user:
        users = {"*": {args.user: {"password": os.environ["WEBDAV_PASSWORD"]}}}
    else:
        users = {"*": True}
    config = {
        "provider_mapping": {"/": args.root},
        "simple_dc": {"user_mapping": users},
        "http_authenticator": {"accept_basic": True, "accept_digest": True},
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "lock_storage": True,
        "property_manager": True,
    }
    app = WsgiDAVApp(config)
    server = wsgi.Server(("127.0.0.1", args.port), app, numthreads=args.threads)
    server.prepare()
    print(server.bind_addr[1], flush=True)
    server.serve()


if __name__ == "__main__":
    _main()
