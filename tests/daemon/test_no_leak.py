"""Canary secrets never leave where they belong, across a full day of a daemon's life.

A portal password, a TOTP seed, an IMAP password and the portal's session cookie are made
unmistakable. The daemon runs at debug level through a refused login, a login with an SMS code
typed over the socket, a TOTP login and a refused IMAP login. Then every place a secret could
end up is searched: the log, the index (and its WAL), every state file except the 0600 session
jars, every answer the socket gave, the CLI's output.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyotp

from gmid.demo.portal import DemoPortal, running
from tests.conftest import ROOT, make_daemon_dir
from tests.portals.test_runs import DEMO_FORM

PASSWORD = "canary-portal-pw-7f3a9c"
WRONG = "canary-wrong-pw-51d2e8"
TOTP = pyotp.random_base32()  # the seed itself is the canary
IMAP_PASSWORD = "canary-imap-pw-c0ffee"
CODE = "246810"


def _config(sms_port: int, totp_port: int, imap_port: int, secrets_dir: Path) -> str:
    def secret_file(name: str, value: str) -> str:
        path = secrets_dir / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        return f"{{file: {path}}}"

    return (
        "portals:\n"
        "  - name: sms\n    enabled: false\n    username: demo\n"
        f"    password: {secret_file('sms.pw', WRONG)}\n"
        + DEMO_FORM.format(start=f"http://127.0.0.1:{sms_port}/login")
        + "  - name: totp\n    enabled: false\n    username: demo\n"
        f"    password: {secret_file('totp.pw', PASSWORD)}\n"
        f"    totp_secret: {secret_file('totp.seed', TOTP)}\n"
        + DEMO_FORM.format(start=f"http://127.0.0.1:{totp_port}/login").replace(
            "medium: sms", "medium: app"
        )
        + "mailboxes:\n  - name: mail\n    host: 127.0.0.1\n"
        f"    port: {imap_port}\n    security: plain\n"
        f"    username: gmid\n    password: {secret_file('imap.pw', IMAP_PASSWORD)}\n"
    )


def _gmid(daemon, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gmid", *args, "-c", str(daemon.config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    return done.stdout + done.stderr


def test_canary_secrets_stay_where_they_belong(tmp_path: Path, dovecot) -> None:
    sms_portal = DemoPortal(code=CODE, password=PASSWORD)
    totp_portal = DemoPortal(totp=TOTP, password=PASSWORD)
    with running(sms_portal, port=0) as sms, running(totp_portal, port=0) as totp:
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir(mode=0o700)
        daemon = make_daemon_dir(extra=_config(sms.port, totp.port, dovecot.port, secrets_dir))
        daemon_args = ["-v"]  # debug level: the most a log can say
        answers: list[str] = []
        try:
            _start_verbose(daemon, daemon_args)
            # 1. a refused login (the wrong password is a canary too)
            answers.append(_gmid(daemon, "fetch", "sms", "--wait"))
            # 2. the right password, then an SMS code typed over the socket
            (secrets_dir / "sms.pw").write_text(PASSWORD + "\n")
            fetch = subprocess.Popen(
                [sys.executable, "-m", "gmid", "fetch", "sms", "--wait", "-c", str(daemon.config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=ROOT,
            )
            deadline = time.monotonic() + 30
            while not daemon.call(lambda c: c.challenges()) and time.monotonic() < deadline:
                time.sleep(0.05)
            answers.append(json.dumps([c.to_dict() for c in daemon.call(lambda c: c.challenges())]))
            answers.append(_gmid(daemon, "code", "sms", CODE))
            answers.append(fetch.communicate(timeout=60)[0])
            assert "ok: " in answers[-1], answers[-1]
            # 3. the TOTP portal answers its own code
            answers.append(_gmid(daemon, "fetch", "totp", "--wait"))
            assert "ok: " in answers[-1], answers[-1]
            # 4. the IMAP server refuses the (canary) password
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and "login refused" not in str(
                daemon.call(lambda c: c.mailboxes())
            ):
                time.sleep(0.05)
            # 5. what a user or the TUI asks the socket
            for command in ("status", "portals", "mailboxes", "challenges", "documents"):
                answers.append(_gmid(daemon, command, "--json"))
                answers.append(_gmid(daemon, command))
            events = daemon.call(lambda c: c.recent_events())
            answers.append(json.dumps([event.to_dict() for event in events]))
            assert daemon.stop() == 0
        finally:
            daemon.stop()

        cookies = set(sms_portal.sessions) | set(totp_portal.sessions)
        cookies |= set(sms_portal.codes) | set(totp_portal.codes)
        assert cookies, "the portals handed out no session"
        canaries = {"password": PASSWORD, "wrong password": WRONG, "TOTP seed": TOTP}
        canaries["IMAP password"] = IMAP_PASSWORD
        canaries |= {f"session cookie {i}": c for i, c in enumerate(cookies)}

        places: dict[str, bytes] = {"log": daemon.log.read_bytes()}
        places |= {f"answer {i}": a.encode() for i, a in enumerate(answers)}
        jars = []
        for path in sorted(daemon.state.rglob("*")):
            if not path.is_file():
                continue
            if path.parent.name == "sessions":
                jars.append(path)
                continue
            places[str(path.relative_to(daemon.state))] = path.read_bytes()
        for path in daemon.archived_files():
            places[str(path)] = path.read_bytes()

        leaks = [
            f"{what} in {where}"
            for what, canary in canaries.items()
            for where, data in places.items()
            if canary.encode() in data
        ]
        assert leaks == []
        # really searched: debug lines, the refused logins, the index
        assert b"DEBUG gmid.portals.web: POST" in places["log"]
        assert b"login refused" in places["log"] and b"wrong" in places["answer 0"].lower()
        assert "index.sqlite" in places
        # the session cookies live only in the owner-only jars
        assert jars and all(stat.S_IMODE(os.stat(j).st_mode) == 0o600 for j in jars)
        assert any(any(c.encode() in j.read_bytes() for c in cookies) for j in jars)


def _start_verbose(daemon, extra_args: list[str]) -> None:
    """Start the daemon like conftest's Daemon.start, with extra arguments (debug logging)."""
    logf = daemon.log.open("ab")
    daemon.proc = subprocess.Popen(
        [sys.executable, "-m", "gmid", "daemon", *extra_args, "-c", str(daemon.config)],
        stdout=logf,
        stderr=logf,
        cwd=ROOT,
    )
    logf.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            raise RuntimeError(daemon.log_text())
        try:
            daemon.status()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("daemon did not answer:\n" + daemon.log_text())
