"""Adding and changing portals and companies over the socket: a real daemon, real files."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import stat
import subprocess
import sys
from datetime import datetime

import pytest
import yaml

from gmid.control import protocol as p
from gmid.demo.portal import DemoPortal, running
from gmid.errors import ControlError
from tests.conftest import ROOT, make_daemon_dir
from tests.support.mails import invoice_mail

PASSWORD = "Kj7#pw-only-for-tests"
CODE = "135790"
DEMO_FORM = ROOT / "connectors" / "forms" / "demo-energie.yaml"


def _form(port: int = 8089) -> dict:
    form = yaml.safe_load(DEMO_FORM.read_text())["form"]
    form["start"] = f"http://127.0.0.1:{port}/login"
    return form


MAIN = {
    "name": "main-portal",
    "enabled": False,
    "username": "demo",
    "password": {"env": "GMID_MAIN_PASSWORD"},
    "form": _form(),
}
EXTRA = "include: portals.d/*.yaml\n" + yaml.safe_dump({"portals": [MAIN]}, sort_keys=False)


@pytest.fixture
def daemon():
    d = make_daemon_dir(extra=EXTRA)
    d.start()
    yield d
    code = d.stop()
    log = d.log_text()
    shutil.rmtree(d.dir, ignore_errors=True)
    assert code == 0, log
    assert "Traceback" not in log, log
    assert PASSWORD not in log


def _portal(daemon, name: str):
    """The portal as `status` shows it, next run included; None if it is not configured."""
    return next((x for x in daemon.status().portals if x.name == name), None)


def _refused(daemon, call) -> ControlError:
    with pytest.raises(ControlError) as caught:
        daemon.call(call)
    assert PASSWORD not in str(caught.value) and PASSWORD not in json.dumps(caught.value.data)
    return caught.value


def test_a_typed_password_goes_to_the_secret_store_not_the_yaml(daemon):
    answer = daemon.call(
        lambda c: c.add_portal(
            "shop",
            company="Shop GmbH",
            form=_form(),
            username="me@example.org",
            password=PASSWORD,
            schedule={"at": ["tue 09:30"]},
        )
    )
    path = daemon.dir / "portals.d" / "shop.yaml"
    secret = daemon.state / "secrets" / "shop.password"
    assert answer.file == str(path) and answer.loaded is True
    assert answer.secrets == [str(secret)] and answer.warnings == []
    assert answer.portal.name == "shop" and answer.portal.company == "Shop GmbH"

    text = path.read_text()
    assert text.startswith("# written by gmid; edit freely, then `gmid reload`\n")
    [entry] = yaml.safe_load(text)["portals"]
    assert entry["password"] == {"file": str(secret)}
    assert entry["schedule"] == {"at": ["tue 09:30"]}
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    assert secret.read_text() == PASSWORD + "\n"
    assert PASSWORD not in text and PASSWORD not in json.dumps(answer.to_dict())

    checked = subprocess.run(
        [sys.executable, "-m", "gmid", "check-config", "-c", str(daemon.config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "1 included files" in checked.stdout and "plain-text" not in checked.stderr

    # loaded at once: listed and planned for the first Tuesday slot
    assert "shop" in [x.name for x in daemon.call(lambda c: c.portals())]
    planned = _portal(daemon, "shop")
    assert planned.next_reason.startswith("first run")
    assert datetime.fromisoformat(planned.next_run).strftime("%a %H:%M") == "Tue 09:30"
    events = daemon.call(lambda c: c.recent_events(200))
    assert any(e.type == "portal.added" and e.data["portal"] == "shop" for e in events)
    assert PASSWORD not in json.dumps([e.to_dict() for e in events])


def test_plain_text_only_when_insisted_and_with_a_warning(daemon):
    answer = daemon.call(
        lambda c: c.add_portal(
            "plain", form=_form(), username="me", password=PASSWORD, plain_text=True, enabled=False
        )
    )
    path = daemon.dir / "portals.d" / "plain.yaml"
    assert yaml.safe_load(path.read_text())["portals"][0]["password"] == PASSWORD
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a password in it: the owner's only
    assert not (daemon.state / "secrets").exists()
    assert any("plain text" in w and str(path) in w for w in answer.warnings)
    assert PASSWORD not in json.dumps(answer.to_dict())


def test_an_invalid_entry_is_refused_with_its_problems_and_nothing_written(daemon):
    form = _form()
    form["login"]["form"] = "form##login"
    error = _refused(
        daemon, lambda c: c.add_portal("broken", form=form, username="me", password=PASSWORD)
    )
    path = daemon.dir / "portals.d" / "broken.yaml"
    assert error.code == p.INVALID_PARAMS
    pattern = re.escape(str(path)) + r":\d+: portals\[0\]\.form\.login\.form: invalid CSS selector"
    assert any(re.match(pattern, problem) for problem in error.data["problems"]), error.data
    assert "nothing was written" in str(error)
    assert not (daemon.dir / "portals.d").exists()
    assert not (daemon.state / "secrets").exists()
    assert "broken" not in [x.name for x in daemon.call(lambda c: c.portals())]

    # a wrong schedule, a misspelt option: every problem at once
    error = _refused(
        daemon,
        lambda c: c.add_portal("broken", form=_form(), schedule={"at": ["someday"], "evry": "1d"}),
    )
    options = [problem.split(": ")[1] for problem in error.data["problems"]]
    assert "portals[0].schedule.evry" in options and "portals[0].schedule.at[0]" in options


def test_taken_names_and_the_users_own_config_are_refused(daemon):
    before = daemon.config.read_text()
    line = before.splitlines().index("- name: main-portal") + 1
    for call in (
        lambda c: c.update_portal("main-portal", enabled=True),
        lambda c: c.remove_portal("main-portal"),
    ):
        error = _refused(daemon, call)
        assert f"portal 'main-portal' is defined in {daemon.config} (line {line})" in str(error)
        assert "change it there" in str(error)
    error = _refused(daemon, lambda c: c.add_portal("MAIN-portal", form=_form()))
    assert f"a portal named 'main-portal' exists already ({daemon.config}:{line})" in str(error)

    daemon.call(lambda c: c.add_portal("shop", form=_form(), enabled=False))
    error = _refused(daemon, lambda c: c.add_portal("shop", form=_form(), enabled=False))
    assert "exists already" in str(error)
    error = _refused(daemon, lambda c: c.update_portal("nope", enabled=True))
    assert error.code == p.NOT_FOUND
    error = _refused(daemon, lambda c: c.add_portal("../etc", form=_form()))
    assert "use letters, digits" in str(error)
    error = _refused(daemon, lambda c: c.call("portal.add", name="x", pasword="typo"))
    assert "unknown parameter pasword" in str(error)
    assert daemon.config.read_text() == before


def test_update_and_remove_a_portal_of_portals_d(daemon):
    secrets = daemon.state / "secrets"
    daemon.call(
        lambda c: c.add_portal(
            "shop",
            form=_form(),
            username="me",
            password=PASSWORD,
            totp_secret="JBSWY3DPEHPK3PXP",
            schedule={"at": ["tue 09:30"]},
        )
    )
    path = daemon.dir / "portals.d" / "shop.yaml"
    assert _portal(daemon, "shop").next_reason.startswith("first run")

    answer = daemon.call(lambda c: c.update_portal("shop", enabled=False, schedule=None))
    entry = yaml.safe_load(path.read_text())["portals"][0]
    assert entry["enabled"] is False and "schedule" not in entry
    assert entry["totp_secret"] == {"file": str(secrets / "shop.totp")}
    assert answer.portal.enabled is False
    assert _portal(daemon, "shop").next_reason.startswith("disabled")

    answer = daemon.call(
        lambda c: c.update_portal(
            "shop", enabled=True, schedule={"at": ["fri 08:00"]}, password="new " + PASSWORD
        )
    )
    assert answer.secrets == [str(secrets / "shop.password")]
    assert (secrets / "shop.password").read_text() == "new " + PASSWORD + "\n"
    planned = _portal(daemon, "shop")
    assert datetime.fromisoformat(planned.next_run).strftime("%a %H:%M") == "Fri 08:00"

    # a reference instead: the stored copy goes
    answer = daemon.call(lambda c: c.update_portal("shop", password_ref={"env": "SHOP_PW"}))
    assert yaml.safe_load(path.read_text())["portals"][0]["password"] == {"env": "SHOP_PW"}
    assert answer.deleted == [str(secrets / "shop.password")]
    assert not (secrets / "shop.password").exists()

    answer = daemon.call(lambda c: c.remove_portal("shop", delete_secrets=True))
    assert answer.file is None and answer.portal is None
    assert not path.exists()
    assert str(secrets / "shop.totp") in answer.deleted
    assert list(secrets.iterdir()) == []
    assert "shop" not in [x.name for x in daemon.call(lambda c: c.portals())]


def test_a_hand_written_included_file_is_rewritten_with_its_other_entries(daemon):
    folder = daemon.dir / "portals.d"
    folder.mkdir()
    hand = folder / "mine.yaml"
    hand.write_text(
        "# my notes\n"
        + yaml.safe_dump(
            {
                "companies": [{"name": "Hosting", "senders": ["@hosting.example"]}],
                "portals": [{"name": "mine", "enabled": False, "form": _form()}],
            }
        )
    )
    assert daemon.call(lambda c: c.reload()) is True
    answer = daemon.call(lambda c: c.update_portal("mine", company="Mine AG"))
    assert any("comments" in w for w in answer.warnings)
    doc = yaml.safe_load(hand.read_text())
    assert doc["companies"] == [{"name": "Hosting", "senders": ["@hosting.example"]}]
    assert doc["portals"][0]["company"] == "Mine AG"
    answer = daemon.call(lambda c: c.remove_portal("mine"))
    assert answer.file == str(hand)  # the company is still in it
    assert "portals" not in yaml.safe_load(hand.read_text())


def test_a_company_added_gets_the_mail_of_its_senders(daemon):
    answer = daemon.call(lambda c: c.add_company("Hosting GmbH", ["@hosting.example"]))
    path = daemon.dir / "portals.d" / "company-hosting-gmbh.yaml"
    assert answer.file == str(path) and answer.loaded is True
    assert answer.company == p.CompanyInfo(
        name="Hosting GmbH", senders=["@hosting.example"], file=str(path)
    )
    code, _ = daemon.send(invoice_mail(sender="billing@mail.hosting.example"))
    assert code == 250
    [doc] = daemon.documents().documents
    assert doc.company == "Hosting GmbH"

    error = _refused(daemon, lambda c: c.add_company("hosting gmbh", ["@other.example"]))
    assert "exists already" in str(error)
    error = _refused(daemon, lambda c: c.add_company("Other", ["@stadtwerke.example", "nope"]))
    problems = "\n".join(error.data["problems"])
    assert "'@stadtwerke.example' already belongs to 'Stadtwerke'" in problems
    assert "'nope' is not an e-mail address" in problems
    assert sorted(x.name for x in path.parent.iterdir()) == [path.name]


def test_a_test_login_logs_in_and_downloads_nothing(daemon):
    with running(DemoPortal(code=CODE), port=0) as demo:
        daemon.call(
            lambda c: c.add_portal(
                "energie", form=_form(demo.port), username="demo", password="demo", enabled=False
            )
        )

        async def test_and_answer(c):
            test = asyncio.create_task(c.test_login("energie"))
            while not await c.challenges():
                await asyncio.sleep(0.05)
            await c.answer("energie", CODE)
            return await test

        result = daemon.call(test_and_answer)
        assert (result.outcome, result.message) == ("ok", "logged in")
        assert demo.logins == 1 and demo.downloads == 0
        # the session is kept: a second test needs no code
        again = daemon.call(lambda c: c.test_login("energie"))
        assert (again.outcome, again.message) == ("ok", "the saved session is still valid")
        assert demo.logins == 1 and demo.downloads == 0

    portal = _portal(daemon, "energie")
    assert portal.last_run is None and portal.state == "disabled"
    assert daemon.documents().total == 0
    events = daemon.call(lambda c: c.recent_events(50))
    types = [e.type for e in events]
    assert "challenge.pending" in types and "challenge.answered" in types
    finished = [e for e in events if e.type == "portal.finished"]
    assert finished and all(e.data["test"] is True for e in finished)
    # newest last: the second test's end is the last event
    assert types[-1] == "portal.finished" and events[-1].data["message"] == again.message
    assert CODE not in json.dumps([e.data for e in events])


def test_a_wrong_password_in_a_test_login_says_so(daemon):
    with running(DemoPortal(code=CODE), port=0) as demo:
        daemon.call(
            lambda c: c.add_portal(
                "energie", form=_form(demo.port), username="demo", password=PASSWORD, enabled=False
            )
        )
        result = daemon.call(lambda c: c.test_login("energie"))
    assert result.outcome == "wrong credentials"
    assert _portal(daemon, "energie").last_run is None


def test_a_login_is_tried_before_adding_and_nothing_is_kept(daemon):
    def attempt(password: str, name: str = "energie"):
        return lambda c: c.test_new_portal(
            name, form=_form(demo.port), username="demo", password=password
        )

    with running(DemoPortal(code=CODE), port=0) as demo:
        wrong = daemon.call(attempt(PASSWORD))
        assert (wrong.outcome, wrong.test) == ("wrong credentials", True)
        assert wrong.portal_message == "E-Mail-Adresse oder Passwort ist falsch."
        right = daemon.call(attempt("demo"))
        # the portal sends a code next: the test ends there, nobody is asked for it
        assert right.outcome == "asks for a code"
        assert "accepted the user name and password" in right.message
        assert daemon.call(lambda c: c.challenges()) == []
        assert demo.logins == 1 and demo.downloads == 0
        # what portal.add would refuse is refused before any request
        error = _refused(daemon, attempt(PASSWORD, name="main-portal"))
        assert "exists already" in str(error)

    assert _portal(daemon, "energie") is None
    assert not (daemon.dir / "portals.d").exists()
    assert not (daemon.state / "secrets").exists()
    assert not (daemon.state / "sessions" / "energie.cookies").exists()
    assert not (daemon.state / "trials" / "energie" / "sessions").exists()
    events = daemon.call(lambda c: c.recent_events(50))
    assert PASSWORD not in json.dumps([e.data for e in events])
    assert not [e for e in events if e.data.get("portal") == "energie"]


def test_connectors_and_form_descriptions(daemon):
    (daemon.dir / "forms").mkdir()
    mine = {"description": "My portal", "form": _form(9999)}
    (daemon.dir / "forms" / "my-portal.yaml").write_text(yaml.safe_dump(mine))
    found = daemon.call(lambda c: c.connectors())
    assert "form" in found.connectors
    forms = {f.name: f for f in found.forms}
    assert forms["demo-energie"].source == "gmid"
    assert forms["demo-energie"].company == "Demo Energie"
    assert forms["demo-energie"].form["login"]["form"] == "form#login"
    assert forms["my-portal"].source == "config"
    assert forms["my-portal"].description == "My portal"

    # a description by name: its form is copied into the new portal
    daemon.call(lambda c: c.add_portal("demo2", form="demo-energie", enabled=False))
    entry = yaml.safe_load((daemon.dir / "portals.d" / "demo2.yaml").read_text())["portals"][0]
    assert entry["form"] == forms["demo-energie"].form
    error = _refused(daemon, lambda c: c.add_portal("x", form="no-such-form"))
    assert "no form description named 'no-such-form'" in str(error)


def test_the_shipped_demo_description_is_a_valid_form(tmp_path):
    from gmid.config.load import load_config

    entry = {"name": "demo", "username": "demo", "password": {"env": "X"}, "form": _form()}
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {tmp_path}\n" + yaml.safe_dump({"portals": [entry]}))
    assert load_config(config).portals[0].options["documents"]["pages"] == ["/invoices"]
