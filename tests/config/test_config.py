"""The YAML config: defaults, every problem reported at once with file:line:option, includes."""

from __future__ import annotations

import datetime
import email.policy
import os
import shutil
import textwrap
import zoneinfo
from email.message import EmailMessage
from pathlib import Path

import pytest

from gmid.config.load import (
    DEFAULT_NAME_TEMPLATE,
    Config,
    default_config_path,
    default_socket_path,
    default_state_dir,
    load_config,
    parse_duration,
    parse_size,
)
from gmid.errors import ConfigError
from tests.conftest import ROOT

ENV = (
    "TZ",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "CONFIGURATION_DIRECTORY",
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Give each test its own home and no XDG or systemd variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return home


def write(path: Path, text: str) -> Path:
    """Write a dedented config file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[tuple[str, int | None, str, str]]:
    """Load a config that must fail; return its problems as (file name, line, option, message)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [(Path(p.file).name, p.line, p.option, p.message) for p in info.value.problems]


def load(tmp_path: Path, text: str) -> Config:
    """Load a config written from `text`."""
    return load_config(write(tmp_path / "config.yaml", text))


# --- the example --------------------------------------------------------------------------------


def test_example_config_loads_cleanly(clean_env: Path) -> None:
    config = load_config(ROOT / "config.example.yaml")
    assert config.warnings == ()
    assert config.timezone == "Europe/Berlin"
    assert config.state_dir == clean_env / ".local/state/gmid"
    assert config.archive.dir == clean_env / "Invoices"
    assert config.archive.name == DEFAULT_NAME_TEMPLATE
    assert (config.smtp.enabled, config.smtp.host, config.smtp.port) == (True, "127.0.0.1", 2525)
    assert config.smtp.recipients == ("invoices@gmid.local",)
    assert config.include == "portals.d/*.yaml"
    assert config.companies[0].name == "Stadtwerke"
    assert "@stadtwerke.example" in config.companies[0].senders
    assert len(config.companies) >= 2
    # Not set in the example, because $XDG_RUNTIME_DIR is not set everywhere.
    assert config.control.socket == default_socket_path()


def test_example_documents_every_option() -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    options = [
        "timezone", "state_dir", "archive", "dir", "name", "control", "socket", "smtp", "enabled",
        "listen", "allow_remote", "clients", "tls", "cert", "key", "auth", "username",
        "password", "max_message_size", "recipients", "ingest", "types",
        "keep_mail_without_documents", "companies", "senders", "include", "captcha_solver",
    ]  # fmt: skip
    assert [option for option in options if f"{option}:" not in text] == []


def test_example_reads_companies_from_portals_d(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "config.yaml")
    write(
        tmp_path / "portals.d/telekom.yaml",
        """\
        companies:
          - name: Telekom
            senders: [rechnung@telekom.example]
        """,
    )
    config = load_config(tmp_path / "config.yaml")
    assert config.companies[-1].name == "Telekom"
    assert config.companies[-1].file == str(tmp_path / "portals.d/telekom.yaml")
    assert config.included_files == (tmp_path / "portals.d/telekom.yaml",)


# --- defaults -----------------------------------------------------------------------------------


def test_empty_file_is_a_config_with_all_defaults(
    tmp_path: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    config = load(tmp_path, "")
    assert config.path == tmp_path / "config.yaml"
    assert config.timezone == "Asia/Tokyo"
    assert config.tz == zoneinfo.ZoneInfo("Asia/Tokyo")
    assert config.state_dir == clean_env / ".local/state/gmid"
    assert config.archive.dir == clean_env / "Invoices"
    assert config.archive.name == DEFAULT_NAME_TEMPLATE
    assert config.control.socket == tmp_path / "run/gmid/gmid.sock"
    smtp = config.smtp
    assert (smtp.enabled, smtp.host, smtp.port) == (True, "127.0.0.1", 2525)
    assert smtp.max_message_size == 40_000_000
    assert smtp.recipients == ("invoices@gmid.local",)
    assert (smtp.allow_remote, smtp.tls, smtp.auth) == (False, None, None)
    assert [str(net) for net in smtp.clients] == ["127.0.0.0/8", "::1/128"]
    assert config.ingest.types == ("pdf", "xml")
    assert config.ingest.keep_mail_without_documents is True
    assert config.companies == ()
    assert (config.include, config.included_files, config.warnings) == (None, (), ())


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "smtp:\narchive:\ncompanies:\n")
    assert config.smtp.port == 2525
    assert config.companies == ()


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        (":Europe/Paris", "Europe/Paris"),
        ("/usr/share/zoneinfo/America/New_York", "America/New_York"),
    ],
)
def test_default_timezone_comes_from_tz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tz: str, expected: str
) -> None:
    monkeypatch.setenv("TZ", tz)
    assert load(tmp_path, "").timezone == expected


