"""The config's `portals:`, `runs:` and `notify:` sections, with file and line in every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmid.config.load import load_config
from gmid.errors import ConfigError

PORTAL = """\
portals:
  - name: stadtwerke
    company: Stadtwerke
    username: me@example.org
    password: {env: SW_PASSWORD}
    totp_secret: {env: SW_TOTP}
    form:
      start: https://portal.stadtwerke.example/login
      documents:
        pages: [/invoices]
        rows: "table tr"
        download: {selector: "a.pdf"}
"""


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"state_dir: {tmp_path}/state\n" + text if name == "config.yaml" else text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_a_form_portal_is_read(tmp_path):
    config = load_config(_write(tmp_path, PORTAL))
    [portal] = config.portals
    assert portal.name == "stadtwerke" and portal.company == "Stadtwerke"
    assert portal.connector == "form" and portal.enabled
    assert portal.options["start"] == "https://portal.stadtwerke.example/login"
    assert portal.password.kind == "env" and portal.totp_secret.value == "SW_TOTP"
    assert portal.line == 3 and not config.warnings
    assert config.runs.concurrency == 4 and config.runs.code_timeout == 600
    assert config.runs.max_page == 10 * 10**6


def test_runs_and_notify(tmp_path):
    config = load_config(
        _write(
            tmp_path,
            "runs:\n  concurrency: 2\n  request_timeout: 10s\n  max_download: 5MB\n"
            "  max_page: 2MB\n"
            '  code_timeout: 2m\nnotify:\n  command: notify-send gmid "$GMID_PROMPT"\n',
        )
    )
    assert config.runs.concurrency == 2 and config.runs.request_timeout == 10
    assert config.runs.max_download == 5_000_000 and config.runs.code_timeout == 120
    assert config.runs.max_page == 2_000_000
    assert config.notify.command.startswith("notify-send")


def test_portal_problems_name_file_line_and_option(tmp_path):
    path = _write(
        tmp_path,
        "portals:\n"
        "  - name: a b\n"  # 3: bad name
        "    connector: nosuch\n"  # 4: unknown connector
        "  - company: X\n"  # 5: no name
        "    form: {start: x}\n"
        "  - name: ok\n"  # 7: only a password
        "    password: {env: X}\n"
        "    form:\n"
        "      start: https://x.example/\n"
        "      bogus: 1\n"  # 11: the connector's own verdict
        "runs:\n  concurrency: 0\n",  # 13
    )
    problems = _problems(path)
    assert any(p.startswith(f"{path}:3: portals[0].name:") for p in problems), problems
    assert any(p.startswith(f"{path}:4: portals[0].connector:") for p in problems), problems
    assert any(p.startswith(f"{path}:5: portals[1].name:") for p in problems), problems
    assert any(p.startswith(f"{path}:7: portals[2].username:") for p in problems), problems
    assert any(p.startswith(f"{path}:11: portals[2].form.bogus:") for p in problems), problems
    assert any(p.startswith(f"{path}:13: runs.concurrency:") for p in problems), problems


def test_portals_in_included_files_and_duplicates(tmp_path):
    main = _write(tmp_path, PORTAL + "include: portals.d/*.yaml\n")
    extra = _write(tmp_path, PORTAL.replace("stadtwerke\n", "Stadtwerke\n", 1), "portals.d/a.yaml")
    problems = _problems(main)
    assert problems == [f"{extra}:2: portals: portal 'Stadtwerke' is already defined at {main}:3"]
    extra.write_text(PORTAL.replace("name: stadtwerke", "name: telekom"))
    config = load_config(main)
    assert [p.name for p in config.portals] == ["stadtwerke", "telekom"]
    assert config.portals[1].file == str(extra)


def test_schedule_problems_name_file_line_and_option(tmp_path):
    path = _write(
        tmp_path,
        "schedule:\n"  # 2
        "  at: ['25:00']\n"  # 3
        "  windows: ['mon-fry 08:00-19:00']\n"  # 4
        "  quiet: ['2026-02-30']\n"  # 5
        "  jitter: soon\n"  # 6
        + PORTAL.replace("    form:", "    schedule: {every: 7d, at: ['mon 10:00']}\n    form:"),
    )
    problems = _problems(path)
    assert any(p.startswith(f"{path}:3: schedule.at[0]: 25:00") for p in problems), problems
    assert any(p.startswith(f"{path}:4: schedule.windows[0]:") and "fry" in p for p in problems)
    assert any(p.startswith(f"{path}:5: schedule.quiet[0]:") for p in problems), problems
    assert any(p.startswith(f"{path}:6: schedule.jitter:") for p in problems), problems
    assert any("portals[0].schedule.at: give either `every` or `at`" in p for p in problems)


def test_a_window_that_quiet_hours_empty_every_week_is_refused(tmp_path):
    path = _write(tmp_path, "schedule:\n  windows: ['sat 08:00-12:00']\n  quiet: [sat-sun]\n")
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:3: schedule: ")


def test_a_portal_schedule_overrides_the_global_one(tmp_path):
    text = "schedule:\n  windows: ['mon-fri 08:00-19:00']\n  jitter: 10m\n" + PORTAL.replace(
        "    form:", "    schedule: {at: ['thu 10:00'], jitter: 0s}\n    form:"
    )
    config = load_config(_write(tmp_path, text))
    rules = config.portals[0].rules
    assert rules.every is None and [s.text for s in rules.at] == ["thu 10:00"]
    assert rules.windows == config.schedule.windows and rules.jitter.total_seconds() == 0
    assert config.schedule.every.days == 7 and config.schedule.jitter.total_seconds() == 600


def test_a_yaml_alias_bomb_is_not_printed_whole(tmp_path):
    # 9^6 strings through aliases: a few lines of YAML, megabytes once written out.
    lines = ["  b0: &b0 [" + ", ".join(["xxxxxxxxxxxx"] * 9) + "]"]
    lines += [f"  b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, 7)]
    bombs = "\n".join(f"    {line}" for line in lines)
    text = PORTAL.replace("    form:\n", "    form:\n      code:\n        attempts: *b6\n")
    text = text.replace("portals:\n", f"x-bombs: &bombs\n  x:\n{bombs}\nportals:\n")
    found = _problems(_write(tmp_path, text))
    assert any("code.attempts: expected a whole number from 1 to 10, got [[" in p for p in found)
    assert all(len(p) < 400 for p in found), [p[:400] for p in found]
