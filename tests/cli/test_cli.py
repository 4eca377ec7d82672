"""The `gmid` command as a user types it, against a real daemon."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gmid.control.size import human_size
from tests.conftest import ROOT
from tests.support.mails import invoice_mail, make_pdf


def gmid(*args: str, timeout: float = 30, tz: str | None = None) -> subprocess.CompletedProcess:
    env = None if tz is None else {**os.environ, "TZ": tz}
    return subprocess.run(
        [sys.executable, "-m", "gmid", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def test_no_daemon_is_one_clear_line_and_exit_3(tmp_path):
    result = gmid("status", "--socket", str(tmp_path / "nothing.sock"))
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "no gmid daemon is listening on" in result.stderr
    assert "Traceback" not in result.stderr
    assert gmid("documents", "--socket", str(tmp_path / "x.sock")).returncode == 3


def test_check_config_lists_every_problem_with_file_and_line(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text(
        "timezone: Mars/Olympus\n"
        "archive:\n"
        "  dri: /tmp/x\n"
        "smtp:\n"
        "  listen: 127.0.0.1:99999\n"
        "  max_message_size: lots\n"
    )
    result = gmid("check-config", "-c", str(bad))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 4, result.stderr
    assert lines[0].startswith(f"{bad}:1: timezone:")
    assert any(line.startswith(f"{bad}:3: archive.dri:") for line in lines)
    assert any(line.startswith(f"{bad}:5: smtp.listen:") for line in lines)
    assert any(line.startswith(f"{bad}:6: smtp.max_message_size:") for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "line", "words", "shown", "caret"),
    [
        ("smtp:\n  enabled: true\n listen: x\n", 3, "indentation does not match", " listen: x", 1),
        ("smtp:\n\tlisten: x\n", 2, "YAML indents with spaces only", " listen: x", 0),
        ("smtp:\n  listen: '127.0.0.1:2525\n", 2, "quote is never closed", "  listen: '127", 10),
        ("smtp:\n  recipients: [a@b.example\nportals: []\n", 3, "[ ] opened at line 2", "po", 7),
        ("smtp:\n  listen: host: 25\n", 2, "quote a value that contains ': '", "  listen: h", 14),
    ],
)
def test_a_yaml_syntax_error_shows_the_line_and_a_caret(tmp_path, text, line, words, shown, caret):
    """The user sees their own line with a caret under the spot and words about what to
    change, not the parser's ("expected <block end>, but found '<block mapping start>'")."""
    bad = tmp_path / "config.yaml"
    bad.write_text(text)
    result = gmid("check-config", "-c", str(bad))
    assert result.returncode == 1
    first, source, marker, *_ = result.stderr.splitlines()
    assert first.startswith(f"{bad}:{line}: syntax error: ") and words in first, result.stderr
    assert "<block" not in first and "while scanning" not in first
    number, _, code = source.partition(" | ")
    assert number.strip() == str(line) and code.startswith(shown)
    assert marker.index("^") - marker.index("|") - 2 == caret


