"""Default locations and the control socket's path, shared by the daemon's config, the CLI and
the TUI.

They live beside the client because the TUI may import gmid.control and nothing else of gmid.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gmid.errors import GmidError

# A Unix socket path must fit sockaddr_un.sun_path (108 bytes with the final NUL on Linux).
MAX_SOCKET_PATH = 107
_VAR = re.compile(r"\$(?:\{([^}]*)\}|(\w+))")
_VAR_NAME = re.compile(r"[A-Za-z_]\w*")


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
