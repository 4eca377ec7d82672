"""pretix, a real open-source ticket shop with customer accounts and invoice PDFs, for tests.

pretix (PyPI `pretix`, AGPL-3.0 with additional terms) is installed from PyPI, never copied into
this repository: once per machine into `~/.cache/gmid-tests/pretix/venv` (`$XDG_CACHE_HOME` is
honoured; every clone of the repository uses it), with its database migrated once into
`template.sqlite3` there, and seeded once more into `seeded-HASH/`
(tests/support/pretix_site/seed_pretix.py: an organizer with customer accounts, one customer,
paid orders with their invoice PDFs; HASH changes with that script). A test session copies the
seeded database and PDFs into a fresh folder and serves pretix with gunicorn on 127.0.0.1, on a
socket this process bound (no race for the port, which pretix must know for its absolute links).

`python -m tests.support.pretix install` (scripts/install-pretix) does the once-per-machine part
ahead of a test run; the tests do it themselves when it was not done.

pretix runs without celery (its tasks, such as rendering an invoice PDF, run at once in the
request), without redis (a local-memory cache), with SQLite, and with its mails written into
files (gmid_pretix_settings.py): it sends nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.logged import run_logged

ROOT = Path(__file__).resolve().parents[2]
PRETIX_VERSION = "2026.8.0"
GUNICORN_VERSION = "23.0.0"
# Once per machine, whichever clone runs the tests; GMID_PRETIX_CACHE: another folder.
_USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
CACHE = Path(os.environ.get("GMID_PRETIX_CACHE") or _USER_CACHE / "gmid-tests" / "pretix").resolve()
VENV = CACHE / "venv"
TEMPLATE = CACHE / "template.sqlite3"
STAMP = CACHE / "ready"
SITE = Path(__file__).resolve().parent / "pretix_site"
HOST = "127.0.0.1"

INSTALL_TIMEOUT = 900.0  # seconds; about 1 minute to install and 1.5 to migrate on 2 cores
SEED_TIMEOUT = 120.0
START_TIMEOUT = 60.0  # gunicorn answers after about 3 s
STOP_TIMEOUT = 10.0

# pip here may be set up with local find-links that do not exist: one warning per package.
_PIP_NOISE = "is ignored: it is neither a file nor a directory"


class PretixUnavailable(RuntimeError):
    """pretix could not be installed or started; the message says why."""


def _stamp() -> str:
    py = ".".join(map(str, sys.version_info[:2]))
    return f"pretix=={PRETIX_VERSION} gunicorn=={GUNICORN_VERSION} python{py}\n"


def installed() -> bool:
    return STAMP.exists() and STAMP.read_text() == _stamp() and TEMPLATE.exists()


def python() -> Path:
    return VENV / "bin" / "python"


def write_config(folder: Path, port: int) -> Path:
    """pretix's config file for a server on `port`, its data (SQLite, media, logs) in `folder`."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = folder / "pretix.cfg"
    config.write_text(
        "[pretix]\n"
        "instance_name=gmid test pretix\n"
        f"url=http://{HOST}:{port}\n"
        "currency=EUR\n"
        f"datadir={data}\n"
        "ecb_rates=off\n"
        "[django]\n"
        "secret=gmid-test-secret-not-a-secret\n"
        "debug=off\n"
        "[database]\n"
        "backend=sqlite3\n"
        f"name={data / 'db.sqlite3'}\n"
        "[locale]\n"
        "default=en\n"
        "timezone=Europe/Berlin\n"
    )
    return config


