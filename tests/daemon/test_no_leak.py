"""Canary secrets never leave where they belong, across a full day of a daemon's life.

A portal password, a TOTP seed, an IMAP password and the portal's session cookie are made
unmistakable. The daemon runs at debug level through a refused login, a login with an SMS code
typed over the socket, a TOTP login and a refused IMAP login. Then every place a secret could
end up is searched: the log, the index (and its WAL), every state file except the 0600 session
jars, every answer the socket gave, the CLI's output. A portal that echoes what it was sent (the
password, the codes typed, its session cookie) in its words and pages is searched the same way.
"""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pyotp
import yaml

from gmid.demo.portal import DemoPortal, running
from tests.conftest import ROOT, make_daemon_dir
from tests.portals.test_runs import DEMO_FORM
from tests.support.portal_http import serve

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
            fetch = _fetch_in_background(daemon, "sms")
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
            answers += _told(daemon, "status", "portals", "mailboxes", "challenges", "documents")
            assert daemon.stop() == 0
        finally:
            daemon.stop()

        cookies = set(sms_portal.sessions) | set(totp_portal.sessions)
        cookies |= set(sms_portal.codes) | set(totp_portal.codes)
        assert cookies, "the portals handed out no session"
        canaries = {"password": PASSWORD, "wrong password": WRONG, "TOTP seed": TOTP}
        canaries["IMAP password"] = IMAP_PASSWORD
        canaries |= {f"session cookie {i}": c for i, c in enumerate(cookies)}

        places, jars = _places(daemon, answers)
        assert _leaks(canaries, places) == []
        # really searched: debug lines, the refused logins, the index
        assert b"DEBUG gmid.portals.web: POST" in places["log"]
        assert b"login refused" in places["log"] and b"wrong" in places["answer 0"].lower()
        assert "index.sqlite" in places
        # the session cookies live only in the owner-only jars
        assert jars and all(stat.S_IMODE(os.stat(j).st_mode) == 0o600 for j in jars)
        assert any(any(c.encode() in j.read_bytes() for c in cookies) for j in jars)


def _told(daemon, *commands: str) -> list[str]:
    """What a user or the TUI is told: each command's answer, as JSON and as text, and the
    recent events."""
    answers = []
    for command in commands:
        answers.append(_gmid(daemon, command, "--json"))
        answers.append(_gmid(daemon, command))
    events = daemon.call(lambda c: c.recent_events())
    return [*answers, json.dumps([event.to_dict() for event in events])]


def _fetch_in_background(daemon, portal: str) -> subprocess.Popen:
    """`gmid fetch PORTAL --wait` under way, its output (stdout and stderr) in one pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "gmid", "fetch", portal, "--wait", "-c", str(daemon.config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


def _places(daemon, answers: list[str]) -> tuple[dict[str, bytes], list[Path]]:
    """Every place a secret must not be, by name: the log, the answers, the state files, the
    archive; and apart, the session jars (where cookies belong)."""
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
    return places, jars


def _leaks(canaries: dict[str, str], places: dict[str, bytes]) -> list[str]:
    """Which canary is found where."""
    return [
        f"{what} in {where}"
        for what, canary in canaries.items()
        for where, data in places.items()
        if canary.encode() in data
    ]


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


# --- a portal that echoes what it was sent --------------------------------------------------

ECHO_PASSWORD = 'Kanarien-Pw&<"é 7f3a9c'  # changed by HTML, URL and JSON escaping alike
ECHO_WRONG = 'Falsch-Pw&<"ü 51d2e8'
ECHO_CODES = ("73195284", "86420975")
ECHO_SESSION = "sid-canary-4f1e9b2d7c6a"

ECHO_PORTAL = """\
portals:
  - name: echo
    enabled: false
    username: kunde
    password: {{file: {password}}}
