"""The `gmid verify` command: the archive folder checked against the index (gmid/verify/)."""

from __future__ import annotations

import argparse

from gmid.cli.common import command, config_path, options


def cmd_verify(args: argparse.Namespace) -> int:
    from gmid.config.load import load_config
    from gmid.verify.run import run

    config = load_config(config_path(args))
    return run(config, quick=args.quick, repair=args.repair, as_json=args.json)


def add_verify_command(sub, common: argparse.ArgumentParser) -> None:
    """Register verify on the `gmid` parser."""
    config_only = options(socket=False)  # verify reads the archive and the index itself
    p = command(
        sub,
        "verify",
        "check the archive folder against the index, exit 1 if not",
        "gmid verify --quick",
        parents=[config_only],
    )
    p.add_argument("--repair", action="store_true", help="fix what is safe (daemon stopped)")
    p.add_argument("--quick", action="store_true", help="compare sizes, do not hash indexed files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_verify)