def environment(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PRETIX_"))}
    env.update(
        PRETIX_CONFIG_FILE=str(config),
        DJANGO_SETTINGS_MODULE="gmid_pretix_settings",
        PYTHONPATH=str(SITE),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _run(cmd: list[str], log: Path, timeout: float, **kwargs) -> None:
    run_logged(cmd, log, timeout, PretixUnavailable, noise=_PIP_NOISE, **kwargs)


def install(say=print) -> None:
    """Install pretix into CACHE and migrate the template database, once per machine.

    Safe to run from several processes at once (a lock file); raises PretixUnavailable.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return
        log = CACHE / "install.log"
        log.write_text("")
        STAMP.unlink(missing_ok=True)
        shutil.rmtree(VENV, ignore_errors=True)
        TEMPLATE.unlink(missing_ok=True)
        started = time.monotonic()
        say(f"pretix: installing pretix {PRETIX_VERSION} into {VENV} (once; a few minutes)")
        _run([sys.executable, "-m", "venv", str(VENV)], log, 120)
        pip = [str(python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run(
            [*pip, f"pretix=={PRETIX_VERSION}", f"gunicorn=={GUNICORN_VERSION}"],
            log,
            INSTALL_TIMEOUT,
        )
        say(f"pretix: installed in {time.monotonic() - started:.0f}s; migrating its database")
        migrated = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="gmid-pretix-migrate-") as tmp:
            config = write_config(Path(tmp), 8000)
            _run(
                [str(python()), "-m", "pretix", "migrate", "-v0"],
                log,
                INSTALL_TIMEOUT,
                env=environment(config),
                cwd=tmp,
            )
            shutil.copyfile(Path(tmp) / "data" / "db.sqlite3", TEMPLATE)
        STAMP.write_text(_stamp())
        say(f"pretix: migrated in {time.monotonic() - migrated:.0f}s; ready in {CACHE}")


def seeded() -> Path:
    """The folder of a seeded database (db.sqlite3, media/ with the invoice PDFs, seed.json),
    made once per machine and per version of the seed script, which a session copies."""
    install()
    digest = hashlib.sha256()
    for name in ("seed_pretix.py", "gmid_pretix_settings.py"):
        digest.update((SITE / name).read_bytes())
    folder = CACHE / f"seeded-{digest.hexdigest()[:12]}"
    if (folder / "seed.json").exists():
        return folder
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "seed.json").exists():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix="seeding-", dir=CACHE))
        try:
            env = environment(write_config(work, 8000))
            shutil.copyfile(TEMPLATE, work / "data" / "db.sqlite3")
            _run(
                [str(python()), str(SITE / "seed_pretix.py"), str(work / "seed.json")],
                CACHE / "seed.log",
                SEED_TIMEOUT,
                env=env,
                cwd=work,
            )
            folder.mkdir()
            for name in ("db.sqlite3", "media"):
                (work / "data" / name).rename(folder / name)
            (work / "seed.json").rename(folder / "seed.json")  # last: marks the folder complete
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return folder


class Pretix:
    """A seeded pretix served by gunicorn on 127.0.0.1; `data` is what seed_pretix.py made."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.log = folder / "pretix.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.data: dict = {}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def organizer_url(self) -> str:
        return f"{self.url}/{self.data['organizer']}"

    def start(self) -> Pretix:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            env = environment(write_config(self.dir, self.port))
            source = seeded()
            shutil.copyfile(source / "db.sqlite3", self.dir / "data" / "db.sqlite3")
            shutil.copytree(source / "media", self.dir / "data" / "media")
            self.data = json.loads((source / "seed.json").read_text())
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    [
                        str(VENV / "bin" / "python"),
                        "-m",
                        "gunicorn",
                        "pretix.wsgi:application",
                        "--bind",
                        f"fd://{sock.fileno()}",
                        "--workers",
                        "1",
                        "--threads",
                        "4",
                        "--timeout",
                        "60",
                        "--log-level",
                        "warning",
                    ],
                    stdout=out,
                    stderr=out,
                    env=env,
                    cwd=self.dir,
                    pass_fds=(sock.fileno(),),
                    start_new_session=True,
                )
        finally:
            sock.close()  # gunicorn holds its own copy
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        probe = f"{self.organizer_url}/account/login"
        while True:
            if self.proc.poll() is not None:
                raise PretixUnavailable(f"gunicorn exited {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(probe, timeout=5) as answer:
                if answer.status == 200:
                    return
            if time.monotonic() > deadline:
                raise PretixUnavailable(f"pretix did not answer {probe}:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)  # gunicorn: quick shutdown
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.support.pretix install")
    try:
        install(lambda text: print(text, file=sys.stderr))
        seeded()
    except PretixUnavailable as exc:
        sys.exit(f"pretix: {exc}")
