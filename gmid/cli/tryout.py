"""`gmid try NAME`: a portal's description tried step by step in the daemon, recording nothing
(gmid/portals/tryout.py); the codes the portal asks for meanwhile are asked on the terminal."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys

from gmid.cli.common import command, with_client
from gmid.cli.portals import describe_challenge
from gmid.errors import GmidError


def cmd_try(args: argparse.Namespace) -> int:
    from gmid.control.trytext import report_lines

    into = os.path.abspath(os.path.expanduser(args.into)) if args.into else None
    if into is not None and not args.download:
        raise GmidError("--into goes with --download N")
    report = asyncio.run(with_client(args, lambda c: _try(c, args, into)))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(report_lines(report)))
    return 0 if report.outcome == "ok" else 4


async def _try(client, args: argparse.Namespace, into: str | None):
    """Run the trial; meanwhile say what it does (on stderr) and ask for the codes the portal
    wants (on a terminal)."""
    events = await client.subscribe(["challenge.pending", "portal.progress"])
    trial = asyncio.ensure_future(
        client.try_portal(args.portal, download=args.download, into=into, rows=args.rows)
    )
    next_event = asyncio.ensure_future(anext(events))
    try:
        while True:
            done, _ = await asyncio.wait({trial, next_event}, return_when="FIRST_COMPLETED")
            if trial in done:
                return trial.result()
            event = next_event.result()
            next_event = asyncio.ensure_future(anext(events))
            if event.data.get("portal", "").casefold() == args.portal.casefold():
                await _told(client, event)
    finally:
        for task in (next_event, trial):
            task.cancel()
        # the generator is closed once its pending step has ended
        await asyncio.gather(next_event, trial, return_exceptions=True)
        await events.aclose()


async def _told(client, event) -> None:
    """Say the trial's progress; print a code request, and on a terminal ask for the code."""
    from gmid.control.protocol import ChallengeInfo

    if event.type == "portal.progress":
        if event.data.get("trial"):  # not a run's of the same portal
            print(f"  {event.data.get('progress')}", file=sys.stderr, flush=True)
        return
    challenge = ChallengeInfo.from_dict(event.data)
    print(describe_challenge(challenge), file=sys.stderr, flush=True)
    if sys.stdin.isatty():
        prompt = f"{challenge.kind} for {challenge.portal}: "
        answer = await asyncio.to_thread(getpass.getpass, prompt)
        if answer.strip():
            await client.answer(challenge.id, answer.strip())


def add_try_command(sub, common: argparse.ArgumentParser) -> None:
    """Register `gmid try` on the `gmid` parser."""
    p = command(
        sub,
        "try",
        "try a portal's description step by step; records nothing",
        "gmid try stadtwerke --download 1",
        parents=[common],
    )
    p.add_argument("portal", help="the portal's name (a disabled draft too)")
    p.add_argument(
        "--download",
        type=int,
        default=0,
        metavar="N",
        help="download the first N documents listed (default: none)",
    )
    p.add_argument(
        "--into",
        metavar="DIR",
        help="with --download: save them in DIR (default: the daemon's trial folder)",
    )
    p.add_argument(
        "--rows",
        type=int,
        metavar="N",
        help="list at most N documents (default 20)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_try)
