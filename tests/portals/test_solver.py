"""Captchas answered by the user's solver command, or by hand through the socket when it fails.

The daemon runs against the demo portal with its reCAPTCHA-style widget on loopback; the
"solver" is a script that knows the portal's secret, standing in for a solving service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import CaptchaRequest, TokenRequest
from gmid.config.load import load_config
from gmid.config.portals import SolverConfig
from gmid.demo.portal import CAPTCHA_FAILED, SITE_KEY, DemoPortal, captcha_token, running
from gmid.errors import ConfigError
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.solver import asker, describe, solve, solver_for
from tests.conftest import make_daemon_dir
from tests.connectors.test_form import Setup, Shop
from tests.portals.test_runner import SECRET as TOTP
from tests.portals.test_runs import PORTAL, fetch_in_background, gmid
from tests.support.portal_http import serve

SECRET = "the-portals-captcha-secret"

SOLVER = """\
import base64, hashlib, hmac, json, secrets, sys
mode, secret, record = sys.argv[1:4]
data = json.load(sys.stdin)
with open(record, "a") as f:
    f.write(json.dumps(data) + "\\n")
if mode == "fail":
    print("no balance left on the solving account", file=sys.stderr)
    sys.exit(2)
if mode == "empty":
    sys.exit(0)
if data["kind"] == "image":  # the test shop writes the answer after the PNG signature
    print(base64.b64decode(data["image"])[8:].decode())
    sys.exit(0)
nonce = secrets.token_hex(8)
mac = hmac.new(secret.encode(), f"{data['site_key']}.{nonce}".encode(), hashlib.sha256)
print(f"{nonce}.{mac.hexdigest()}")
"""


def solver_command(folder: Path, mode: str = "ok") -> tuple[str, Path]:
    """The command line of the test's solver, and the file it records its input in."""
    script, record = folder / "solver.py", folder / "solver-input.jsonl"
    script.write_text(SOLVER)
    parts = [sys.executable, str(script), mode, SECRET, str(record)]
    return " ".join(shlex.quote(part) for part in parts), record


def inputs(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


# -- the command itself


def test_the_solver_gets_the_challenge_as_json_and_its_answer_is_taken(tmp_path, caplog):
    command, record = solver_command(tmp_path)
    request = TokenRequest("recaptcha", SITE_KEY, "https://shop.example/login")
    with caplog.at_level(logging.INFO):
        token = solve(SolverConfig(command), "shop", request, timeout=20)
    assert token is not None and DemoPortal(captcha_secret=SECRET).token_ok(token)
    [data] = inputs(record)
    assert data == {
        "kind": "token",
        "portal": "shop",
        "widget": "recaptcha",
        "site_key": SITE_KEY,
        "page_url": "https://shop.example/login",
        "invisible": False,
        "prompt": request.prompt,
        "retry_message": None,
    }
    assert "the captcha solver answered the recaptcha check" in caplog.text
    assert token not in caplog.text


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("fail", "exited 2: no balance left on the solving account"),
        ("empty", "printed no answer"),
    ],
)
def test_a_failing_solver_is_logged_with_its_stderr_and_gives_none(tmp_path, caplog, mode, said):
    command, _ = solver_command(tmp_path, mode)
    request = TokenRequest("hcaptcha", "k", "https://shop.example/login")
    assert solve(SolverConfig(command), "shop", request, timeout=20) is None
    assert f"portal shop: the captcha solver {said}; asking a human instead" in caplog.text
    assert command not in caplog.text  # the command may hold an API key


def test_a_solver_that_hangs_is_stopped_with_what_it_started(tmp_path, caplog):
    marker = tmp_path / "late"
    command = f"(sleep 3; touch {shlex.quote(str(marker))}) & sleep 30"
    request = TokenRequest("turnstile", "k", "https://shop.example/login")
    started = time.monotonic()
    assert solve(SolverConfig(command), "shop", request, timeout=0.5) is None
    assert time.monotonic() - started < 3
    assert "did not answer within 0.5 s" in caplog.text
    time.sleep(3.5)
    assert not marker.exists()  # the whole process group was killed


