"""Default locations and the control socket's path, shared by the daemon's config, the CLI and
the TUI.

They live beside the client because the TUI may import gmid.control and nothing else of gmid.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from gmid import yamlsyntax
from gmid.errors import GmidError

# A Unix socket path must fit sockaddr_un.sun_path (108 bytes with the final NUL on Linux).
MAX_SOCKET_PATH = 107
_VAR = re.compile(r"\$(?:\{([^}]*)\}|(\w+))")
_VAR_NAME = re.compile(r"[A-Za-z_]\w*")
_NULL = "tag:yaml.org,2002:null"


class PathProblems(GmidError, ValueError):
    """A path written in the config cannot be used; `problems` says each reason, as the config
    reports it at the option's line."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def env_dir(name: str) -> Path | None:
    """Return the first directory of a systemd/XDG variable, if it is set and absolute."""
    # systemd joins several directories with ":"; the XDG spec says to ignore relative paths.
    first = os.environ.get(name, "").split(":")[0]
    return Path(first) if first and os.path.isabs(first) else None


def default_config_path() -> Path:
    """Return where the config is looked for when no path is given."""
    if (directory := env_dir("CONFIGURATION_DIRECTORY")) is not None:
        return directory / "config.yaml"
    base = env_dir("XDG_CONFIG_HOME") or Path.home() / ".config"
    return base / "gmid" / "config.yaml"


def default_socket_path() -> Path:
    """Return the control socket's path when control.socket is not set."""
    if (directory := env_dir("RUNTIME_DIRECTORY")) is not None:
        return directory / "gmid.sock"
    if (directory := env_dir("XDG_RUNTIME_DIR")) is not None:
        return directory / "gmid" / "gmid.sock"
    return Path(f"/tmp/gmid-{os.getuid()}") / "gmid.sock"


def expand(text: str) -> str:
    """Expand `$VAR`, `${VAR}` and `~`; PathProblems names each variable that is not set."""
    problems: list[str] = []

    def var(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if not _VAR_NAME.fullmatch(name):
            problems.append(f"${{{name}}} is not a valid variable reference")
            return ""
        value = os.environ.get(name)
        # An empty variable would turn "$XDG_RUNTIME_DIR/gmid" into "/gmid".
        if not value:
            problems.append(f"environment variable {name} is not set")
            return ""
        return value

    expanded = _VAR.sub(var, text)
    if problems:
        raise PathProblems(problems)
    return os.path.expanduser(expanded)


def socket_path(text: str, base: Path) -> Path:
    """The socket a `control.socket` value names: variables and `~` expanded, relative to `base`
    (the config file's folder). PathProblems when it is empty, names a variable that is not
    set, or is too long for a Unix socket."""
    if not text.strip():
        raise PathProblems(["expected a path, got an empty value"])
    path = Path(os.path.abspath(base / expand(text)))
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        raise PathProblems(
            [f"path is {size} bytes long; a Unix socket path may have at most {MAX_SOCKET_PATH}"]
        )
    return path


class SocketUnknown(GmidError):
    """A config file given for its socket cannot be read, or its socket path cannot be used."""


def socket_from_config(config: Path) -> Path:
    """Read `control: socket:` from a config file; the default path when it is not set.

    Only that value is read: a config that is broken elsewhere (a typo in a portal) must not
    keep the CLI or the TUI from the daemon that runs with an older, valid one.
    """
    try:
        text = config.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except (OSError, UnicodeDecodeError) as e:
        raise SocketUnknown(f"{config}: {getattr(e, 'strerror', None) or e}") from None
    except yaml.YAMLError as e:
        found = yamlsyntax.describe(e, text)
        where = f"{config}:{found.line}" if found.line else str(config)
        excerpt = f"\n{found.excerpt}" if found.excerpt else ""
        raise SocketUnknown(f"{where}: {found.message}{excerpt}") from None
    node = _child(_child(root, "control"), "socket")
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        return default_socket_path()
    try:
        return socket_path(node.value, config.parent)
    except PathProblems as e:
        where = f"{config}:{node.start_mark.line + 1}: control.socket"
        raise SocketUnknown("\n".join(f"{where}: {problem}" for problem in e.problems)) from None


def _child(node: Node | None, key: str) -> Node | None:
    """The value of `key` in a YAML mapping node; None when there is none."""
    if not isinstance(node, MappingNode):
        return None
    found = (v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key)
    return next(found, None)
