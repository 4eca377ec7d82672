"""The YAML config (config.yaml plus included files), parsed into frozen dataclasses.

`load_config` reports every problem at once, each with its file, line and option. A section is
read by a small function taking a `Reader` (see gmid/config/reader.py) and its node. This module
holds the top level and the small sections (archive, control, ingest, companies, include); the
larger ones have their own: gmid/config/smtp.py, gmid/config/imap.py, gmid/config/portals.py and
gmid/config/schedule.py.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node

from gmid.archive.naming import template_problems
from gmid.config.ids import read_ids
from gmid.config.imap import MailboxConfig, read_mailboxes
from gmid.config.portals import (
    NotifyConfig,
    PortalConfig,
    RunsConfig,
    SolverConfig,
    check_portals,
    read_notify,
    read_portals,
    read_runs,
    read_solver,
)
from gmid.config.reader import Reader, is_null, line_of, timezone_error
from gmid.config.reader import parse_duration as parse_duration  # re-exported
from gmid.config.reader import parse_size as parse_size  # re-exported
from gmid.config.schedule import check_rules, merge, read_schedule
from gmid.config.secretref import check_secret_permissions
from gmid.config.smtp import SmtpConfig, read_smtp
from gmid.control.paths import PathProblems, default_socket_path, env_dir, socket_path
from gmid.control.paths import default_config_path as default_config_path  # re-exported
from gmid.errors import ConfigError, Problem, quoted
from gmid.schedule.timerules import Rules

DEFAULT_NAME_TEMPLATE = "{company}/{date:%Y}/{date:%Y-%m-%d} {company} {number}{ext}"
# `date` and `received` are datetimes, so they take strftime specs such as {date:%Y-%m}.
INGEST_TYPES = ("pdf", "xml", "image")

# Options of the main file; included files may only add to the lists in INCLUDABLE.
_TOP_KEYS = (
    "timezone",
    "state_dir",
    "archive",
    "control",
    "smtp",
    "ingest",
    "companies",
    "portals",
    "runs",
    "notify",
    "schedule",
    "mailboxes",
    "captcha_solver",
    "include",
)
INCLUDABLE = ("companies", "portals")


@dataclass(frozen=True)
class ArchiveConfig:
    """Where documents are filed and how their files are named."""

    dir: Path
    name: str = DEFAULT_NAME_TEMPLATE


@dataclass(frozen=True)
class ControlConfig:
    """The Unix socket the TUI and the CLI talk to."""

    socket: Path
    # Connections at the same time; beyond it, the oldest one that never asked anything makes
    # room, else the new one is refused (a local user's thousand idle clients would eat the
    # daemon's file descriptors).
    max_connections: int = 64


@dataclass(frozen=True)
class IngestConfig:
    """Which attachments of a mail are filed as documents."""

    types: tuple[str, ...] = ("pdf", "xml")
    keep_mail_without_documents: bool = True


@dataclass(frozen=True)
class Company:
    """A supplier whose documents come by e-mail, recognised by its sender addresses."""

    name: str
    senders: tuple[str, ...]
    file: str
    line: int
    vat_ids: tuple[str, ...] = ()  # the seller's VAT ID on its invoices (gmid/config/ids.py)
    ibans: tuple[str, ...] = ()  # the account its invoices ask to pay to


@dataclass(frozen=True)
class Config:
    """The whole configuration of one gmid daemon."""

    path: Path
    timezone: str
    state_dir: Path
    archive: ArchiveConfig
    control: ControlConfig
    smtp: SmtpConfig
    ingest: IngestConfig
    companies: tuple[Company, ...]
    portals: tuple[PortalConfig, ...]
    runs: RunsConfig
    notify: NotifyConfig
    schedule: Rules
    mailboxes: tuple[MailboxConfig, ...]
    include: str | None
    included_files: tuple[Path, ...]
    warnings: tuple[str, ...]
    captcha_solver: SolverConfig | None = None  # portals may override it

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The configured time zone."""
        return zoneinfo.ZoneInfo(self.timezone)


