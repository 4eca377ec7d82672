"""Where the daemon's socket is: `--socket`, else the config's `control.socket`, else the default.

The TUI does not import gmid.config.load (it talks to the daemon only through gmid.control), so it
reads the one value it needs from the YAML itself, with the same rules: variables and `~` expanded,
a relative path taken from the config file's folder.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from gmid.control.paths import default_config_path, default_socket_path


class OptionError(Exception):
    """The config given with -c cannot be read."""


def socket_from_config(config: Path) -> Path:
    """Read `control: socket:` from a config file; the default path when it is not set."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except OSError as e:
        raise OptionError(f"{config}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise OptionError(f"{config}: not valid YAML ({e})") from None
    control = data.get("control") if isinstance(data, dict) else None
    value = control.get("socket") if isinstance(control, dict) else None
    if not isinstance(value, str) or not value.strip():
        return default_socket_path()
    expanded = os.path.expanduser(os.path.expandvars(value))
    return Path(os.path.abspath(config.parent / expanded))


def socket_path(args: argparse.Namespace) -> Path:
    """The socket to connect to, from the parsed command line."""
    if args.socket:
        return Path(args.socket).expanduser()
    if args.config:
        return socket_from_config(Path(args.config).expanduser())
    if default_config_path().exists():
        return socket_from_config(default_config_path())
    return default_socket_path()


def parser() -> argparse.ArgumentParser:
    """The command line of `gmid-tui`."""
    p = argparse.ArgumentParser(
        prog="gmid-tui", description="The gmid dashboard: portals, codes and documents."
    )
    p.add_argument("-c", "--config", metavar="FILE", help="the daemon's config (for its socket)")
    p.add_argument("--socket", metavar="PATH", help="the daemon's control socket")
    return p
