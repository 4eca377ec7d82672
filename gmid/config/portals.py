"""The config's portal sections: `portals:` (also in included files), `runs:`, `notify:` and
`captcha_solver:` (also per portal)."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gmid.config.reader import Reader, is_null, line_of
from gmid.config.schedule import check_rules, merge, read_schedule
from gmid.config.secretref import SecretRef, parse_secret
from gmid.errors import Problem, quoted
from gmid.schedule.timerules import Rules

PORTAL_KEYS = (
    "name",
    "company",
    "connector",
    "form",
    "options",
    "username",
    "password",
    "totp_secret",
    "enabled",
    "allow_http",
    "ca_bundle",
    "schedule",
    "captcha_solver",
)
# What a portal may be called: the name is part of file names (sessions, secrets, pages).
PORTAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class PortalConfig:
    """One linked online portal: how to log in and where its documents are filed."""

    name: str
    company: str
    connector: str
    options: dict[str, Any] = field(compare=False, hash=False)  # the form description, etc.
    username: str
    password: SecretRef | None
    totp_secret: SecretRef | None
    enabled: bool
    allow_http: bool
    ca_bundle: Path | None
    file: str
    line: int | None
    rules: Rules = field(default_factory=Rules)  # the global schedule with its overrides
    captcha_solver: SolverConfig | None = None  # None: the global one (gmid/portals/solver.py)
    # the secret references inside the connector's options, by option path (an API key)
    secrets: dict[str, SecretRef] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class SolverConfig:
    """The command that answers captchas before a human is asked (see gmid/portals/solver.py)."""

    command: str | None  # None: none for this portal (`captcha_solver: false`)
    timeout: float = 120.0


@dataclass(frozen=True)
class RunsConfig:
    """Limits of portal runs."""

    concurrency: int = 4
    request_timeout: float = 30.0
    run_timeout: float = 3600.0
    max_download: int = 50 * 10**6
    max_page: int = 10 * 10**6  # a page (login, list, detail, JSON) larger ends the run
    code_timeout: float = 600.0


def read_runs(r: Reader, node: Node | None) -> RunsConfig:
    """Read `runs:`."""
    m = r.mapping(
        node,
        "runs",
        (
            "concurrency",
            "request_timeout",
            "run_timeout",
            "max_download",
            "max_page",
            "code_timeout",
        ),
    )
    d = RunsConfig()

    def seconds(key: str, default: float) -> float:
        value = r.duration(m.get(key), f"runs.{key}", datetime.timedelta(seconds=default))
        if value.total_seconds() <= 0:
            r.problem(m.get(key), f"runs.{key}", "must be longer than 0s")
            return default
        return value.total_seconds()

    return RunsConfig(
        concurrency=r.integer(m.get("concurrency"), "runs.concurrency", d.concurrency, low=1),
        request_timeout=seconds("request_timeout", d.request_timeout),
        run_timeout=seconds("run_timeout", d.run_timeout),
        max_download=r.size(m.get("max_download"), "runs.max_download", d.max_download),
        max_page=r.size(m.get("max_page"), "runs.max_page", d.max_page),
        code_timeout=seconds("code_timeout", d.code_timeout),
    )


@dataclass(frozen=True)
class NotifyConfig:
    """How to reach the user when a code is needed."""

    command: str | None = None
    apprise: tuple[str, ...] = ()  # used only when the optional `apprise` package is installed
    timeout: float = 30.0


def read_notify(r: Reader, node: Node | None) -> NotifyConfig:
    """Read `notify:`."""
    m = r.mapping(node, "notify", ("command", "apprise"))
    return NotifyConfig(
        command=r.text(m.get("command"), "notify.command"),
        apprise=tuple(r.text_list(m.get("apprise"), "notify.apprise")),
    )


def read_solver(r: Reader, node: Node | None, option: str) -> SolverConfig | None:
    """Read `captcha_solver:` {command, timeout}; `false` (per portal) turns it off."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        if node.value.lower() in ("false", "no", "off"):
            return SolverConfig(command=None)
        r.problem(node, option, "expected {command: ..., timeout: ...}, or false")
        return None
    m = r.mapping(node, option, ("command", "timeout"))
    if not m:
        return None
    command = r.text(m.get("command"), f"{option}.command")
    if command is None or not command.strip():
        r.problem(m.get("command", node), f"{option}.command", "expected the command to run")
        return None
    default = datetime.timedelta(seconds=SolverConfig.timeout)
    timeout = r.duration(m.get("timeout"), f"{option}.timeout", default).total_seconds()
    if timeout <= 0:
        r.problem(m.get("timeout"), f"{option}.timeout", "must be longer than 0s")
        timeout = SolverConfig.timeout
    return SolverConfig(command=command, timeout=timeout)


def read_portals(r: Reader, node: Node | None, schedule: Rules) -> list[PortalConfig]:
    """Read a `portals:` list (of the main file or an included one); `schedule` is global."""
    portals = []
    for i, item in enumerate(r.sequence(node, "portals")):
        portal = _portal(r, item, f"portals[{i}]", schedule)
        if portal is not None:
            portals.append(portal)
    return portals


