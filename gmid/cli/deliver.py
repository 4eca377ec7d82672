"""The `gmid outbox` and `gmid deliver` commands: documents on their way to their destinations."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gmid.cli.common import Clock, clock, command, cut, plural, print_table, with_client
from gmid.control.protocol import OutboxPage


def cmd_outbox(args: argparse.Namespace) -> int:
    states = ["pending", "failed", "done"] if args.done else None

    async def ask(client) -> tuple[OutboxPage, Clock]:
        page = await client.outbox(destination=args.destination, states=states, limit=args.limit)
        return page, await clock(client)

    page, times = asyncio.run(with_client(args, ask))
    if args.json:
        print(json.dumps(page.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if not page.destinations:
        print("no destination in deliver: (see docs/delivery.md)")
        return 0
    for d in page.destinations:
        line = f"{d.name} ({d.type}): {d.pending} pending, {d.failed} failed, {d.done} delivered"
        if d.paused_until:
            line += f"; paused until {times.at(d.paused_until)}"
        print(line)
    if not page.items:
        return 0
    table = [("DESTINATION", "DOC", "STATE", "TRIES", "WHEN", "DOCUMENT", "WHY / WHERE")]
    for item in page.items:
        when = times.at(item.next_try) if item.next_try else ""
        detail = (item.reference or "") if item.state == "done" else (item.error or "")
        table.append(
            (
                item.destination,
                str(item.document_id),
                item.state,
                str(item.attempts),
                when,
                cut(item.path, 40),
                detail,
            )
        )
    print()
    print_table(table)
    print(times.note())
    return 1 if any(item.state == "failed" for item in page.items) else 0


def cmd_deliver(args: argparse.Namespace) -> int:
    if args.retry:
        result = asyncio.run(with_client(args, lambda c: c.retry_deliveries(args.destination)))
        print(f"{args.destination}: {plural(result.queued, 'document')} to try again now")
        return 0
    if not args.all and args.since is None:
        print("gmid deliver: say which documents: --all, --since DATE or --retry", file=sys.stderr)
        return 2
    since = None if args.all else args.since
    result = asyncio.run(with_client(args, lambda c: c.deliver(args.destination, since=since)))
    print(
        f"{args.destination}: {plural(result.queued, 'document')} queued "
        "(documents queued before are not queued again); `gmid outbox` shows how it goes"
    )
    return 0


def add_deliver_commands(sub, common: argparse.ArgumentParser) -> None:
    """Register `gmid outbox` and `gmid deliver` on the `gmid` parser."""
    p = command(
        sub,
        "outbox",
        "documents on their way to the destinations of deliver:, and why some are not there",
        "gmid outbox --destination nextcloud",
        parents=[common],
        description="Show each destination of deliver: with how many documents are pending, "
        "failed and delivered, and the pending and failed ones with the destination's own "
        "words at the last failure. Exit 1 when a delivery failed for good.",
    )
    p.add_argument("--destination", metavar="NAME", help="only this destination")
    p.add_argument("--done", action="store_true", help="list the delivered documents too")
    p.add_argument("--limit", type=int, default=200, help="at most this many rows (200)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_outbox)

    p = command(
        sub,
        "deliver",
        "send documents filed before to a destination, or try failed ones again",
        "gmid deliver nextcloud --since 2026-01-01",
        parents=[common],
        description="Queue documents that were filed before the destination was configured "
        "(it gets what is filed from then on by itself): --all of them, or those dated "
        "--since a day. Documents queued for it before are never sent twice. --retry tries "
        "the failed ones again now.",
    )
    p.add_argument("destination", help="the destination's name in deliver:")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every document of the archive")
    which.add_argument("--since", metavar="DATE", help="documents dated this day or later")
    which.add_argument("--retry", action="store_true", help="the failed ones, again now")
    p.set_defaults(func=cmd_deliver)
