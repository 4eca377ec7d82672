"""Where the daemon's socket is: `--socket`, else the config's `control.socket`, else the default.

The TUI does not import gmid.config (it talks to the daemon only through gmid.control): it reads
the one value it needs with gmid.control.paths, as the CLI does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gmid.control import paths


class OptionError(Exception):
    """The config given with -c cannot be read, or its socket path cannot be used."""


def socket_path(args: argparse.Namespace) -> Path:
    """The socket to connect to, from the parsed command line."""
    if args.socket:
        return Path(args.socket).expanduser()
    config = Path(args.config).expanduser() if args.config else paths.default_config_path()
    if not args.config and not config.exists():
        return paths.default_socket_path()
    try:
        return paths.socket_from_config(config)
    except paths.SocketUnknown as e:
        raise OptionError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    """The command line of `gmid-tui`."""
    p = argparse.ArgumentParser(
        prog="gmid-tui", description="The gmid dashboard: portals, codes and documents."
    )
    p.add_argument("-c", "--config", metavar="FILE", help="the daemon's config (for its socket)")
    p.add_argument("--socket", metavar="PATH", help="the daemon's control socket")
    return p