def test_unusable_tz_falls_back_to_a_valid_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "CET-1CEST")  # POSIX rule, not an IANA name
    zoneinfo.ZoneInfo(load(tmp_path, "").timezone)


def test_xdg_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert default_config_path() == tmp_path / "cfg/gmid/config.yaml"
    assert default_state_dir() == tmp_path / "state/gmid"
    assert default_socket_path() == tmp_path / "run/gmid/gmid.sock"


def test_systemd_directories_win_over_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", "/etc/gmid")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/gmid:/var/lib/other")
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/gmid")
    assert default_config_path() == Path("/etc/gmid/config.yaml")
    assert default_state_dir() == Path("/var/lib/gmid")
    assert default_socket_path() == Path("/run/gmid/gmid.sock")
    config = load(tmp_path, "")
    assert config.state_dir == Path("/var/lib/gmid")
    assert config.control.socket == Path("/run/gmid/gmid.sock")


def test_home_defaults_without_any_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec says: ignore
    assert default_config_path() == clean_env / ".config/gmid/config.yaml"
    assert default_state_dir() == clean_env / ".local/state/gmid"
    assert default_socket_path() == Path(f"/tmp/gmid-{os.getuid()}/gmid.sock")


def test_archive_goes_under_state_dir_without_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOME")
    config = load(tmp_path, f"state_dir: {tmp_path}/state\n")
    assert config.archive.dir == tmp_path / "state/archive"


# --- every problem at once ----------------------------------------------------------------------


def test_four_mistakes_give_four_problems_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
        timezone: Europe/Berlin
        smtp:
          enabled: maybe
          listen: 127.0.0.1:99999
          recipients: [invoices@gmid.local]
        ingest:
          types: [pdf, xml]
          keep_mail_without_documents: true
        companies:
          - name: Stadtwerke
            senders: [rechnung.stadtwerke.example]
        archive:
          dir: ~/Invoices
          name: "{company}/{year}{ext}"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [(p.line, p.option) for p in info.value.problems]
    assert found == [
        (3, "smtp.enabled"),
        (4, "smtp.listen"),
        (11, "companies[0].senders[0]"),
        (14, "archive.name"),
    ]
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}:3: smtp.enabled: expected true or false, got text 'maybe'"
    assert lines[1].startswith(f"{path}:4: smtp.listen: port 99999 is out of range")
    assert "'rechnung.stadtwerke.example' is not an e-mail address" in lines[2]
    assert "unknown placeholder {year}" in lines[3]


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems(write(tmp_path / "config.yaml", "smtp:\n  enabled: true\n listen: x\n"))
    assert len(found) == 1
    name, line, _, message = found[0]
    assert (name, line) == ("config.yaml", 3)
    assert message.startswith("syntax error: ")


