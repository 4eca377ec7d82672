"""The YAML config (config.yaml plus included files), parsed into frozen dataclasses.

`load_config` reports every problem at once, each with its file, line and option. A section is
read by a small function taking a `Reader` (see gmid/confreader.py) and its node.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import ipaddress
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, SequenceNode

from gmid.confreader import Reader, is_null, line_of, timezone_error
from gmid.confreader import parse_duration as parse_duration  # re-exported
from gmid.confreader import parse_size as parse_size  # re-exported
from gmid.control.paths import default_config_path as default_config_path  # re-exported
from gmid.control.paths import default_socket_path, env_dir
from gmid.errors import ConfigError, Problem
from gmid.imapconfig import MailboxConfig, read_mailboxes
from gmid.naming import template_problems
from gmid.notify import NotifyConfig
from gmid.portalconfig import (
    PortalConfig,
    RunsConfig,
    SolverConfig,
    check_portals,
    read_notify,
    read_portals,
    read_runs,
    read_solver,
)
from gmid.schedconfig import check_rules, merge, read_schedule
from gmid.secrets import SecretRef, parse_secret
from gmid.timerules import Rules

DEFAULT_NAME_TEMPLATE = "{company}/{date:%Y}/{date:%Y-%m-%d} {company} {number}{ext}"
# `date` and `received` are datetimes, so they take strftime specs such as {date:%Y-%m}.
INGEST_TYPES = ("pdf", "xml", "image")
# A Unix socket path must fit sockaddr_un.sun_path (108 bytes with the final NUL on Linux).
MAX_SOCKET_PATH = 107

# Options of the main file; included files may only add to the lists in _INCLUDABLE.
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
_INCLUDABLE = ("companies", "portals")


@dataclass(frozen=True)
class ArchiveConfig:
    """Where documents are filed and how their files are named."""

    dir: Path
    name: str = DEFAULT_NAME_TEMPLATE


@dataclass(frozen=True)
class ControlConfig:
    """The Unix socket the TUI and the CLI talk to."""

    socket: Path


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Who may deliver without AUTH when `smtp.clients` is not set: programs on this machine.
LOOPBACK_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


@dataclass(frozen=True)
class SmtpTls:
    """The certificate the SMTP listener offers with STARTTLS."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class SmtpAuth:
    """The one user name and password that SMTP AUTH accepts (only over TLS)."""

    username: str
    password: SecretRef


