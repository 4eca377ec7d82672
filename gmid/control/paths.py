"""Default locations, shared by the daemon's config, the CLI and the TUI.

They live beside the client because the TUI may import gmid.control and nothing else of gmid.
"""

from __future__ import annotations

import os
from pathlib import Path


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