def default_state_dir() -> Path:
    """Return where the index, sessions and quarantine live when state_dir is not set."""
    if (directory := env_dir("STATE_DIRECTORY")) is not None:
        return directory
    return (env_dir("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "gmid"


def session_file(state_dir: Path, portal: str) -> Path:
    """Where a portal's saved session (its cookies) is kept: the runner loads and saves it."""
    return state_dir / "sessions" / f"{portal}.cookies"


def system_timezone() -> str:
    """Return the system's IANA time zone (TZ, /etc/timezone, /etc/localtime), else "UTC"."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    with contextlib.suppress(OSError):
        candidates.append(os.readlink("/etc/localtime"))
    for candidate in candidates:
        # TZ and the /etc/localtime link may be paths into the zoneinfo folder.
        name = candidate.rpartition("zoneinfo/")[2]
        if name and timezone_error(name) is None:
            return name
    return "UTC"


def _archive(r: Reader, node: Node | None, state_dir: Path) -> ArchiveConfig:
    """Read `archive:`."""
    m = r.mapping(node, "archive", ("dir", "name"))
    # Without a home (some service accounts) the archive goes under the state folder.
    default_dir = Path.home() / "Invoices" if os.environ.get("HOME") else state_dir / "archive"
    name = r.text(m.get("name"), "archive.name", DEFAULT_NAME_TEMPLATE)
    problems = template_problems(name)
    for message in problems:
        r.problem(m.get("name"), "archive.name", message)
    if not problems and "{ext" not in name:
        r.warn(m.get("name"), "archive.name", "no {ext} in the template: files get no extension")
    return ArchiveConfig(dir=r.path(m.get("dir"), "archive.dir", default_dir), name=name)


def _control(r: Reader, node: Node | None) -> ControlConfig:
    """Read `control:`."""
    m = r.mapping(node, "control", ("socket", "max_connections"))
    text = r.text(m.get("socket"), "control.socket")
    try:  # resolved as the TUI resolves it (gmid/control/paths.py)
        socket = default_socket_path() if text is None else socket_path(text, r.base)
    except PathProblems as e:
        for problem in e.problems:
            r.problem(m.get("socket"), "control.socket", problem)
        socket = default_socket_path()
    max_connections = r.integer(m.get("max_connections"), "control.max_connections", 64, low=4)
    return ControlConfig(socket=socket, max_connections=max_connections)


def _ingest(r: Reader, node: Node | None) -> IngestConfig:
    """Read `ingest:`."""
    m = r.mapping(node, "ingest", ("types", "keep_mail_without_documents"))
    types: list[str] = []
    items = r.sequence(m.get("types"), "ingest.types")
    for i, item in enumerate(items):
        kind = (r.text(item, f"ingest.types[{i}]") or "").strip().lower()
        if not kind:
            r.problem(item, f"ingest.types[{i}]", "empty entry")
        elif kind not in INGEST_TYPES:
            close = difflib.get_close_matches(kind, INGEST_TYPES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            r.problem(
                item,
                f"ingest.types[{i}]",
                f"unknown type {quoted(kind)}; {hint}(known: pdf, xml, image)",
            )
        elif kind not in types:
            types.append(kind)
    keep = r.boolean(
        m.get("keep_mail_without_documents"), "ingest.keep_mail_without_documents", True
    )
    return IngestConfig(
        types=tuple(types) if "types" in m else IngestConfig.types,
        keep_mail_without_documents=keep,
    )


def read_companies(r: Reader, node: Node | None) -> list[tuple[Company, str]]:
    """Read a `companies:` list; each company comes with its option path for later checks."""
    found = []
    for i, item in enumerate(r.sequence(node, "companies")):
        option = f"companies[{i}]"
        if is_null(item):
            r.problem(item, option, "empty entry; expected name: and senders:")
            continue
        m = r.mapping(item, option, ("name", "senders", "vat_ids", "ibans"))
        if not isinstance(item, MappingNode):
            continue
        name = (r.text(m.get("name"), f"{option}.name") or "").strip()
        if not name:
            r.problem(m.get("name", item), f"{option}.name", "every company needs a name")
            continue
        senders = r.addresses(m.get("senders"), f"{option}.senders", domains=True)
        company = Company(
            name,
            tuple(senders),
            r.file,
            line_of(item) or 0,
            vat_ids=read_ids(r, m.get("vat_ids"), f"{option}.vat_ids", "vat_id"),
            ibans=read_ids(r, m.get("ibans"), f"{option}.ibans", "iban"),
        )
        found.append((company, option))
    return found


def check_companies(problems: list[Problem], companies: list[tuple[Company, str]]) -> None:
    """Report company names and sender addresses that are used twice."""
    names: dict[str, Company] = {}
    senders: dict[str, Company] = {}
    for company, option in companies:
        first = names.setdefault(company.name.casefold(), company)
        if first is not company:
            message = f"duplicate company name {quoted(company.name)}; first defined at "
            message += f"{first.file}:{first.line}" + (
                f" as {quoted(first.name)}" if first.name != company.name else ""
            )
            problems.append(Problem(company.file, company.line, f"{option}.name", message))
        for i, sender in enumerate(company.senders):
            owner = senders.setdefault(sender, company)
            if owner is not company:
                where = f"{owner.file}:{owner.line}"
                message = f"{quoted(sender)} already belongs to {quoted(owner.name)} ({where})"
                problems.append(
                    Problem(company.file, company.line, f"{option}.senders[{i}]", message)
                )


def _included_files(r: Reader, node: Node | None, pattern: str | None) -> list[Path]:
    """Return the files the `include:` glob matches, sorted; no match at all is fine."""
    if pattern is None:
        return []
    expanded = r.expand(node, "include", pattern)
    if expanded is None:
        return []
    if not os.path.isabs(expanded):
        # Escaped so that a config folder named like "a[1]" is not read as a pattern.
        expanded = os.path.join(glob.escape(str(r.base)), expanded)
    matches = {os.path.abspath(p) for p in glob.glob(expanded, recursive=True)}
    return [Path(p) for p in sorted(matches) if os.path.isfile(p) and Path(p) != r.source]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read a config file and the files it includes; ConfigError lists every problem found."""
    main = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    problems: list[Problem] = []
    warnings: list[str] = []
    r = Reader(main, problems, warnings)
    root = r.load()
    if root is None and problems:
        raise ConfigError(problems)
    top = r.mapping(root, "", _TOP_KEYS)

    timezone = r.timezone(top.get("timezone"), "timezone")
    state_dir = r.path(top.get("state_dir"), "state_dir") or default_state_dir()
    archive = _archive(r, top.get("archive"), state_dir)
    control = _control(r, top.get("control"))
    smtp = read_smtp(r, top.get("smtp"))
    ingest = _ingest(r, top.get("ingest"))
    include = r.text(top.get("include"), "include")
    included = _included_files(r, top.get("include"), include)

    companies = read_companies(r, top.get("companies"))
    schedule = merge(Rules(), read_schedule(r, top.get("schedule"), "schedule"))
    check_rules(r, top.get("schedule"), "schedule", schedule)
    portals = read_portals(r, top.get("portals"), schedule)
    runs = read_runs(r, top.get("runs"))
    notify = read_notify(r, top.get("notify"))
    mailboxes = read_mailboxes(r, top.get("mailboxes"))
    captcha_solver = read_solver(r, top.get("captcha_solver"), "captcha_solver")
    if captcha_solver is not None and captcha_solver.command is None:
        r.problem(top["captcha_solver"], "captcha_solver", "false is for a portal's own setting")
    for file in included:
        ir = r.for_file(file)
        reason = f"can only be set in the main config file {main}; included files may set: "
        refused = {
            key: reason + ", ".join(INCLUDABLE) for key in _TOP_KEYS if key not in INCLUDABLE
        }
        itop = ir.mapping(ir.load(), "", INCLUDABLE, refused)
        companies += read_companies(ir, itop.get("companies"))
        portals += read_portals(ir, itop.get("portals"), schedule)
    check_companies(problems, companies)
    check_portals(problems, portals)
    check_secret_permissions(r)

    if problems:
        # Reported file by file (main first), top to bottom, whatever order they were found in.
        rank = {str(file): i for i, file in enumerate([main, *included])}
        problems.sort(key=lambda p: (rank.get(p.file, len(rank)), p.line or 0))
        raise ConfigError(problems)
    return Config(
        path=main,
        timezone=timezone or system_timezone(),
        state_dir=state_dir,
        archive=archive,
        control=control,
        smtp=smtp,
        ingest=ingest,
        companies=tuple(company for company, _ in companies),
        portals=tuple(portals),
        runs=runs,
        notify=notify,
        schedule=schedule,
        mailboxes=tuple(mailboxes),
        include=include,
        included_files=tuple(included),
        warnings=tuple(warnings),
        captcha_solver=captcha_solver,
    )