def test_unknown_options_get_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
        archiv:
          dir: x
        smtp:
          recipents: [a@b.example]
        webhooks:
          - name: work
        """,
    )
    found = problems(path)
    assert found[:2] == [
        ("config.yaml", 1, "archiv", "unknown option; did you mean 'archive'?"),
        ("config.yaml", 4, "smtp.recipents", "unknown option; did you mean 'recipients'?"),
    ]
    # Options of later versions are unknown like any other, with the list of known ones.
    assert found[2][:3] == ("config.yaml", 5, "webhooks")
    assert found[2][3].startswith("unknown option (expected one of: archive, captcha_solver, ")
    assert len(found) == 3


def test_wrong_types_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
        archive: [~/Invoices]
        smtp:
          recipients: invoices@gmid.local
          max_message_size: [1]
        ingest:
          keep_mail_without_documents: "yes"
        companies:
          name: A
        """,
    )
    assert [(line, option, message) for _, line, option, message in problems(path)] == [
        (1, "archive", "expected a mapping of options, got a list"),
        (3, "smtp.recipients", "expected a list, got text 'invoices@gmid.local'"),
        (4, "smtp.max_message_size", "expected a single value, got a list"),
        (6, "ingest.keep_mail_without_documents", "expected true or false, got text 'yes'"),
        (8, "companies", "expected a list, got a mapping"),
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(write(tmp_path / "config.yaml", "- a\n- b\n")) == [
        ("config.yaml", 1, "", "expected a mapping of options, got a list")
    ]


def test_option_set_twice(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "smtp:\n  enabled: true\n  enabled: false\n")
    assert problems(path) == [("config.yaml", 3, "smtp.enabled", "set twice (first at line 2)")]


# --- companies and includes ---------------------------------------------------------------------


def test_companies_senders_and_recipients_are_lower_cased(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        smtp:
          recipients: [Invoices@GMID.local, bills@example.org]
        companies:
          - name: Stadtwerke
            senders: [Rechnung@Stadtwerke.Example, "@STADTWERKE.example"]
        """,
    )
    assert config.smtp.recipients == ("invoices@gmid.local", "bills@example.org")
    company = config.companies[0]
    assert company.senders == ("rechnung@stadtwerke.example", "@stadtwerke.example")
    assert (company.file, company.line) == (str(tmp_path / "config.yaml"), 4)


def test_recipients_reject_domains_and_empty_lists(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "smtp:\n  recipients: ['@gmid.local']\n")
    assert problems(path)[0][2:] == (
        "smtp.recipients[0]",
        "'@gmid.local' is not an e-mail address (user@domain)",
    )
    path = write(tmp_path / "config.yaml", "smtp:\n  recipients: []\n")
    assert problems(path) == [("config.yaml", 2, "smtp.recipients", "needs at least one address")]


def test_duplicate_company_names_name_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
        companies:
          - name: Stadtwerke
            senders: ["@stadtwerke.example"]
          - name: stadtwerke
          - name: Telekom
            senders: ["@stadtwerke.example"]
        """,
    )
    assert problems(path) == [
        (
            "config.yaml",
            4,
            "companies[1].name",
            f"duplicate company name 'stadtwerke'; first defined at {path}:2 as 'Stadtwerke'",
        ),
        (
            "config.yaml",
            5,
            "companies[2].senders[0]",
            f"'@stadtwerke.example' already belongs to 'Stadtwerke' ({path}:2)",
        ),
    ]


def test_company_needs_a_name(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "companies:\n  - senders: ['@a.example']\n")
    assert problems(path) == [("config.yaml", 2, "companies[0].name", "every company needs a name")]


def test_included_files_are_added_in_sorted_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")  # the glob is relative to the config's folder, not the cwd
    write(tmp_path / "portals.d/20-b.yaml", "companies:\n  - name: B\n")
    write(tmp_path / "portals.d/10-a.yaml", "# nothing yet\n")
    write(tmp_path / "portals.d/15-c.yaml", "companies:\n  - name: C\n  - name: D\n")
    write(tmp_path / "portals.d/notes.txt", "companies: oops\n")
    config = load(tmp_path, "companies:\n  - name: Main\ninclude: portals.d/*.yaml\n")
    assert [c.name for c in config.companies] == ["Main", "C", "D", "B"]
    assert [(Path(c.file).name, c.line) for c in config.companies[1:]] == [
        ("15-c.yaml", 2),
        ("15-c.yaml", 3),
        ("20-b.yaml", 2),
    ]
    assert config.included_files == tuple(
        tmp_path / "portals.d" / name for name in ("10-a.yaml", "15-c.yaml", "20-b.yaml")
    )


def test_include_without_match_is_fine(tmp_path: Path) -> None:
    config = load(tmp_path, "include: portals.d/*.yaml\n")
    assert (config.include, config.included_files) == ("portals.d/*.yaml", ())


def test_problems_in_included_files_name_that_file(tmp_path: Path) -> None:
    write(
        tmp_path / "portals.d/shop.yaml",
        """\
        companies:
          - name: Shop
            senders: [nope]
        smtp:
          enabled: false
        compnies: []
        """,
    )
    write(tmp_path / "portals.d/zz-broken.yaml", "companies: [\n")
    path = write(
        tmp_path / "config.yaml",
        "timezone: Mars/Olympus\ncompanies:\n  - name: shop\ninclude: portals.d/*.yaml\n",
    )
    found = problems(path)
    assert [(name, line, option) for name, line, option, _ in found] == [
        ("config.yaml", 1, "timezone"),
        ("shop.yaml", 2, "companies[0].name"),
        ("shop.yaml", 3, "companies[0].senders[0]"),
        ("shop.yaml", 4, "smtp"),
        ("shop.yaml", 6, "compnies"),
        ("zz-broken.yaml", 2, ""),
    ]
    assert found[1][3] == f"duplicate company name 'Shop'; first defined at {path}:3 as 'shop'"
    assert found[3][3].startswith(f"can only be set in the main config file {path}")
    assert found[4][3] == "unknown option; did you mean 'companies'?"
    assert found[5][3].startswith("syntax error: ")


def test_merge_keys_let_entries_share_settings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        companies:
          - &base {name: A, senders: ["@a.example"]}
          - <<: *base
            name: B
            senders: ["@b.example"]
        """,
    )
    assert [(c.name, c.senders) for c in config.companies] == [
        ("A", ("@a.example",)),
        ("B", ("@b.example",)),
    ]


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime.timedelta(days=7)),
        ("90m", datetime.timedelta(minutes=90)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        ("1h 30m", datetime.timedelta(hours=1, minutes=30)),
        ("45s", datetime.timedelta(seconds=45)),
        ("2w", datetime.timedelta(weeks=2)),
        ("1W2D", datetime.timedelta(days=9)),
    ],
)
def test_parse_duration(text: str, expected: datetime.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "1h1h", "1.5h", "-1d", "7d and", 7])
def test_parse_duration_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*e\.g\. 7d, 1h30m or 45s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25MB", 25_000_000),
        ("25MiB", 25 * 2**20),
        ("512KB", 512_000),
        ("512kib", 512 * 1024),
        ("1GB", 10**9),
        ("1GiB", 2**30),
        ("1.5 MB", 1_500_000),
        ("100B", 100),
        ("4096", 4096),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "25XB", "MB", "-1MB", "25 M B", -1, True])
def test_parse_size_rejects_with_a_clear_message(text: str | int) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_sizes_in_the_config(tmp_path: Path) -> None:
    assert load(tmp_path, "smtp: {max_message_size: 1GiB}").smtp.max_message_size == 2**30
    assert load(tmp_path, "smtp: {max_message_size: 1000}").smtp.max_message_size == 1000
    path = write(tmp_path / "config.yaml", "smtp:\n  max_message_size: 0\n")
    assert problems(path) == [("config.yaml", 2, "smtp.max_message_size", "must be more than 0")]


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("[::1]:2525", "::1", 2525),
        ("localhost:0", "localhost", 0),
        ("127.0.0.2:25", "127.0.0.2", 25),
    ],
)
def test_listen_addresses(tmp_path: Path, listen: str, host: str, port: int) -> None:
    config = load(tmp_path, f"smtp:\n  listen: '{listen}'\n")
    assert (config.smtp.host, config.smtp.port, config.warnings) == (host, port, ())


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("2525", "expected HOST:PORT"),
        ("::1:2525", "write IPv6 addresses in brackets"),
        ("[127.0.0.1]:25", "only IPv6 addresses go in brackets"),
        ("bad_host!:25", "is not an IP address or host name"),
        (":2525", "is not an IP address or host name"),
        ("127.0.0.1:65536", "out of range"),
    ],
)
def test_bad_listen_addresses(tmp_path: Path, listen: str, message: str) -> None:
    found = problems(write(tmp_path / "config.yaml", f"smtp:\n  listen: '{listen}'\n"))
    assert [(line, option) for _, line, option, _ in found] == [(2, "smtp.listen")]
    assert message in found[0][3]


def test_timezone_is_validated_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "timezone: Europe/Berlim\n")
    assert problems(path) == [
        (
            "config.yaml",
            1,
            "timezone",
            "unknown time zone 'Europe/Berlim'; did you mean 'Europe/Berlin'?",
        )
    ]


def test_ingest_types(tmp_path: Path) -> None:
    config = load(
        tmp_path, "ingest:\n  types: [PDF, image, pdf]\n  keep_mail_without_documents: no\n"
    )
    assert config.ingest.types == ("pdf", "image")
    assert config.ingest.keep_mail_without_documents is False
    path = write(tmp_path / "config.yaml", "ingest:\n  types: [pdf, xlm]\n")
    assert problems(path) == [
        (
            "config.yaml",
            2,
            "ingest.types[1]",
            "unknown type 'xlm'; did you mean 'xml'? (known: pdf, xml, image)",
        )
    ]


# --- the SMTP listener for other machines -------------------------------------------------------


def test_listening_beyond_loopback_needs_allow_remote(tmp_path: Path) -> None:
    found = problems(write(tmp_path / "config.yaml", "smtp:\n  listen: 0.0.0.0:2525\n"))
    assert found == [
        (
            "config.yaml",
            2,
            "smtp.listen",
            "0.0.0.0 is not a loopback address: other machines could send to the listener. "
            "If that is what you want, set allow_remote: true and say who may deliver: "
            "clients: (networks that may send without a password) and/or auth: with tls: "
            "(a user name and password, over STARTTLS only); else listen on 127.0.0.1",
        )
    ]
    found = problems(write(tmp_path / "config.yaml", "smtp:\n  listen: gmid.lan:2525\n"))
    assert [(line, option) for _, line, option, _ in found] == [(2, "smtp.listen")]


@pytest.mark.parametrize(
    ("extra", "which"),
    [
        ("", "is not set (this machine only)"),
        ("  clients: [127.0.0.1, '::1']\n", "lists only this machine"),
        ("  clients: []\n", "is empty"),
    ],
)
def test_allow_remote_needs_clients_or_auth(tmp_path: Path, extra: str, which: str) -> None:
    text = "smtp:\n  listen: '[::]:2525'\n  allow_remote: true\n" + extra
    assert problems(write(tmp_path / "config.yaml", text)) == [
        (
            "config.yaml",
            3,
            "smtp.allow_remote",
            f"no other machine could deliver: clients: {which} and auth: is not set; add the "
            "networks that may send (e.g. clients: [192.168.1.0/24]) and/or a user name and "
            "password (auth: with tls:)",
        )
    ]


def test_remote_clients_by_network(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        smtp:
          listen: 0.0.0.0:2525
          allow_remote: true
          clients: [192.168.1.0/24, 10.0.0.7, "2001:db8::/32", 192.168.1.0/24]
        """,
    )
    assert config.smtp.allow_remote is True
    assert [str(net) for net in config.smtp.clients] == [
        "192.168.1.0/24",
        "10.0.0.7/32",
        "2001:db8::/32",
    ]
    assert config.warnings == ()


