"""The notifier runs the user's command with the challenge in its environment, and never fails."""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import CodeRequest
from gmid.config.portals import NotifyConfig
from gmid.events import EventBus
from gmid.portals.alert import Notifier
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.challenges.challenge import Challenge

PROMPT = 'Code sent to +49 *** 12; $(touch pwned) `touch pwned2` "quoted"'


def challenge(**changes) -> Challenge:
    now = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    fields = {
        "id": "0a1b2c3d",
        "portal": "telekom",
        "kind": "code",
        "prompt": PROMPT,
        "medium": "sms",
        "created_at": now,
        "expires_at": now + timedelta(minutes=10),
    }
    fields.update(changes)
    return Challenge(**fields)


def dump_env_command(out: Path) -> str:
    return f"env | grep '^GMID_' | sort > {shlex.quote(str(out))}"


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_command_gets_the_challenge_in_its_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "env.txt"
    Notifier(NotifyConfig(command=dump_env_command(out)))(challenge())
    assert read_env(out) == {
        "GMID_CHALLENGE_ID": "0a1b2c3d",
        "GMID_EXPIRES": "2025-03-01T09:40:00+00:00",
        "GMID_KIND": "code",
        "GMID_MEDIUM": "sms",
        "GMID_PORTAL": "telekom",
        "GMID_PROMPT": PROMPT,
    }
    # The portal's text travels as data, never as shell code.
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_captcha_command_gets_the_image_path(tmp_path):
    out = tmp_path / "env.txt"
    notify = Notifier(NotifyConfig(command=dump_env_command(out)))
    notify(challenge(kind="captcha", medium="", image_path="/run/gmid/c/0a1b2c3d.png"))
    env = read_env(out)
    assert env["GMID_IMAGE"] == "/run/gmid/c/0a1b2c3d.png"
    assert env["GMID_MEDIUM"] == ""


def test_token_command_gets_the_page_to_solve_it_on(tmp_path):
    out = tmp_path / "env.txt"
    notify = Notifier(NotifyConfig(command=dump_env_command(out)))
    page = "https://portal.example/login"
    notify(challenge(kind="token", medium="", widget="recaptcha", page_url=page))
    env = read_env(out)
    assert (env["GMID_KIND"], env["GMID_WIDGET"], env["GMID_PAGE_URL"]) == (
        "token",
        "recaptcha",
        page,
    )


def test_failing_command_is_logged_not_raised(caplog):
    command = "echo 'no route to the SMS gateway' >&2; echo second line >&2; exit 3"
    with caplog.at_level(logging.WARNING, logger="gmid.portals.alert"):
        Notifier(NotifyConfig(command=command))(challenge())
    assert "failed with exit code 3: no route to the SMS gateway" in caplog.text
    assert "second line" not in caplog.text


def test_missing_program_is_logged_not_raised(caplog):
    with caplog.at_level(logging.WARNING, logger="gmid.portals.alert"):
        Notifier(NotifyConfig(command="/nonexistent/notify-send"))(challenge())
    assert "exit code 127" in caplog.text


def _gone_or_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_hanging_command_is_killed_with_its_children(tmp_path, caplog):
    pidfile = tmp_path / "child.pid"
    command = f"sleep 60 & echo $! > {shlex.quote(str(pidfile))}; wait"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="gmid.portals.alert"):
        Notifier(NotifyConfig(command=command, timeout=0.3))(challenge())
    assert time.monotonic() - started < 5
    assert "killed after 0.3 s" in caplog.text
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _gone_or_zombie(child):
        assert time.monotonic() < deadline, "the command's child survived the timeout"
        time.sleep(0.02)


def test_apprise_missing_warns_once_at_start(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed, even where it is
    with caplog.at_level(logging.WARNING, logger="gmid.portals.alert"):
        notify = Notifier(NotifyConfig(apprise=("ntfy://secret-token@ntfy.example/gmid",)))
        notify(challenge())
        notify(challenge())
    warnings = [r for r in caplog.records if "apprise" in r.getMessage()]
    assert len(warnings) == 1
    assert "not installed" in warnings[0].getMessage()
    assert "secret-token" not in caplog.text


async def test_broker_runs_the_notify_command_for_a_new_code(tmp_path):
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    out = tmp_path / "env.txt"
    notify = Notifier(NotifyConfig(command=dump_env_command(out)))
    broker = ChallengeBroker(bus, image_dir=tmp_path / "images", notify=notify)
    worker = asyncio.create_task(
        asyncio.to_thread(broker.ask, "stadtwerke", CodeRequest("E-mail code", medium="email"))
    )
    try:
        for _ in range(500):
            if out.exists() and out.read_text():
                break
            await asyncio.sleep(0.01)
        env = read_env(out)
        [pending] = broker.pending()
        assert env["GMID_CHALLENGE_ID"] == pending.id
        assert (env["GMID_PORTAL"], env["GMID_MEDIUM"]) == ("stadtwerke", "email")
        broker.answer("stadtwerke", "5150")
        assert await worker == "5150"
    finally:
        broker.cancel()