"""


def _echoed(password: str, *codes: str) -> str:
    """What a careless portal puts in its pages: the fields it was sent, in every escaping."""
    sent = html.escape(password)
    entities = "".join(f"&#{ord(c)};" for c in password)
    data = json.dumps({"password": password, "codes": codes})
    return (
        f'<input type="hidden" name="password" value="{sent}">'
        f'<input type="hidden" name="again" value="{entities}">'
        f"<script>var sent = {data};</script>"
        f'<a href="/help?password={quote_plus(password)}&code={",".join(codes)}">Hilfe</a>'
    )


def _echo_routes() -> dict:
    sent: dict[str, object] = {"codes": []}

    def form_page(body: str) -> tuple[int, dict, str]:
        return (
            200,
            {"Content-Type": "text/html; charset=utf-8"},
            f"<html><body>{body}</body></html>",
        )

    login_form = (
        '<form id="login" method="post" action="/login"><input name="email">'
        '<input type="password" name="password"></form>'
    )

    def code_form(error: str = "") -> str:
        return (
            f'{error}<p class="hint">Geben Sie den Code aus der SMS ein</p>'
            '<form id="otp" method="post" action="/otp"><input name="code"></form>'
        )

    def login(request):
        password = request.form()["password"][0]
        sent["password"] = password
        if password != ECHO_PASSWORD:
            alert = f'<div class="alert">Das Passwort „{html.escape(password)}“ ist falsch.</div>'
            return form_page(alert + login_form + _echoed(password))
        status, headers, body = form_page(code_form() + _echoed(password))
        return status, headers | {"Set-Cookie": f"sid={ECHO_SESSION}; Path=/"}, body

    def otp(request):
        codes = sent["codes"]
        codes.append(request.form()["code"][0])
        password = str(sent["password"])
        if len(codes) == 1:
            error = (
                f'<p class="error">Der Code {codes[0]} ist ungültig; Ihr Passwort lautet '
                f"{html.escape(password)}.</p>"
            )
            return form_page(code_form(error) + _echoed(password, *codes))
        words = f"Sie haben gesendet: Passwort {html.escape(password)}, Codes {', '.join(codes)}"
        words += f", Sitzung {request.cookies.get('sid')}"
        return form_page(f'<p class="echo">{words}</p>' + _echoed(password, *codes))

    return {
        ("GET", "/login"): lambda request: form_page(login_form),
        ("GET", "/invoices"): lambda request: form_page(login_form),  # never logged in
        ("POST", "/login"): login,
        ("POST", "/otp"): otp,
    }


def _escapings(secret: str) -> dict[str, str]:
    """The secret as a page, a URL or a JSON text may carry it."""
    return {
        "plain": secret,
        "HTML-escaped": html.escape(secret),
        "URL-encoded": quote(secret),
        "URL-encoded, lower-case": re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(secret)),
        "form-encoded": quote_plus(secret),
        "JSON-escaped": json.dumps(secret)[1:-1],
    }


def _strings(value) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_a_portal_echoing_the_password_and_codes_shows_them_nowhere(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    password_file = secrets_dir / "echo.pw"
    password_file.write_text(ECHO_WRONG + "\n")
    password_file.chmod(0o600)
    with serve(_echo_routes()) as portal:
        form = DEMO_FORM.format(start=f"{portal.url}/login")  # the same selectors
        portals = ECHO_PORTAL.format(password=password_file) + form
        daemon = make_daemon_dir(extra="include: portals.d/*.yaml\n" + portals)
        answers: list[str] = []
        try:
            _start_verbose(daemon, ["-v"])
            # 1. a refused login: the portal's message quotes the (wrong) password
            answers.append(_gmid(daemon, "fetch", "echo", "--wait"))
            refused = _gmid(daemon, "status", "--json")
            answers.append(refused)
            # 1b. the same refusal from a login tried before adding a portal
            form_options = yaml.safe_load(form)["form"]
            tried = daemon.call(
                lambda c: c.test_new_portal(
                    "echo-new", form=form_options, username="kunde", password=ECHO_WRONG
                )
            )
            answers.append(json.dumps(tried.to_dict()))
            # 2. the right password, two codes typed: the first refused in words that quote
            # it and the password, the second answered with a page that echoes everything
            password_file.write_text(ECHO_PASSWORD + "\n")
            fetch = _fetch_in_background(daemon, "echo")
            retry = []
            for code in ECHO_CODES:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    pending = daemon.call(lambda c: c.challenges())
                    if pending and (code == ECHO_CODES[0] or pending[0].retry_message):
                        break
                    time.sleep(0.05)
                answers.append(_gmid(daemon, "challenges", "--json"))
                retry.append(pending[0].retry_message)
                answers.append(_gmid(daemon, "code", "echo", code))
            answers.append(fetch.communicate(timeout=60)[0])
            assert "portal changed" in answers[-1], answers[-1]
            answers += _told(daemon, "status", "portals")
            assert daemon.stop() == 0
        finally:
            daemon.stop()

    canaries = {f"code {code}": code for code in ECHO_CODES}
    for what, secret in (("password", ECHO_PASSWORD), ("wrong password", ECHO_WRONG)):
        canaries |= {f"{what}, {form}": text for form, text in _escapings(secret).items()}
    canaries["session cookie"] = ECHO_SESSION
    places, jars = _places(daemon, answers)
    assert _leaks(canaries, places) == []
    assert any(ECHO_SESSION.encode() in jar.read_bytes() for jar in jars)  # where it belongs
    assert any(where.startswith("pages/echo/") for where in places) and "index.sqlite" in places
    assert b"the portal refused the user name or password" in places["log"]

    # the portal's words are still shown, with the secrets blanked
    assert "Das Passwort „[secret]“ ist falsch." in _strings(json.loads(refused))
    assert (tried.outcome, tried.portal_message) == (
        "wrong credentials",
        "Das Passwort „[secret]“ ist falsch.",
    )
    assert retry[1] == "Der Code [secret] ist ungültig; Ihr Passwort lautet [secret]."
    with sqlite3.connect(daemon.state / "index.sqlite") as db:
        runs = db.execute("SELECT outcome, portal_message FROM portal_runs ORDER BY id").fetchall()
    assert runs[0] == ("wrong credentials", "Das Passwort „[secret]“ ist falsch.")
    assert runs[1][0] == "portal changed"
    [saved] = (daemon.state / "pages" / "echo").iterdir()
    page = saved.read_bytes()
    assert (
        b"Sie haben gesendet: Passwort [secret], Codes [secret], [secret], Sitzung [secret]" in page
    )
    assert b'"password": "[secret]"' in page and b"/help?password=[secret]&" in page
