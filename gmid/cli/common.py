"""What the `gmid` commands share: the config and socket options, the client, how they print."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from gmid.control.client import ControlClient

T = TypeVar("T")


def options(default: object = None, *, socket: bool = True) -> argparse.ArgumentParser:
    """The options every command takes, -c and (for those that talk to the daemon) --socket,
    as a parent parser.

    `default` is what an option left out sets; argparse.SUPPRESS sets nothing, so that a
    subcommand's parser does not undo what was given before its name.
    """
    parent = argparse.ArgumentParser(add_help=False, argument_default=default)
    parent.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file (default: $CONFIGURATION_DIRECTORY/config.yaml under systemd, "
        "else ~/.config/gmid/config.yaml)",
    )
    if socket:
        parent.add_argument(
            "--socket",
            metavar="PATH",
            help="the daemon's control socket (default: the config's control.socket)",
        )
    return parent


def command(
    sub,
    name: str,
    summary: str,
    example: str,
    *,
    parents: Sequence[argparse.ArgumentParser] = (),
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add a subcommand whose --help says what it does and shows an example of it."""
    return sub.add_parser(
        name,
        parents=list(parents),
        help=summary,
        # Raw, so that the example keeps its line: the description is wrapped here instead.
        description=textwrap.fill(description or summary[0].upper() + summary[1:] + ".", 79),
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def setup_logging(verbose: bool) -> None:
    """Log to stderr: with the time of day on a terminal (journald stamps every line itself)."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if sys.stderr.isatty():
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format=fmt,
        datefmt="%H:%M:%S",
    )
    # aioimaplib logs every byte at debug level (mail bodies; the password is masked only
    # as typed, not as quoted on the wire): gmid says what happens on its connections itself.
    logging.getLogger("aioimaplib").setLevel(logging.WARNING)


def config_path(args: argparse.Namespace) -> Path:
    """The config file: -c, else the default location."""
    from gmid.config.load import default_config_path

    return Path(args.config).expanduser() if args.config else default_config_path()


def socket_path(args: argparse.Namespace) -> Path:
    """Where the daemon listens: --socket, else the config's control.socket, else the default."""
    from gmid.control import paths

    if args.socket:
        return Path(args.socket).expanduser()
    config = config_path(args)
    if not args.config and not config.exists():
        return paths.default_socket_path()
    # Only control.socket is read: a config broken elsewhere must not keep us from the daemon.
    return paths.socket_from_config(config)


class Clock:
    """Times as the daemon's config sees them: every time shown is in its time zone."""

    def __init__(self, zone: str):
        self.zone = zone
        self.tz = ZoneInfo(zone)

    def at(self, iso: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """An ISO time from the daemon in the config's time zone, to the minute."""
        return datetime.fromisoformat(iso).astimezone(self.tz).strftime(fmt)

    def stamp(self, seconds: float) -> str:
        """A Unix time in the config's time zone, to the minute."""
        return datetime.fromtimestamp(seconds, self.tz).strftime("%Y-%m-%d %H:%M")

    def note(self) -> str:
        """The line that says so, once, below what was shown."""
        return f"(times in {self.zone})"


async def clock(client: ControlClient) -> Clock:
    """The running daemon's clock: the time zone of the config it runs with."""
    return Clock((await client.status()).timezone)


async def with_client(
    args: argparse.Namespace, action: Callable[[ControlClient], Awaitable[T]]
) -> T:
    """Connect to the daemon, do `action(client)` and return what it returns."""
    async with await ControlClient.connect(socket_path(args)) as client:
        return await action(client)


def cut(text: str, width: int) -> str:
    """Cut a text to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def ago(seconds: float) -> str:
    """A duration in its two largest units: "3d4h", "5m12s"."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{v}{u}" for v, u in parts if v][:2]
    return "".join(shown) or "0s"


def plural(n: int, word: str) -> str:
    """A count and its word: "1 cookie", "3 cookies"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_table(table: list[tuple[str, ...]]) -> None:
    """Print rows in aligned columns, the first row the heading; the last column is not padded."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