def test_an_image_captcha_is_described_with_its_bytes():
    request = CaptchaRequest(image=b"\x89PNG\r\n\x1a\nabc", media_type="image/png")
    data = describe("shop", request)
    assert data["kind"] == "image" and data["media_type"] == "image/png"
    assert data["image"] == "iVBORw0KGgphYmM=" and data["prompt"] == request.prompt


async def test_an_image_captcha_is_answered_by_the_solver_and_nobody_is_asked(tmp_path):
    command, record = solver_command(tmp_path)
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    broker = ChallengeBroker(bus, image_dir=tmp_path / "img")
    progress: list[str] = []
    ask = asker(
        broker,
        "shop",
        SolverConfig(command, timeout=20),
        totp=None,
        expiry=lambda: 30.0,
        progress=progress.append,
    )
    with serve_shop(tmp_path) as setup:
        connector = setup.connector(ask=ask)
        await asyncio.to_thread(connector.login)
        assert await asyncio.to_thread(lambda: len(list(connector.documents()))) == 5
    [data] = inputs(record)
    assert data["kind"] == "image" and data["media_type"] == "image/png"
    assert progress == ["asking the captcha solver"]
    assert not [e for e in bus.recent if e["type"].startswith("challenge.")]


@contextlib.contextmanager
def serve_shop(tmp_path: Path) -> Iterator[Setup]:
    """The image captcha shop of test_form_connector, served for the `with` block."""
    shop = Shop(captcha=True)
    with serve(shop) as portal:
        yield Setup(shop, portal.url, portal.requests, tmp_path)


async def test_when_the_solver_fails_a_human_is_asked(tmp_path, caplog):
    command, _ = solver_command(tmp_path, "fail")
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    broker = ChallengeBroker(bus, image_dir=tmp_path / "img")
    ask = asker(
        broker, "shop", SolverConfig(command), totp=None, expiry=lambda: 30.0, progress=print
    )
    request = TokenRequest("recaptcha", SITE_KEY, "https://shop.example/login")
    worker = asyncio.create_task(asyncio.to_thread(ask, request))
    try:
        for _ in range(1000):
            if broker.pending():
                break
            await asyncio.sleep(0.01)
        [challenge] = broker.pending()
        assert challenge.kind == "token" and challenge.site_key == SITE_KEY
        broker.answer(challenge.id, "by-hand-token")
        assert await worker == "by-hand-token"
    finally:
        broker.cancel()
    assert "asking a human instead" in caplog.text


# -- the config


PORTAL_ITEM = """\
  - name: {name}
    form:
      start: https://{name}.example/login
      documents: {{pages: /x, rows: tr, download: a}}
"""


def test_a_portal_uses_its_own_solver_the_global_one_or_none(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"state_dir: {tmp_path}/state\n"
        "captcha_solver: {command: 'solve-it --fast', timeout: 45s}\n"
        "portals:\n"
        + PORTAL_ITEM.format(name="a")
        + PORTAL_ITEM.format(name="b")
        + "    captcha_solver: false\n"
        + PORTAL_ITEM.format(name="c")
        + "    captcha_solver: {command: other-solver}\n"
    )
    config = load_config(path)
    a, b, c = config.portals
    assert solver_for(a, config.captcha_solver) == SolverConfig("solve-it --fast", 45.0)
    assert solver_for(b, config.captcha_solver) is None
    assert solver_for(c, config.captcha_solver) == SolverConfig("other-solver", 120.0)
    assert solver_for(a, None) is None


def test_solver_mistakes_are_named_with_their_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"state_dir: {tmp_path}/state\n"
        "captcha_solver: false\n"  # 2
        "portals:\n"
        + PORTAL_ITEM.format(name="a")
        + "    captcha_solver: {timeout: 0s, comand: x}\n"  # 8
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = {(p.line, p.option): p.message for p in info.value.problems}
    assert found[(2, "captcha_solver")] == "false is for a portal's own setting"
    assert found[(8, "portals[0].captcha_solver.comand")].endswith("did you mean 'command'?")
    assert found[(8, "portals[0].captcha_solver.command")] == "expected the command to run"


# -- a real daemon against the demo portal with its widget


@pytest.fixture
def portal():
    demo = DemoPortal(totp=TOTP, captcha="recaptcha", captcha_secret=SECRET)
    with running(demo, port=0) as served:
        yield served