def test_bad_client_networks(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
        smtp:
          clients:
            - 192.168.1.5/24
            - scanner.lan
            -
            - 0.0.0.0/0
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.line, p.option, p.message) for p in info.value.problems] == [
        (3, "smtp.clients[0]", "192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?"),
        (
            4,
            "smtp.clients[1]",
            "'scanner.lan' is not an IP address or network (such as 192.168.1.0/24, "
            "192.168.1.20 or 2001:db8::/32); host names are not allowed",
        ),
        (5, "smtp.clients[2]", "empty entry"),
    ]


def test_a_client_network_of_everyone_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "smtp:\n  clients: ['0.0.0.0/0']\n")
    assert config.warnings == (
        f"{tmp_path / 'config.yaml'}:2: smtp.clients[0]: 0.0.0.0/0 is every IPv4 address: any "
        "machine that can reach the listener may deliver without a password",
    )


def test_no_client_at_all_is_a_problem(tmp_path: Path) -> None:
    assert problems(write(tmp_path / "config.yaml", "smtp:\n  clients: []\n")) == [
        (
            "config.yaml",
            2,
            "smtp.clients",
            "empty and auth: is not set: no client could deliver mail; "
            "leave clients: out to let this machine deliver",
        )
    ]


def test_tls_and_auth(tmp_path: Path) -> None:
    key = write(tmp_path / "smtp.key", "not really a key")
    key.chmod(0o600)
    config = load(
        tmp_path,
        """\
        smtp:
          listen: 0.0.0.0:2525
          allow_remote: true
          tls: {cert: smtp.pem, key: smtp.key}
          auth:
            username: scanner
            password: {env: GMID_SMTP_PASSWORD}
        """,
    )
    smtp = config.smtp
    assert smtp.tls is not None and smtp.auth is not None
    assert (smtp.tls.cert, smtp.tls.key) == (tmp_path / "smtp.pem", key)
    assert smtp.auth.username == "scanner"
    assert (smtp.auth.password.kind, smtp.auth.password.value) == ("env", "GMID_SMTP_PASSWORD")
    assert [str(net) for net in smtp.clients] == ["127.0.0.0/8", "::1/128"]
    assert config.warnings == ()