@dataclass(frozen=True)
class SmtpConfig:
    """The local SMTP listener that accepts forwarded invoice mails.

    A client whose address is in `clients` may deliver without AUTH; any other client must
    authenticate (STARTTLS first) when `auth` is set, and is refused at connect time otherwise.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_size: int = 25 * 10**6
    recipients: tuple[str, ...] = ("invoices@gmid.local",)
    allow_remote: bool = False
    clients: tuple[Network, ...] = LOOPBACK_NETWORKS
    tls: SmtpTls | None = None
    auth: SmtpAuth | None = None


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
    m = r.mapping(node, "control", ("socket",))
    socket = r.path(m.get("socket"), "control.socket")
    if socket is not None and len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        r.problem(
            m.get("socket"),
            "control.socket",
            f"path is {len(os.fsencode(socket))} bytes long; "
            f"a Unix socket path may have at most {MAX_SOCKET_PATH}",
        )
    return ControlConfig(socket=socket or default_socket_path())


_SMTP_KEYS = (
    "enabled",
    "listen",
    "allow_remote",
    "clients",
    "tls",
    "auth",
    "max_message_size",
    "recipients",
)


def _smtp(r: Reader, node: Node | None) -> SmtpConfig:
    """Read `smtp:`."""
    m = r.mapping(node, "smtp", _SMTP_KEYS)
    default = SmtpConfig()
    host, port = r.host_port(m.get("listen"), "smtp.listen", (default.host, default.port))
    allow_remote = r.boolean(m.get("allow_remote"), "smtp.allow_remote", False)
    clients = _clients(r, m.get("clients"))
    tls = _smtp_tls(r, m.get("tls"))
    auth = _smtp_auth(r, m.get("auth"))
    # Whether they were written, even if wrongly: a mistake in them is reported once, there.
    has_auth = not is_null(m.get("auth"))
    has_tls = not is_null(m.get("tls"))
    remote = not _is_loopback(host)
    if remote and not allow_remote:
        r.problem(
            m.get("listen"),
            "smtp.listen",
            f"{host} is not a loopback address: other machines could send to the listener. "
            "If that is what you want, set allow_remote: true and say who may deliver: "
            "clients: (networks that may send without a password) and/or auth: with tls: "
            "(a user name and password, over STARTTLS only); else listen on 127.0.0.1",
        )
    if has_auth and not has_tls:
        r.problem(
            m["auth"],
            "smtp.auth",
            "AUTH is only offered over TLS, so that the password never crosses the network in "
            "clear: set smtp.tls (cert: and key:) too",
        )
    allowed = default.clients if clients is None else clients
    if remote and allow_remote and not has_auth:
        if all(_is_loopback_network(network) for network in allowed):
            which = "lists only this machine" if clients else "is not set (this machine only)"
            if clients == ():
                which = "is empty"
            r.problem(
                m.get("allow_remote"),
                "smtp.allow_remote",
                f"no other machine could deliver: clients: {which} and auth: is not set; "
                "add the networks that may send (e.g. clients: [192.168.1.0/24]) and/or a user "
                "name and password (auth: with tls:)",
            )
    elif clients == () and not has_auth:
        r.problem(
            m["clients"],
            "smtp.clients",
            "empty and auth: is not set: no client could deliver mail; "
            "leave clients: out to let this machine deliver",
        )
    size = r.size(m.get("max_message_size"), "smtp.max_message_size", default.max_message_size)
    if size < 1:
        r.problem(m.get("max_message_size"), "smtp.max_message_size", "must be more than 0")
    recipients = r.addresses(m.get("recipients"), "smtp.recipients")
    if isinstance(m.get("recipients"), SequenceNode) and not m["recipients"].value:
        r.problem(m["recipients"], "smtp.recipients", "needs at least one address")
    return SmtpConfig(
        enabled=r.boolean(m.get("enabled"), "smtp.enabled", True),
        host=host,
        port=port,
        max_message_size=size,
        recipients=tuple(recipients) or default.recipients,
        allow_remote=allow_remote,
        clients=allowed,
        tls=tls,
        auth=auth,
    )


def _clients(r: Reader, node: Node | None) -> tuple[Network, ...] | None:
    """Read `smtp.clients`: networks (192.168.1.0/24, 2001:db8::/32) or addresses; None if
    absent."""
    if is_null(node):
        return None
    found: list[Network] = []
    for i, item in enumerate(r.sequence(node, "smtp.clients")):
        option = f"smtp.clients[{i}]"
        text = (r.text(item, option) or "").strip()
        if not text:
            r.problem(item, option, "empty entry")
            continue
        try:
            network = ipaddress.ip_network(text)
        except ValueError:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                r.problem(
                    item,
                    option,
                    f"{text!r} is not an IP address or network (such as 192.168.1.0/24, "
                    "192.168.1.20 or 2001:db8::/32); host names are not allowed",
                )
            else:
                r.problem(item, option, f"{text} has host bits set; did you mean {loose}?")
            continue
        if network.prefixlen == 0:
            r.warn(
                item,
                option,
                f"{network} is every IPv{network.version} address: any machine that can reach "
                "the listener may deliver without a password",
            )
        if network not in found:
            found.append(network)
    return tuple(found)


def _is_loopback(host: str) -> bool:
    """Tell whether a listen address is reachable from this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _is_loopback_network(network: Network) -> bool:
    """Tell whether every address of a network is this machine's loopback."""
    return any(
        network.version == loopback.version and network.subnet_of(loopback)
        for loopback in LOOPBACK_NETWORKS
    )


def _smtp_tls(r: Reader, node: Node | None) -> SmtpTls | None:
    """Read `smtp.tls`: cert: and key:, PEM files."""
    m = r.mapping(node, "smtp.tls", ("cert", "key"))
    if not m:
        if isinstance(node, MappingNode):
            r.problem(node, "smtp.tls", "needs cert: and key: (PEM files)")
        return None
    missing = [f"{key}:" for key in ("cert", "key") if is_null(m.get(key))]
    if missing:
        r.problem(node, "smtp.tls", f"needs {' and '.join(missing)} too (PEM files)")
    cert = r.path(m.get("cert"), "smtp.tls.cert")
    key = r.path(m.get("key"), "smtp.tls.key")
    if cert is None or key is None:
        return None
    if (who := _readers(key)) is not None:
        r.warn(m["key"], "smtp.tls.key", f"{key} is readable by {who}: chmod 600 {key}")
    return SmtpTls(cert=cert, key=key)


