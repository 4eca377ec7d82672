"""The `mailboxes:` section: what a user writes, and the errors they get for mistakes."""

from __future__ import annotations

import datetime
from pathlib import Path

from gmid.config.imap import Action
from tests.config.test_config import load, problems, write

BASE = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
"""


def config_text(tmp_path: Path, mailboxes: str) -> str:
    return BASE.format(tmp=tmp_path) + mailboxes


def test_the_issue_example_reads_as_written(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        config_text(
            tmp_path,
            """\
mailboxes:
  - name: work
    host: imap.example.org
    port: 993
    security: tls
    username: me@example.org
    password: {command: "pass show mail/work"}
    folders: [INBOX, Rechnungen]
    since: 2026-01-01
    poll: 5m
    rules:
      - from: ["@telekom.example", billing@*]
        subject: ["Rechnung", "Invoice"]
        attachment: ["*.pdf"]
        company: Telekom
        then: seen
      - from: rechnung@stadtwerke.example
        then: {move: Archiv/Rechnungen}
""",
        ),
    )
    (box,) = config.mailboxes
    assert (box.name, box.host, box.port, box.security) == ("work", "imap.example.org", 993, "tls")
    assert box.username == "me@example.org"
    assert str(box.password) == "command `pass show mail/work`"
    assert box.folders == ("INBOX", "Rechnungen")
    assert box.since == datetime.date(2026, 1, 1)
    assert box.poll == datetime.timedelta(minutes=5)
    first, second = box.rules
    assert first.senders == ("@telekom.example", "billing@*")
    assert first.subjects == ("rechnung", "invoice")
    assert first.attachments == ("*.pdf",)
    assert (first.company, first.then) == ("Telekom", Action("seen"))
    assert second.then == Action("move", "Archiv/Rechnungen")
    assert second.sender_matches(["Rechnung@Stadtwerke.example"])
    assert first.sender_matches(["billing@anything.example"])
    assert first.sender_matches(["x@mail.telekom.example"])
    assert not first.sender_matches(["x@nottelekom.example"])
    assert first.subject_matches("Ihre RECHNUNG für März")
    assert first.attachment_wanted("R-2026.PDF") and not first.attachment_wanted("logo.png")


def test_defaults_for_a_short_entry(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        config_text(
            tmp_path,
            """\
mailboxes:
  - name: home
    host: 127.0.0.1
    security: plain
    username: me
    password: {env: IMAP_PW}
""",
        ),
    )
    (box,) = config.mailboxes
    assert (box.port, box.folders, box.rules, box.since) == (143, ("INBOX",), (), None)
    assert box.enabled


def test_mistakes_are_reported_with_file_line_and_option(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        config_text(
            tmp_path,
            """\
mailboxes:
  - name: work
    host: imap.example.org
    security: plain
    username: me
    password: {env: IMAP_PW}
    since: last year
    poll: 1s
    folders: [INBOX, Rechnungen, Rechnungen]
    rules:
      - from: [not-an-address]
        subject: Rechnung
        then: archive
      - then: {move: INBOX}
      - then: move
      - attachemnt: "*.pdf"
  - name: work
    host: other.example.org
    username: me
    password: {env: X}
  - host: x.example
    secrity: tls
""",
        ),
    )
    found = problems(path)
    by_option = {(line, option): message for _, line, option, message in found}
    assert "unencrypted" in by_option[(7, "mailboxes[0].security")]
    assert "YYYY-MM-DD" in by_option[(10, "mailboxes[0].since")]
    assert by_option[(11, "mailboxes[0].poll")] == "at least 10s"
    assert "listed twice" in by_option[(12, "mailboxes[0].folders[2]")]
    assert "not an address" in by_option[(14, "mailboxes[0].rules[0].from[0]")]
    assert "'archive' is not one of" in by_option[(16, "mailboxes[0].rules[0].then")]
    assert "would come back" in by_option[(17, "mailboxes[0].rules[1].then.move")]
    assert "say where to" in by_option[(18, "mailboxes[0].rules[2].then")]
    assert "did you mean 'attachment'" in by_option[(19, "mailboxes[0].rules[3].attachemnt")]
    assert "duplicate mailbox 'work'" in by_option[(20, "mailboxes[1].name")]
    assert "did you mean 'security'" in by_option[(25, "mailboxes[2].secrity")]
    assert "needs a name" in by_option[(24, "mailboxes[2].name")]


def test_plain_to_a_remote_host_is_allowed_when_the_user_says_so(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        config_text(
            tmp_path,
            """\
mailboxes:
  - name: lan
    host: 192.168.1.5
    security: plain
    allow_insecure: true
    username: me
    password: {file: pw.txt}
    folders: Rechnungen
""",
        ),
    )
    assert config.mailboxes[0].folders == ("Rechnungen",)
    assert config.mailboxes[0].allow_insecure


def test_the_commented_example_in_config_example_yaml_loads(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("mailboxes: []") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("#  "):
            break
        block.append(line[1:])
    config = load(tmp_path, config_text(tmp_path, "mailboxes:\n" + "\n".join(block) + "\n"))
    (box,) = config.mailboxes
    assert box.rules[0].exclude_attachments == ("*agb*",)
    assert box.rules[1].then == Action("move", "Archiv/Rechnungen")


# a short mailbox entry and one option: entry.format(name="a", option="idle_check: 2m")
ENTRY = """\
  - name: {name}
    host: 127.0.0.1
    security: plain
    username: me
    password: {{env: IMAP_PW}}
    {option}
"""


def test_idle_check_is_read_and_kept_within_what_servers_allow(tmp_path: Path) -> None:
    def entry(name: str, value: str) -> str:
        return ENTRY.format(name=name, option=f"idle_check: {value}")

    good = config_text(tmp_path, "mailboxes:\n" + entry("a", "2m"))
    (box,) = load(tmp_path, good).mailboxes
    assert box.idle_check == datetime.timedelta(minutes=2)
    (box,) = load(tmp_path, config_text(tmp_path, "mailboxes:\n" + entry("a", "null"))).mailboxes
    assert box.idle_check == datetime.timedelta(minutes=5)
    bad = "mailboxes:\n" + entry("a", "0s") + entry("b", "1h")
    path = write(tmp_path / "config.yaml", config_text(tmp_path, bad))
    by_option = {option: message for _, _, option, message in problems(path)}
    assert by_option["mailboxes[0].idle_check"] == "at least 1s"
    assert by_option["mailboxes[1].idle_check"].startswith("at most 28m")


def test_expunge_is_off_unless_asked_for_and_must_be_true_or_false(tmp_path: Path) -> None:
    text = (
        "mailboxes:\n"
        + ENTRY.format(name="a", option="")
        + ENTRY.format(name="b", option="expunge: true")
    )
    off, on = load(tmp_path, config_text(tmp_path, text)).mailboxes
    assert (off.expunge, on.expunge) == (False, True)
    bad = "mailboxes:\n" + ENTRY.format(name="a", option="expunge: sometimes")
    path = write(tmp_path / "config.yaml", config_text(tmp_path, bad))
    ((_, line, option, message),) = problems(path)
    assert (line, option) == (10, "mailboxes[0].expunge")
    assert "sometimes" in message