def start_daemon(portal, solver: str | None = None):
    text = PORTAL.format(port=portal.port, password="demo", code_timeout="30s")
    totp = f"    totp_secret: {{command: 'echo {TOTP}'}}\n"
    text = text.replace("    form:\n", f"    enabled: false\n{totp}    form:\n", 1)
    text = text.replace("medium: sms", "medium: app")  # the code comes from the TOTP secret
    if solver:
        text = f"captcha_solver: {{command: {json.dumps(solver)}, timeout: 20s}}\n" + text
    return make_daemon_dir(extra=text).start()


def stop(daemon) -> str:
    log = daemon.log_text()
    assert daemon.stop() == 0, log
    assert "Traceback" not in log, log
    return log


def wait_for_challenge(daemon, retry: bool = False):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pending = daemon.call(lambda c: c.challenges())
        if pending and (pending[0].retry_message or not retry):
            return pending[0]
        time.sleep(0.05)
    raise AssertionError("no challenge came")


def test_the_solver_command_answers_the_widget_and_the_run_finishes(portal, tmp_path):
    command, record = solver_command(tmp_path)
    daemon = start_daemon(portal, solver=command)
    try:
        result = gmid(daemon, "fetch", "energie", "--wait")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "asking the captcha solver" in result.stdout
        assert "energie: ok: 6 new documents" in result.stdout
    finally:
        log = stop(daemon)
    [data] = inputs(record)
    assert data["kind"] == "token" and data["portal"] == "energie"
    assert (data["widget"], data["site_key"]) == ("recaptcha", SITE_KEY)
    assert data["page_url"] == f"http://127.0.0.1:{portal.port}/login"
    assert "portal energie: the captcha solver answered the recaptcha check" in log
    assert portal.tokens_used and not any(token in log for token in portal.tokens_used)


def test_by_hand_when_the_solver_fails_a_wrong_token_asks_again_in_the_portals_words(
    portal, tmp_path
):
    command, record = solver_command(tmp_path, "fail")
    daemon = start_daemon(portal, solver=command)
    try:
        run = fetch_in_background(daemon)
        challenge = wait_for_challenge(daemon)
        assert (challenge.kind, challenge.widget) == ("token", "recaptcha")
        assert challenge.site_key == SITE_KEY
        assert challenge.page_url == f"http://127.0.0.1:{portal.port}/login"
        shown = gmid(daemon, "challenges")
        assert shown.returncode == 0
        print(shown.stdout)  # how it looks, for the record
        assert f"open http://127.0.0.1:{portal.port}/login in a browser" in shown.stdout
        assert "document.querySelector('[name=g-recaptcha-response]').value" in shown.stdout
        assert "answer with: gmid code energie TOKEN" in shown.stdout
        listed = json.loads(gmid(daemon, "challenges", "--json").stdout)[0]
        assert listed["widget"] == "recaptcha" and listed["site_key"] == SITE_KEY

        assert gmid(daemon, "code", "energie", "'03AFcWeA-expired'").returncode == 0
        again = wait_for_challenge(daemon, retry=True)
        assert again.retry_message == CAPTCHA_FAILED
        assert f"the portal said: {CAPTCHA_FAILED}" in gmid(daemon, "challenges").stdout
        token = captcha_token(SECRET)  # what the user's browser would have given
        daemon.call(lambda c: c.answer(again.id, token))
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, out + err
        assert "energie: ok: 6 new documents" in out
    finally:
        log = stop(daemon)
    assert len(inputs(record)) == 2  # the solver was tried for each token
    assert inputs(record)[1]["retry_message"] == CAPTCHA_FAILED
    assert "exited 2: no balance left on the solving account; asking a human instead" in log
    assert token not in log and portal.captcha_refused == 1


def test_a_token_typed_with_gmid_code_without_any_solver(portal):
    daemon = start_daemon(portal)
    try:
        run = fetch_in_background(daemon)
        wait_for_challenge(daemon)
        status = gmid(daemon, "status").stdout
        assert "energie asks for a captcha token: Solve the reCAPTCHA check" in status
        token = captcha_token(SECRET)
        assert gmid(daemon, "code", "energie", token).returncode == 0
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0 and "ok: 6 new documents" in out, out + err
    finally:
        log = stop(daemon)
    assert token not in log
