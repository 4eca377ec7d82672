"""The `gmid` command: its parser, each group of commands from its module, and `main`."""

from __future__ import annotations

import argparse
import os
import sys

from gmid import __version__
from gmid.errors import ConfigError, GmidError


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.app import main as tui_main

    passed = [("-c", args.config), ("--socket", args.socket)]
    return tui_main([part for flag, value in passed if value for part in (flag, value)])


def build_parser() -> argparse.ArgumentParser:
    """The parser of every `gmid` command."""
    from gmid.cli.common import command, options
    from gmid.cli.daemon import add_daemon_commands, add_demo_command
    from gmid.cli.deliver import add_deliver_commands
    from gmid.cli.extract import add_extract_command
    from gmid.cli.portals import add_portal_commands
    from gmid.cli.reindex import add_reindex_command
    from gmid.cli.session import add_session_commands
    from gmid.cli.show import add_show_command
    from gmid.cli.status import add_status_commands
    from gmid.cli.tryout import add_try_command
    from gmid.cli.verify import add_verify_command

    common = options()
    parser = argparse.ArgumentParser(
        prog="gmid",
        description="Self-hosted invoice collector: portals and e-mail in, one archive out.",
    )
    parser.add_argument("--version", action="version", version=f"gmid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_daemon_commands(sub, common)
    add_status_commands(sub, common)
    add_show_command(sub, common)
    add_portal_commands(sub, common)
    add_try_command(sub, common)
    add_session_commands(sub, common)
    add_verify_command(sub, common)
    add_deliver_commands(sub, common)
    add_reindex_command(sub, common)
    add_extract_command(sub, common)
    add_demo_command(sub)
    p = command(
        sub,
        "tui",
        "the terminal dashboard (same as gmid-tui)",
        "gmid tui -c /etc/gmid/config.yaml",
        parents=[common],
    )
    p.set_defaults(func=cmd_tui)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gmid` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        n = len(e.problems)
        print(f"gmid: {n} problem{'s' if n != 1 else ''} in the config", file=sys.stderr)
        return e.exit_code
    except GmidError as e:
        print(f"gmid: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `gmid documents | head` closes the pipe early; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