def _smtp_auth(r: Reader, node: Node | None) -> SmtpAuth | None:
    """Read `smtp.auth`: the one user name and password SMTP AUTH accepts."""
    m = r.mapping(node, "smtp.auth", ("username", "password"))
    if not m:
        if isinstance(node, MappingNode):
            r.problem(node, "smtp.auth", "needs username: and password:")
        return None
    missing = [f"{key}:" for key in ("username", "password") if is_null(m.get(key))]
    if missing:
        r.problem(node, "smtp.auth", f"needs {' and '.join(missing)} too")
    username = r.text(m.get("username"), "smtp.auth.username")
    if username is not None and not username.strip():
        r.problem(m["username"], "smtp.auth.username", "expected a user name, got an empty value")
        username = None
    password = parse_secret(r, m.get("password"), "smtp.auth.password")
    if username is None or password is None:
        return None
    return SmtpAuth(username=username, password=password)


def _readers(path: Path) -> str | None:
    """Who besides the owner may read a file, with its mode, e.g. "others (mode 0644)"; None
    if nobody (or if the file cannot be looked at: then it is not for this check to say)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    who = [name for bit, name in ((0o040, "its group"), (0o004, "others")) if mode & bit]
    return f"{' and '.join(who)} (mode {mode & 0o7777:04o})" if who else None


def _check_secret_permissions(r: Reader) -> None:
    """Warn about a config file with plain-text secrets, or a secret file, that others may read."""
    plain_files = dict.fromkeys(use.file for use in r.secrets if use.kind == "plain")
    for file in plain_files:
        if (who := _readers(Path(file))) is not None:
            message = (
                f"holds plain-text secrets and is readable by {who}: chmod 600 {file}, or write "
                "the secrets as references ({command: ...}, {env: ...}, {file: ...} or "
                "{credential: ...})"
            )
            r.warnings.append(str(Problem(file, None, "", message)))
    for use in r.secrets:
        if use.kind != "file" or use.path is None:
            continue
        if (who := _readers(use.path)) is not None:
            message = f"{use.path} is readable by {who}: chmod 600 {use.path}"
            r.warnings.append(str(Problem(use.file, use.line, use.option, message)))


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
                item, f"ingest.types[{i}]", f"unknown type {kind!r}; {hint}(known: pdf, xml, image)"
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


def _companies(r: Reader, node: Node | None) -> list[tuple[Company, str]]:
    """Read a `companies:` list; each company comes with its option path for later checks."""
    found = []
    for i, item in enumerate(r.sequence(node, "companies")):
        option = f"companies[{i}]"
        if is_null(item):
            r.problem(item, option, "empty entry; expected name: and senders:")
            continue
        m = r.mapping(item, option, ("name", "senders"))
        if not isinstance(item, MappingNode):
            continue
        name = (r.text(m.get("name"), f"{option}.name") or "").strip()
        if not name:
            r.problem(m.get("name", item), f"{option}.name", "every company needs a name")
            continue
        senders = r.addresses(m.get("senders"), f"{option}.senders", domains=True)
        company = Company(name, tuple(senders), r.file, line_of(item) or 0)
        found.append((company, option))
    return found


def _check_companies(problems: list[Problem], companies: list[tuple[Company, str]]) -> None:
    """Report company names and sender addresses that are used twice."""
    names: dict[str, Company] = {}
    senders: dict[str, Company] = {}
    for company, option in companies:
        first = names.setdefault(company.name.casefold(), company)
        if first is not company:
            message = f"duplicate company name {company.name!r}; first defined at "
            message += f"{first.file}:{first.line}" + (
                f" as {first.name!r}" if first.name != company.name else ""
            )
            problems.append(Problem(company.file, company.line, f"{option}.name", message))
        for i, sender in enumerate(company.senders):
            owner = senders.setdefault(sender, company)
            if owner is not company:
                message = (
                    f"{sender!r} already belongs to {owner.name!r} ({owner.file}:{owner.line})"
                )
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
    smtp = _smtp(r, top.get("smtp"))
    ingest = _ingest(r, top.get("ingest"))
    include = r.text(top.get("include"), "include")
    included = _included_files(r, top.get("include"), include)

    companies = _companies(r, top.get("companies"))
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
            key: reason + ", ".join(_INCLUDABLE) for key in _TOP_KEYS if key not in _INCLUDABLE
        }
        itop = ir.mapping(ir.load(), "", _INCLUDABLE, refused)
        companies += _companies(ir, itop.get("companies"))
        portals += read_portals(ir, itop.get("portals"), schedule)
    _check_companies(problems, companies)
    check_portals(problems, portals)
    _check_secret_permissions(r)

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
