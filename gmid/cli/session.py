"""The `gmid session` commands: a portal's saved session, imported from a browser or forgotten."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gmid.cli.common import Clock, clock, command, options, plural, print_table, with_client
from gmid.control.protocol import SessionImported, SessionInfo


def cmd_session_import(args: argparse.Namespace) -> int:
    from gmid.control.cookiefile import read_file
    from gmid.errors import ControlError

    text = read_file(args.file)  # here: the daemon opens no path a client names
    try:
        result = asyncio.run(with_client(args, lambda c: c.import_session(args.portal, text)))
    except ControlError as e:
        print(f"gmid: {e}", file=sys.stderr)
        problems = e.data.get("problems") if isinstance(e.data, dict) else None
        for problem in problems or []:
            print(f"  {problem}", file=sys.stderr)
        return e.exit_code
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    names = ", ".join(c.name for c in result.cookies[:12])
    more = ", ..." if len(result.cookies) > 12 else ""
    hosts = ", ".join(result.hosts)
    print(
        f"{result.portal}: session imported: {plural(result.imported, 'cookie')} "
        f"for {hosts} ({names}{more})"
    )
    for line in _dropped(result):
        print(f"  {line}")
    print(f"  stored in {result.file} (owner-only: the cookies open your account)")
    print(
        f"the next run uses it without logging in while the portal accepts it: "
        f"`gmid fetch {result.portal} --wait`"
    )
    return 0


def _dropped(result: SessionImported) -> list[str]:
    lines = []
    others = result.other_domains
    if others:
        n = result.dropped_other or sum(others.values())
        listed = ", ".join(f"{d} ({k})" for d, k in list(others.items())[:8])
        more = ", ..." if n > sum(list(others.values())[:8]) else ""
        lines.append(f"dropped {plural(n, 'cookie')} of other sites: {listed}{more}")
    expired = result.expired
    if expired:
        n = result.dropped_expired or len(expired)
        more = ", ..." if n > len(expired) else ""
        lines.append(f"dropped {plural(n, 'expired cookie')}: {', '.join(expired)}{more}")
    if result.bad_lines:
        lines.append(f"skipped {plural(result.bad_lines, 'line')} not understood:")
        lines += [f"  {problem}" for problem in result.problems]
    return lines


def cmd_session_clear(args: argparse.Namespace) -> int:
    result = asyncio.run(with_client(args, lambda c: c.clear_session(args.portal)))
    if result.cleared:
        print(f"{result.portal}: saved session forgotten; the next run logs in")
    else:
        print(f"{result.portal}: there was no saved session")
    return 0


def cmd_session_show(args: argparse.Namespace) -> int:
    result, times = asyncio.run(with_client(args, lambda c: _session(c, args.portal)))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    portal = result.portal
    if not result.saved:
        print(f"{portal}: no saved session; the next run logs in")
        return 0
    if result.error:
        print(f"{portal}: the saved session in {result.file} is {result.error}")
        return 1
    cookies = result.cookies
    when = times.at(result.saved_at) if result.saved_at else "at an unknown time"
    print(f"{portal}: {plural(len(cookies), 'cookie')}, saved {when} in {result.file}")
    if not cookies:
        return 0
    table = [("NAME", "DOMAIN", "PATH", "EXPIRES", "FLAGS")]
    for c in cookies:
        if c.expires is None:
            expires = "end of session"
        else:
            expires = times.stamp(c.expires)
            expires += " (expired)" if c.expired else ""
        flags = " ".join(f for f, on in (("secure", c.secure), ("httponly", c.http_only)) if on)
        table.append((c.name, c.domain, c.path, expires, flags or "-"))
    print_table(table)
    print(times.note())
    return 0


async def _session(client, portal: str) -> tuple[SessionInfo, Clock]:
    return await client.session(portal), await clock(client)


def add_session_commands(sub, common: argparse.ArgumentParser) -> None:
    """Register `gmid session import|clear|show` on the `gmid` parser."""
    session = command(
        sub,
        "session",
        "a portal's saved session: import a browser's cookies, show, forget",
        "gmid session import telekom ~/Downloads/cookies.txt",
        parents=[common],
    )
    verbs = session.add_subparsers(dest="verb", required=True, metavar="ACTION")
    # -c and --socket before or after the action: after it, a default must not undo one before.
    again = options(argparse.SUPPRESS)

    p = command(
        verbs,
        "import",
        "use cookies exported from your browser (cookies.txt) as the portal's session",
        "gmid session import telekom ~/Downloads/cookies.txt",
        parents=[again],
        description="Make the cookies of a browser in which you are logged in to the portal "
        "its saved session: the next run uses them instead of logging in. Export them in the "
        "Netscape cookies.txt format (a browser extension such as 'Get cookies.txt LOCALLY'). "
        "Only the cookies for the portal's site are kept; they are as secret as a password.",
    )
    p.add_argument("portal", help="the portal's name")
    p.add_argument("file", help="the cookies.txt file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_session_import)

    p = command(
        verbs,
        "clear",
        "forget the portal's saved session (it logs in again)",
        "gmid session clear telekom",
        parents=[again],
    )
    p.add_argument("portal", help="the portal's name")
    p.set_defaults(func=cmd_session_clear)

    p = command(
        verbs,
        "show",
        "the saved session's cookies (names, never values)",
        "gmid session show telekom",
        parents=[again],
    )
    p.add_argument("portal", help="the portal's name")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_session_show)
