"""Where the daemon's socket is: `--socket`, else the config's `control.socket`, else the default.

The TUI does not import gmid.config.load (it talks to the daemon only through gmid.control), so it
reads the one value it needs from the YAML itself, and resolves it with the config's own function
(gmid/control/paths.py): variables and `~` expanded, a relative path taken from the config file's
folder, and what is wrong with it said as `gmid check-config` says it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from gmid.control import paths

NULL = "tag:yaml.org,2002:null"


class OptionError(Exception):
    """The config given with -c cannot be read, or its socket path cannot be used."""


def socket_from_config(config: Path) -> Path:
    """Read `control: socket:` from a config file; the default path when it is not set."""
    try:
        root = yaml.compose(config.read_text(encoding="utf-8"))
    except OSError as e:
        raise OptionError(f"{config}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise OptionError(f"{config}: not valid YAML ({e})") from None
    node = _child(_child(root, "control"), "socket")
    if not isinstance(node, ScalarNode) or node.tag == NULL:
        return paths.default_socket_path()
    try:
        return paths.socket_path(node.value, config.parent)
    except paths.PathProblems as e:
        where = f"{config}:{node.start_mark.line + 1}: control.socket"
        raise OptionError("\n".join(f"{where}: {problem}" for problem in e.problems)) from None


def _child(node: Node | None, key: str) -> Node | None:
    """The value of `key` in a YAML mapping node; None when there is none."""
    if not isinstance(node, MappingNode):
        return None
    found = (v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key)
    return next(found, None)


def socket_path(args: argparse.Namespace) -> Path:
    """The socket to connect to, from the parsed command line."""
    if args.socket:
        return Path(args.socket).expanduser()
    if args.config:
        return socket_from_config(Path(args.config).expanduser())
    if paths.default_config_path().exists():
        return socket_from_config(paths.default_config_path())
    return paths.default_socket_path()


def parser() -> argparse.ArgumentParser:
    """The command line of `gmid-tui`."""
    p = argparse.ArgumentParser(
        prog="gmid-tui", description="The gmid dashboard: portals, codes and documents."
    )
    p.add_argument("-c", "--config", metavar="FILE", help="the daemon's config (for its socket)")
    p.add_argument("--socket", metavar="PATH", help="the daemon's control socket")
    return p