def _portal(r: Reader, node: Node, option: str, schedule: Rules) -> PortalConfig | None:
    m = r.mapping(node, option, PORTAL_KEYS)
    if not m and not isinstance(node, MappingNode):
        return None
    name = r.text(m.get("name"), f"{option}.name")
    if name is None:
        r.problem(node, f"{option}.name", "every portal needs a name")
        return None
    if not PORTAL_NAME.fullmatch(name):
        r.problem(
            m["name"],
            f"{option}.name",
            f"{quoted(name)}: use letters, digits, '.', '_' and '-' (it names files and commands)",
        )
    connector = r.text(m.get("connector"), f"{option}.connector")
    options_node = m.get("form")
    if connector is None and options_node is None:
        r.problem(node, option, "give `connector: NAME` or an inline `form:` description")
        return None
    if connector is None:
        connector = "form"
    elif options_node is not None and connector != "form":
        r.problem(
            options_node, f"{option}.form", f"only for `connector: form`, not {quoted(connector)}"
        )
    if options_node is None:
        options_node = m.get("options")
        options_option = f"{option}.options"
    else:
        options_option = f"{option}.form"
        if "options" in m:
            r.problem(m["options"], f"{option}.options", "give either `form:` or `options:`")
    options = _plain(options_node) if not is_null(options_node) else {}
    if not isinstance(options, dict):
        r.problem(options_node, options_option, "expected a mapping")
        options = {}
    _check_connector(r, connector, options, options_node, options_option, m.get("connector"))
    secrets = _option_secrets(r, connector, options, options_node, options_option)
    enabled = r.boolean(m.get("enabled"), f"{option}.enabled", True)
    username = r.text(m.get("username"), f"{option}.username")
    password = parse_secret(r, m.get("password"), f"{option}.password")
    if enabled and (username is None) != (password is None):
        missing = "password" if password is None else "username"
        r.problem(node, f"{option}.{missing}", "needed together with the other credential")
    rules = schedule
    if "schedule" in m:
        rules = merge(schedule, read_schedule(r, m["schedule"], f"{option}.schedule"))
        check_rules(r, m["schedule"], f"{option}.schedule", rules)
    return PortalConfig(
        rules=rules,
        name=name,
        company=r.text(m.get("company"), f"{option}.company", name),
        connector=connector,
        options=options,
        username=username or "",
        password=password,
        totp_secret=parse_secret(r, m.get("totp_secret"), f"{option}.totp_secret"),
        enabled=enabled,
        allow_http=r.boolean(m.get("allow_http"), f"{option}.allow_http", False),
        ca_bundle=r.path(m.get("ca_bundle"), f"{option}.ca_bundle"),
        captcha_solver=read_solver(r, m.get("captcha_solver"), f"{option}.captcha_solver"),
        file=r.file,
        line=line_of(node),
        secrets=secrets,
    )


def _check_connector(
    r: Reader,
    name: str,
    options: dict[str, Any],
    options_node: Node | None,
    option: str,
    name_node: Node | None,
) -> None:
    """Report an unknown connector, and the connector's own verdict on its options."""
    from connectors import load_connector

    try:
        cls = load_connector(name)
    except KeyError as e:
        r.problem(name_node, option.rsplit(".", 1)[0] + ".connector", str(e.args[0]))
        return
    for path, message in cls.check_options(options):
        target = node_at(options_node, path) if options_node is not None else None
        r.problem(target or options_node, f"{option}.{path}" if path else option, message)


def _option_secrets(
    r: Reader, name: str, options: dict[str, Any], options_node: Node | None, option: str
) -> dict[str, SecretRef]:
    """Read the secret references the connector's options hold, as `password:` is read."""
    from connectors import load_connector

    try:
        paths = load_connector(name).secret_options(options)
    except KeyError:  # an unknown connector: _check_connector said so
        return {}
    secrets = {}
    for path in paths:
        ref = parse_secret(r, node_at(options_node, path), f"{option}.{path}")
        if ref is not None:
            secrets[path] = ref
    return secrets


def node_at(node: Node | None, path: str) -> Node | None:
    """Find the node an option path such as `documents.fields.date.formats[0]` names.

    Returns the deepest node reached, so a problem about a missing key points at its parent.
    """
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if isinstance(node, MappingNode):
            match = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
            if not match:
                return node
            node = match[-1]
        elif isinstance(node, SequenceNode) and part.startswith("["):
            index = int(part[1:-1])
            if index >= len(node.value):
                return node
            node = node.value[index]
        else:
            return node
    return node


def _plain(node: Node | None) -> Any:
    """The YAML value as plain Python (dicts, lists, strings, numbers)."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def check_portals(problems: list[Problem], portals: list[PortalConfig]) -> None:
    """Portal names are unique (case-insensitively), wherever they are defined."""
    seen: dict[str, PortalConfig] = {}
    for portal in portals:
        first = seen.setdefault(portal.name.casefold(), portal)
        if first is not portal:
            where = f"{first.file}:{first.line}"
            message = f"portal {quoted(portal.name)} is already defined at {where}"
            problems.append(Problem(portal.file, portal.line, "portals", message))