def test_auth_needs_tls(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        "smtp:\n  auth: {username: scanner, password: {env: PW}}\n",
    )
    assert problems(path) == [
        (
            "config.yaml",
            2,
            "smtp.auth",
            "AUTH is only offered over TLS, so that the password never crosses the network in "
            "clear: set smtp.tls (cert: and key:) too",
        )
    ]


def test_incomplete_tls_and_auth(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
        smtp:
          tls: {cert: smtp.pem}
          auth: {username: " ", password: {file: ""}}
        """,
    )
    assert problems(path) == [
        ("config.yaml", 2, "smtp.tls", "needs key: too (PEM files)"),
        ("config.yaml", 3, "smtp.auth.username", "expected a user name, got an empty value"),
        ("config.yaml", 3, "smtp.auth.password.file", "expected a non-empty value"),
    ]
    path = write(tmp_path / "config.yaml", "smtp:\n  tls: {}\n  auth: {}\n")
    assert problems(path) == [
        ("config.yaml", 2, "smtp.tls", "needs cert: and key: (PEM files)"),
        ("config.yaml", 3, "smtp.auth", "needs username: and password:"),
    ]


def test_a_tls_key_others_can_read_is_a_warning(tmp_path: Path) -> None:
    key = write(tmp_path / "smtp.key", "not really a key")
    key.chmod(0o644)
    config = load(tmp_path, "smtp:\n  tls:\n    cert: smtp.pem\n    key: smtp.key\n")
    assert config.warnings == (
        f"{tmp_path / 'config.yaml'}:4: smtp.tls.key: {key} is readable by its group and "
        f"others (mode 0644): chmod 600 {key}",
    )


# --- secrets others can read --------------------------------------------------------------------

_PORTAL = """\
portals:
  - name: shop
    username: me
    password: {password}
    form:
      start: https://shop.example/login
      login: {{form: form, success: {{selector: a.logout}}}}
      documents: {{pages: [/invoices], rows: tr, download: {{selector: a}}}}
"""


@pytest.mark.parametrize(
    ("mode", "readers"), [(0o644, "its group and others"), (0o604, "others"), (0o640, "its group")]
)
def test_plain_secrets_in_a_file_others_can_read(tmp_path: Path, mode: int, readers: str) -> None:
    path = write(tmp_path / "config.yaml", _PORTAL.format(password="hunter2"))
    path.chmod(mode)
    config = load_config(path)
    assert config.warnings[0].startswith(f"{path}:4: portals[0].password: plain-text secret")
    assert config.warnings[1:] == (
        f"{path}: holds plain-text secrets and is readable by {readers} (mode {mode:04o}): "
        f"chmod 600 {path}, or write the secrets as references ({{command: ...}}, {{env: ...}}, "
        "{file: ...} or {credential: ...})",
    )
    assert "hunter2" not in "".join(config.warnings)


def test_plain_secrets_in_an_owner_only_file_warn_only_once(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", _PORTAL.format(password="hunter2"))
    path.chmod(0o600)
    [warning] = load_config(path).warnings
    assert "plain-text secret" in warning


def test_an_included_file_with_plain_secrets_is_named(tmp_path: Path) -> None:
    main = write(tmp_path / "config.yaml", "include: portals.d/*.yaml\n")
    main.chmod(0o644)  # no secret in it: fine
    shop = write(tmp_path / "portals.d/shop.yaml", _PORTAL.format(password="hunter2"))
    shop.chmod(0o644)
    warnings = load_config(main).warnings
    assert [w.split(": ")[0] for w in warnings] == [f"{shop}:4", str(shop)]
    assert warnings[1].startswith(f"{shop}: holds plain-text secrets and is readable by its group")


def test_a_secret_file_others_can_read(tmp_path: Path) -> None:
    secret = write(tmp_path / "shop.pw", "hunter2\n")
    secret.chmod(0o644)
    path = write(tmp_path / "config.yaml", _PORTAL.format(password="{file: shop.pw}"))
    path.chmod(0o644)  # references only: anyone may read it
    assert load_config(path).warnings == (
        f"{path}:4: portals[0].password.file: {secret} is readable by its group and others "
        f"(mode 0644): chmod 600 {secret}",
    )
    secret.chmod(0o600)
    assert load_config(path).warnings == ()
    secret.unlink()  # missing: the daemon says so when it needs it, not the config
    assert load_config(path).warnings == ()


# --- paths --------------------------------------------------------------------------------------


def test_paths_expand_home_and_variables(
    tmp_path: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMID_TEST_DATA", str(tmp_path / "data"))
    monkeypatch.chdir("/")
    config = load(
        tmp_path,
        """\
        state_dir: $GMID_TEST_DATA/state
        archive:
          dir: ~/Documents/Invoices
        control:
          socket: ${GMID_TEST_DATA}/s.sock
        """,
    )
    assert config.state_dir == tmp_path / "data/state"
    assert config.archive.dir == clean_env / "Documents/Invoices"
    assert config.control.socket == tmp_path / "data/s.sock"


def test_relative_paths_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    config = load_config(
        write(tmp_path / "etc/config.yaml", "state_dir: state\narchive: {dir: ../inv}\n")
    )
    assert config.state_dir == tmp_path / "etc/state"
    assert config.archive.dir == tmp_path / "inv"


def test_unset_variable_is_a_problem_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "timezone: UTC\nstate_dir: $GMID_UNSET_VAR/state\n")
    assert problems(path) == [
        ("config.yaml", 2, "state_dir", "environment variable GMID_UNSET_VAR is not set")
    ]


def test_socket_path_too_long_for_a_unix_socket(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", f"control:\n  socket: /tmp/{'x' * 120}/gmid.sock\n")
    [(_, line, option, message)] = problems(path)
    assert (line, option) == (2, "control.socket")
    assert "a Unix socket path may have at most 107" in message


# --- archive file names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{company}/{date:%Y-%m} {number}{ext}",
        "{source}/{received:%Y%m%d-%H%M} {sha:.12}{ext}",
        "{date:%Y}/{{literal}} {company}{ext}",
    ],
)
def test_good_templates(tmp_path: Path, template: str) -> None:
    assert load(tmp_path, f"archive:\n  name: '{template}'\n").archive.name == template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{company}/{invoice}{ext}", "unknown placeholder {invoice}"),
        ("{compnay}{ext}", "did you mean {company}?"),
        ("/srv/{company}{ext}", "must be relative to archive.dir"),
        ("{company}/../../etc/{number}{ext}", "must not contain '..'"),
        ("{company}/", "must end with a file name"),
        ("{}{ext}", "unknown placeholder {}"),
        ("{date.year}{ext}", "unknown placeholder {date.year}"),
        ("{company{ext}", "(write {{ and }} for literal braces)"),
        ("{number:%Y}{ext}", "cannot be filled in"),
        ("", "the template is empty"),
        ("{sha:>1500000000}{ext}", "a width of 1500000000 is more than a file name holds"),
        ("{company:.9999}{ext}", "a width of 9999 is more than a file name holds"),
    ],
)
def test_bad_templates(tmp_path: Path, template: str, message: str) -> None:
    found = problems(write(tmp_path / "config.yaml", f"archive:\n  name: '{template}'\n"))
    assert {(line, option) for _, line, option, _ in found} == {(2, "archive.name")}
    assert any(message in m for *_, m in found), found


def test_template_without_ext_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "archive:\n  name: '{company}/{number}'\n")
    assert config.warnings == (
        f"{tmp_path / 'config.yaml'}:2: archive.name: no {{ext}} in the template: "
        "files get no extension",
    )


def test_the_default_size_takes_the_largest_attachment_a_mail_provider_sends(tmp_path: Path):
    """Providers allow about 25 MB of attachments: in base64, with a short body, the mail is
    about 34 MB, and the default must take it (25 MB refused an 18.5 MB PDF)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "a@shop.example", "invoices@gmid.local", "Big"
    msg.set_content("The invoice and its annexes.\n")
    msg.add_attachment(bytes(25 * 10**6), maintype="application", subtype="pdf", filename="big.pdf")
    assert len(msg.as_bytes()) <= load(tmp_path, "").smtp.max_message_size