def test_a_syntax_error_never_shows_a_password_written_in_the_config(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("portals:\n  - name: shop\n    password: 'hunter2-secret\n")
    result = gmid("check-config", "-c", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3: syntax error: this quote is never closed" in result.stderr
    assert "password: ***" in result.stderr and "hunter2" not in result.stderr


def test_check_config_accepts_the_example():
    result = gmid("check-config", "-c", "config.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_status_and_documents(daemon):
    raw = invoice_mail(
        sender="rechnung@telekom.example",
        subject="Ihre Rechnung",
        pdfs=[("Rechnung.pdf", make_pdf("cli test"))],
    )
    assert daemon.send(raw)[0] == 250
    status = gmid("status", "-c", str(daemon.config))
    assert status.returncode == 0, status.stderr
    assert f"pid {daemon.proc.pid}" in status.stdout
    assert "(1 document)" in status.stdout
    assert "1 accepted" in status.stdout
    as_json = json.loads(gmid("status", "--json", "--socket", str(daemon.socket)).stdout)
    assert as_json["documents"] == 1 and as_json["smtp"]["accepted"] == 1

    listing = gmid("documents", "-c", str(daemon.config))
    assert listing.returncode == 0, listing.stderr
    assert "Telekom" in listing.stdout and "smtp" in listing.stdout
    docs = json.loads(gmid("documents", "--json", "-c", str(daemon.config)).stdout)
    assert len(docs) == 1
    assert f"  {human_size(docs[0]['size'])}  " in listing.stdout  # as the TUI says sizes
    assert docs[0]["original_name"] == "Rechnung.pdf"
    assert (daemon.archive / docs[0]["path"]).read_bytes() == make_pdf("cli test")
    none = gmid("documents", "--company", "Stadtwerke", "-c", str(daemon.config))
    assert none.returncode == 0 and "no documents" in none.stdout
    # a company as typed, in any case
    assert "Telekom" in gmid("documents", "--company", "telekom", "-c", str(daemon.config)).stdout
    # --since is a day in the config's time zone (Europe/Berlin), as the user reads dates.
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    since_today = gmid(
        "documents", "--json", "--since", today.isoformat(), "-c", str(daemon.config)
    )
    assert len(json.loads(since_today.stdout)) == 1
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = gmid("documents", "--since", tomorrow, "-c", str(daemon.config))
    assert "no documents" in later.stdout
    arrived = gmid("documents", "--received-since", today.isoformat(), "-c", str(daemon.config))
    assert "Telekom" in arrived.stdout


def test_times_are_shown_in_the_configs_zone_whatever_the_machine_says(daemon):
    """The config says Europe/Berlin; a machine (or a user's shell) in another zone reads the
    same times as the TUI shows them, and is told the zone once."""
    assert (
        daemon.send(invoice_mail(sender="a@b.example", pdfs=[("x.pdf", make_pdf("t"))]))[0] == 250
    )
    doc = json.loads(gmid("documents", "--json", "-c", str(daemon.config)).stdout)[0]
    received = datetime.fromisoformat(doc["received_at"])
    berlin = received.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M")
    elsewhere = received.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")
    for command in ("documents", "mailboxes", "portals"):
        shown = gmid(command, "-c", str(daemon.config), tz="America/New_York")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("Europe/Berlin") == 1 or "no " in shown.stdout, shown.stdout
    listing = gmid("documents", "-c", str(daemon.config), tz="America/New_York").stdout
    assert berlin in listing and elsewhere not in listing
    assert listing.rstrip().endswith("(times in Europe/Berlin)")


def test_documents_json_is_the_whole_archive_unless_a_limit_is_asked(daemon):
    """A script reading `gmid documents --json` gets every document, not the table's 50."""
    for i in range(53):
        raw = invoice_mail(sender="a@b.example", pdfs=[(f"{i}.pdf", make_pdf(f"doc {i}"))])
        assert daemon.send(raw)[0] == 250
    every = json.loads(gmid("documents", "--json", "-c", str(daemon.config)).stdout)
    assert len(every) == 53 and len({d["id"] for d in every}) == 53
    table = gmid("documents", "-c", str(daemon.config)).stdout
    assert "(1-50 of 53; --offset 50 for more)" in table
    some = json.loads(gmid("documents", "--json", "--limit", "5", "-c", str(daemon.config)).stdout)
    assert [d["id"] for d in some] == [d["id"] for d in every[:5]]


def test_a_config_broken_elsewhere_does_not_keep_the_cli_from_the_daemon(daemon, tmp_path):
    """The user is editing the config (a typo, not yet reloaded): the running daemon still
    answers `gmid status`; only a config whose socket cannot be read is refused, by its line."""
    edited = tmp_path / "config.yaml"
    edited.write_text(daemon.config.read_text() + "\nportal_typo: [\n")
    broken_yaml = gmid("status", "-c", str(edited))
    assert broken_yaml.returncode == 1 and "Traceback" not in broken_yaml.stderr
    assert f"{edited}:" in broken_yaml.stderr and "is not closed" in broken_yaml.stderr
    edited.write_text(daemon.config.read_text() + "\nportal_typo: 1\n")
    assert gmid("check-config", "-c", str(edited)).returncode == 1
    status = gmid("status", "-c", str(edited))
    assert status.returncode == 0, status.stderr
    assert f"pid {daemon.proc.pid}" in status.stdout


def test_sighup_reloads_and_a_broken_config_keeps_the_old_one(daemon):
    original = daemon.config.read_text()
    daemon.config.write_text(
        original + "  - name: Versicherung\n    senders: ['@versicherung.example']\n"
    )
    os.kill(daemon.proc.pid, signal.SIGHUP)
    _wait_for_log(daemon, "config reloaded")
    raw = invoice_mail(
        sender="post@versicherung.example",
        subject="Beitragsrechnung",
        pdfs=[("b.pdf", make_pdf("reload"))],
    )
    assert daemon.send(raw, sender="post@versicherung.example")[0] == 250
    assert daemon.documents().documents[0].company == "Versicherung"

    daemon.config.write_text(original + "bogus_option: 1\n")
    os.kill(daemon.proc.pid, signal.SIGHUP)
    _wait_for_log(daemon, "config reload refused")
    assert "bogus_option" in daemon.log_text()
    raw = invoice_mail(
        sender="post@versicherung.example",
        subject="Beitragsrechnung 2",
        pdfs=[("b.pdf", make_pdf("reload 2"))],
    )
    assert daemon.send(raw, sender="post@versicherung.example")[0] == 250
    assert daemon.documents().documents[0].company == "Versicherung"


def test_sigterm_stops_cleanly_and_removes_the_socket(daemon_dir):
    daemon_dir.start()
    assert daemon_dir.stop(signal.SIGTERM) == 0
    assert not daemon_dir.socket.exists()
    assert "stopping" in daemon_dir.log_text()
    # and it starts again on the same state
    daemon_dir.start()
    assert daemon_dir.stop(signal.SIGINT) == 0


def _wait_for_log(daemon, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in daemon.log_text():
        assert time.monotonic() < deadline, daemon.log_text()
        time.sleep(0.05)


SCHEDULED = """\
schedule:
  quiet: [sat-sun]
portals:
  - name: shop
    username: me
    password: {command: "echo x"}
    schedule: {at: ["mon 10:00", "sat 10:00"]}
    form:
      start: https://shop.example/login
      documents: {pages: [/invoices], rows: tr, download: a.pdf}
"""


def test_gmid_schedule_previews_runs_and_quiet_hours():
    from tests.conftest import make_daemon_dir

    d = make_daemon_dir(extra=SCHEDULED).start()
    try:
        shown = gmid("schedule", "--days", "14", "--socket", str(d.socket))
        assert shown.returncode == 0, shown.stderr
        assert "times in Europe/Berlin" in shown.stdout
        assert "-- quiet until Mon" in shown.stdout and "(sat-sun)" in shown.stdout
        plan = json.loads(
            gmid("schedule", "--days", "14", "--json", "--socket", str(d.socket)).stdout
        )
        runs = [
            datetime.fromisoformat(r["at"]).astimezone(ZoneInfo("Europe/Berlin"))
            for r in plan["runs"]
        ]
        # the saturday slot waits for the end of the quiet weekend: every run is on a monday
        assert len(runs) >= 2 and all(r.weekday() == 0 for r in runs)
        assert any(r.hour == 10 for r in runs) and any(r.hour == 0 for r in runs)
        [portal] = d.status().portals
        assert portal.next_run == plan["runs"][0]["at"] and portal.next_reason
        # `gmid portals` knows it too, as JSON and in its table (in the config's zone)
        [listed] = json.loads(gmid("portals", "--json", "--socket", str(d.socket)).stdout)
        assert listed["next_run"] == portal.next_run
        first = runs[0].strftime("%Y-%m-%d %H:%M")
        assert first in gmid("portals", "--socket", str(d.socket), tz="UTC").stdout
        # what the TUI's portal dialog shows of it
        assert portal.username == "me"
        assert portal.schedule["at"] == ["mon 10:00", "sat 10:00"]
        assert portal.schedule["quiet"] == ["sat-sun"]
        assert {c.name for c in d.status().companies} == {"Stadtwerke", "Telekom"}
        assert "x" not in portal.to_dict().values()  # the password never travels
        status = gmid("status", "--socket", str(d.socket)).stdout
        assert "portal      shop: never run" in status
    finally:
        assert d.stop() == 0


def test_sizes_read_the_same_everywhere():
    sizes = [812, 1_204, 48_213, 999_499, 999_500, 3_400_000, 12_000_000_000]
    assert [human_size(n) for n in sizes] == [
        "812 B",
        "1.2 kB",
        "48 kB",
        "999 kB",
        "1.0 MB",
        "3.4 MB",
        "12 GB",
    ]


def _commands(help_text: str) -> list[str]:
    """The command names a parser's --help lists under COMMAND or ACTION."""
    return re.findall(r"^    ([a-z][a-z-]*)\b", help_text, re.M)


def test_every_command_says_what_it_does_with_an_example(capsys):
    from gmid.cli.main import build_parser

    def help_of(*words: str) -> str:
        with pytest.raises(SystemExit):
            build_parser().parse_args([*words, "--help"])
        return capsys.readouterr().out

    names = _commands(help_of())
    assert {"daemon", "status", "documents", "code", "session", "verify"} <= set(names)
    commands = [(name,) for name in names if name != "session"]
    commands += [("session", verb) for verb in _commands(help_of("session"))]
    assert ("session", "import") in commands
    for words in commands:
        text = help_of(*words)
        usage, description, *_ = text.split("\n\n")
        assert description.strip() and not description.startswith("positional"), words
        assert f"example:\n  gmid {' '.join(words)}" in text, words
        # --socket only where a command talks to the running daemon
        talks = words[0] not in ("daemon", "check-config", "verify", "demo-portal", "reindex")
        assert ("--socket" in usage) == talks, words
