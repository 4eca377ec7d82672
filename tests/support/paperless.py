"""paperless-ngx v3.0.5, a real document manager with a REST API, for the delivery tests.

Its source is in tests/servers/paperless/ (GPL-3.0; see the README there). Once per machine
(`scripts/servers/paperless.sh`, run by scripts/test; the tests do it themselves when it was
not done) it is unpacked into `~/.cache/gmid-tests/paperless` (`$XDG_CACHE_HOME` honoured;
every clone of the repository uses it), its pinned packages are installed into a venv there
with uv, and its database is migrated into `template.sqlite3` with a superuser in it.

A test session copies that database into a fresh folder, adds an API token for the superuser
(straight into the SQLite file: no Django start-up for it), and runs what paperless's Docker
image runs, all on 127.0.0.1: redis (broker and cache) on a free port, a celery worker, and
granian serving the API over HTTPS, with a certificate of a CA made for the session (`ca_file`;
the clients verify it). OCR is off and no archive PDF is made, so consuming a PDF takes about
half a second. The Debian programs it needs (redis-server, gs, pdftotext, ImageMagick's convert,
libmagic) are installed by scripts/test.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from tests.support.ca import make_ca
from tests.support.logged import run_logged
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "servers" / "paperless"
TARBALL = SERVER / "paperless-ngx-v3.0.5-src-min.tgz"
REQUIREMENTS = SERVER / "requirements.txt"
UV_VERSION = "0.13.9"
_USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
CACHE = Path(
    os.environ.get("GMID_PAPERLESS_CACHE") or _USER_CACHE / "gmid-tests" / "paperless"
).resolve()
VENV = CACHE / "venv"
SRC = CACHE / "src"
TEMPLATE = CACHE / "template.sqlite3"
STAMP = CACHE / "ready"
HOST = "127.0.0.1"
USER = "gmid"
PASSWORD = "paperless-test-password"  # the test server's superuser; not a secret of anyone's

# Debian programs paperless runs; /usr/bin/convert, since /usr/local/bin may hold another one
PROGRAMS = ("redis-server", "gs", "pdftotext")
CONVERT = "/usr/bin/convert"

INSTALL_TIMEOUT = 900.0  # seconds; the packages take a few seconds with uv's cache warm
MIGRATE_TIMEOUT = 300.0  # about 10 s on 2 cores
START_TIMEOUT = 90.0  # the API answers after about 7 s
STOP_TIMEOUT = 10.0


class PaperlessUnavailable(RuntimeError):
    """paperless could not be installed or started; the message says why."""


def _stamp() -> str:
    digest = hashlib.sha256(TARBALL.read_bytes() + REQUIREMENTS.read_bytes()).hexdigest()[:16]
    py = ".".join(map(str, sys.version_info[:2]))
    return f"paperless-ngx {digest} python{py}\n"


def installed() -> bool:
    return STAMP.exists() and STAMP.read_text() == _stamp() and TEMPLATE.exists()


def missing_programs() -> list[str]:
    """The Debian programs paperless needs that this machine lacks."""
    missing = [name for name in PROGRAMS if shutil.which(name) is None]
    if not os.access(CONVERT, os.X_OK):
        missing.append(CONVERT)
    return missing


def environment(folder: Path, redis_port: int) -> dict[str, str]:
    """paperless's settings for an instance whose data lives in `folder`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PAPERLESS_"))}
    env.update(
        PAPERLESS_REDIS=f"redis://{HOST}:{redis_port}",
        PAPERLESS_DATA_DIR=str(folder / "data"),
        PAPERLESS_MEDIA_ROOT=str(folder / "media"),
        PAPERLESS_CONSUMPTION_DIR=str(folder / "consume"),
        PAPERLESS_SCRATCH_DIR=str(folder / "scratch"),
        PAPERLESS_STATICDIR=str(folder / "static"),
        PAPERLESS_SECRET_KEY="gmid-test-paperless-not-a-secret",
        PAPERLESS_OCR_MODE="off",
        PAPERLESS_ARCHIVE_FILE_GENERATION="never",
        PAPERLESS_CONVERT_BINARY=CONVERT,
        PAPERLESS_ENABLE_NLTK="false",
        PAPERLESS_ENABLE_UPDATE_CHECK="false",
        PAPERLESS_TASK_WORKERS="1",
        PAPERLESS_THREADS_PER_WORKER="1",
        PAPERLESS_TIME_ZONE="Europe/Berlin",
        # a file paperless has already fails as "duplicate_of" rather than being filed twice
        # (v3's default files it again); gmid must recognise both
        PAPERLESS_CONSUMER_DELETE_DUPLICATES="true",
        PYTHONDONTWRITEBYTECODE="1",
    )
    for name in ("data", "data/index", "media", "consume", "scratch", "static"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return env


def _run(cmd: list[str], log: Path, timeout: float, **kwargs) -> None:
    run_logged(cmd, log, timeout, PaperlessUnavailable, **kwargs)


class Redis:
    """A private redis-server on 127.0.0.1, nothing saved to disk."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / "redis.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *("redis-server", "--bind", HOST, "--port", str(self.port)),
                    *("--save", "", "--appendonly", "no", "--dir", str(folder)),
                ],
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PaperlessUnavailable(f"redis-server did not start:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)


def _stop(proc: subprocess.Popen | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def install(say=print) -> None:
    """Install paperless into CACHE and migrate the template database, once per machine.

    Safe to run from several processes at once (a lock file); raises PaperlessUnavailable.
    """
    if missing := missing_programs():
        raise PaperlessUnavailable(f"missing {', '.join(missing)} (scripts/test installs them)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return
        log = CACHE / "install.log"
        log.write_text("")
        STAMP.unlink(missing_ok=True)
        for old in (VENV, SRC):
            shutil.rmtree(old, ignore_errors=True)
        TEMPLATE.unlink(missing_ok=True)
        started = time.monotonic()
        say(f"paperless: installing paperless-ngx 3.0.5 into {CACHE} (once)")
        _run([sys.executable, "-m", "venv", str(VENV)], log, 120)
        python = str(VENV / "bin" / "python")
        _run([python, "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"], log, INSTALL_TIMEOUT)
        uv = [str(VENV / "bin" / "uv"), "pip", "install", "--python", python, "--no-deps"]
        _run([*uv, "-r", str(REQUIREMENTS)], log, INSTALL_TIMEOUT)
        unpacked = Path(tempfile.mkdtemp(prefix="unpack-", dir=CACHE))
        with tarfile.open(TARBALL) as tar:
            tar.extractall(unpacked, filter="data")
        (unpacked / "src").rename(SRC)
        shutil.rmtree(unpacked)
        say(f"paperless: installed in {time.monotonic() - started:.0f}s; migrating its database")
        migrated = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="migrate-", dir=CACHE) as tmp:
            redis = Redis(Path(tmp))
            try:
                env = environment(Path(tmp), redis.port)
                manage = [python, str(SRC / "manage.py")]
                _run([*manage, "migrate", "-v0"], log, MIGRATE_TIMEOUT, env=env, cwd=SRC)
                env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
                superuser = [*manage, "createsuperuser", "--noinput", "--username", USER]
                _run([*superuser, "--email", "gmid@example.org"], log, 120, env=env, cwd=SRC)
            finally:
                redis.stop()
            shutil.copyfile(Path(tmp) / "data" / "db.sqlite3", TEMPLATE)
        STAMP.write_text(_stamp())
        say(f"paperless: migrated in {time.monotonic() - migrated:.0f}s; ready in {CACHE}")


class Paperless:
    """paperless on 127.0.0.1 for one test session: `url`, `token`; start() and close()."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.port = 0
        self.token = ""
        self.redis: Redis | None = None
        self.procs: list[subprocess.Popen] = []
        self.started_in = 0.0
        self.ca_file = folder / "ca.pem"
        self._context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def start(self) -> Paperless:
        started = time.monotonic()
        atexit.register(self.close)  # a session that ends without its teardown leaves no server
        install()
        shutil.copyfile(TEMPLATE, self.dir / "db.sqlite3")
        self.redis = Redis(self.dir)
        env = environment(self.dir, self.redis.port)
        (self.dir / "db.sqlite3").rename(self.dir / "data" / "db.sqlite3")
        self.token = self._add_token(self.dir / "data" / "db.sqlite3")
        self.port = free_port()
        tls = self.dir / "tls"
        tls.mkdir()
        ca, cert, key = make_ca(tls)
        shutil.copyfile(ca, self.ca_file)
        self._context = ssl.create_default_context(cafile=str(self.ca_file))
        bin_dir = VENV / "bin"
        worker = [str(bin_dir / "celery"), "--app", "paperless", "worker", "--loglevel", "INFO"]
        web = [str(bin_dir / "granian"), "--interface", "asginl", "--host", HOST]
        web += ["--ssl-certificate", str(cert), "--ssl-keyfile", str(key)]
        self._spawn("celery", [*worker, "--without-mingle", "--without-gossip"], env)
        self._spawn("granian", [*web, "--port", str(self.port), "paperless.asgi:application"], env)
        self._wait()
        self.started_in = time.monotonic() - started
        return self

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        with (self.dir / f"{name}.log").open("ab") as out:
            self.procs.append(
                subprocess.Popen(
                    cmd, stdout=out, stderr=out, env=env, cwd=SRC, start_new_session=True
                )
            )

    @staticmethod
    def _add_token(database: Path) -> str:
        token = secrets.token_hex(20)
        with contextlib.closing(sqlite3.connect(database)) as db, db:
            (user_id,) = db.execute(
                "SELECT id FROM auth_user WHERE username = ?", (USER,)
            ).fetchone()
            db.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (?, ?, ?)",
                (token, datetime.now(UTC).isoformat(sep=" "), user_id),
            )
        return token

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise PaperlessUnavailable(f"{proc.args[0]} exited:\n{self.tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                if self.api("/api/documents/")["count"] >= 0:
                    return
            if time.monotonic() > deadline:
                raise PaperlessUnavailable(f"paperless did not answer:\n{self.tail()}")
            time.sleep(0.1)

    def api(self, path: str, method: str = "GET") -> dict:
        """GET (or DELETE...) a path of the API as the superuser; the JSON answer, if any."""
        request = urllib.request.Request(
            self.url + path,
            headers={"Authorization": f"Token {self.token}", "Accept": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30, context=self._context) as answer:
            body = answer.read()
        return json.loads(body) if body else {}

    def tail(self, lines: int = 30) -> str:
        parts = []
        for name in ("granian", "celery"):
            log = self.dir / f"{name}.log"
            if log.exists():
                text = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(parts)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            _stop(proc, signal.SIGTERM)
        if self.redis is not None:
            self.redis.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.support.paperless install")
    try:
        install(lambda text: print(text, file=sys.stderr))
    except PaperlessUnavailable as exc:
        sys.exit(f"paperless: {exc}")
