"""The `gmid` commands that say what the daemon holds: status, mailboxes, documents."""

from __future__ import annotations

import argparse
import asyncio
import json

from gmid.cli.common import Clock, ago, clock, command, cut, plural, print_table, with_client
from gmid.control import protocol as p
from gmid.control.size import human_size


def cmd_status(args: argparse.Namespace) -> int:
    status = asyncio.run(with_client(args, lambda c: c.status()))
    times = Clock(status.timezone)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    for key, value in _daemon_rows(status):
        print(f"{key:<11} {value}")
    if status.archive_failures:
        when = times.at(status.archive_failed_at) if status.archive_failed_at else "?"
        print(
            f"{'FAILING':<11} the archive could not be written: {status.archive_failures} mail(s)"
            " kept in the quarantine instead"
        )
        print(f"{'':<11} last at {when}: {status.archive_error}")
    for portal in status.portals:
        last = portal.last_run
        said = f": {last.message}" if last and last.message and portal.state != "running" else ""
        state = portal.progress if portal.state == "running" and portal.progress else portal.state
        print(f"{'portal':<11} {portal.name}: {state}{said}")
        if portal.next_reason:
            when = f"{times.at(portal.next_run)}, " if portal.next_run else ""
            print(f"{'':<11} next: {when}{portal.next_reason}")
    for box in status.mailboxes:
        print(f"{'mailbox':<11} {box.name}: {_mailbox_line(box, times)}")
    for challenge in status.challenges:
        what = "captcha token" if challenge.kind == "token" else challenge.kind
        print(f"{'waiting':<11} {challenge.portal} asks for a {what}: {challenge.prompt}")
        how = "TOKEN (`gmid challenges` says how)" if challenge.kind == "token" else "ANSWER"
        print(f"{'':<11} answer with: gmid code {challenge.portal} {how}")
    return 0


def _daemon_rows(status: p.Status) -> list[tuple[str, str]]:
    smtp = status.smtp
    return [
        ("daemon", f"gmid {status.version}, pid {status.pid}, up {ago(status.uptime)}"),
        ("config", status.config),
        ("archive", f"{status.archive} ({plural(status.documents, 'document')})"),
        ("quarantine", f"{status.quarantined} mails" if status.quarantined else "empty"),
        (
            "smtp",
            f"listening on {smtp.listen} ({smtp.accepted} accepted, {smtp.rejected} rejected)"
            if smtp.enabled
            else "disabled",
        ),
        ("timezone", status.timezone),
    ]


def _mailbox_line(box: p.MailboxInfo, times: Clock) -> str:
    # the error says what is wrong ("blind": connected but cannot see new mail), or what a user
    # should know of a mailbox that works (mails a server without UIDPLUS left flagged \Deleted)
    state = f"{box.state} ({box.error})" if box.error else box.state
    synced = f", last sync {times.at(box.last_sync)}" if box.last_sync else ""
    mails = f"{box.messages} mail{'' if box.messages == 1 else 's'} seen"
    documents = f"{box.documents} document{'' if box.documents == 1 else 's'} filed"
    return f"{state}{synced}, {mails}, {documents}"


def cmd_mailboxes(args: argparse.Namespace) -> int:
    boxes, times = asyncio.run(with_client(args, _mailboxes))
    if args.json:
        print(json.dumps([b.to_dict() for b in boxes], indent=2, ensure_ascii=False))
        return 0
    if not boxes:
        print("no mailboxes configured")
        return 0
    table = [("MAILBOX", "ACCOUNT", "STATE", "LAST SYNC", "MAILS", "DOCUMENTS")]
    for b in boxes:
        state = f"{b.state} ({cut(b.error, 60)})" if b.error else b.state
        synced = times.at(b.last_sync) if b.last_sync else "never"
        account = cut(f"{b.username}@{b.host}", 40)
        table.append((b.name, account, state, synced, str(b.messages), str(b.documents)))
    print_table(table)
    print(times.note())
    return 0


async def _mailboxes(client) -> tuple[list[p.MailboxInfo], Clock]:
    return await client.mailboxes(), await clock(client)


def cmd_documents(args: argparse.Namespace) -> int:
    if args.json:
        # Complete unless --limit says otherwise: a script must not get part of the archive
        # without knowing it.
        docs = asyncio.run(with_client(args, lambda c: _every_document(c, args)))
        print(json.dumps([d.to_dict() for d in docs], indent=2, ensure_ascii=False))
        return 0
    page, times = asyncio.run(with_client(args, lambda c: _page(c, args)))
    if not page.documents:
        print("no documents" + (" match" if page.total == 0 and _filtered(args) else ""))
        return 0
    # ID: what `gmid show ID` takes; the number and amount as the document says them.
    table = [("ID", "DATE", "NUMBER", "AMOUNT", "COMPANY", "SOURCE", "RECEIVED", "SIZE", "PATH")]
    for d in page.documents:
        received, company = times.at(d.received_at), cut(d.company, 24)
        amount = f"{d.amount} {d.currency or ''}".strip() if d.amount else "-"
        number = cut(d.number, 24) if d.number else "-"
        row = (str(d.id), d.date or "-", number, amount, company, d.source, received)
        table.append((*row, human_size(d.size), d.path))
    print_table(table)
    shown = page.offset + len(page.documents)
    if shown < page.total:
        print(f"({page.offset + 1}-{shown} of {page.total}; --offset {shown} for more)")
    print(times.note())
    return 0


def _query(args: argparse.Namespace) -> dict:
    return {
        "company": args.company,
        "source": args.source,
        "since": args.since,
        "received_since": args.received_since,
        "search": args.search,
    }


async def _page(client, args: argparse.Namespace) -> tuple[p.DocumentPage, Clock]:
    page = await client.documents(**_query(args), limit=args.limit or 50, offset=args.offset)
    return page, await clock(client)


async def _every_document(client, args: argparse.Namespace) -> list[p.Document]:
    """Every matching document from --offset on (up to --limit when given), page by page."""
    found: dict[int, p.Document] = {}
    offset, wanted = args.offset, args.limit
    while wanted is None or len(found) < wanted:
        size = 1000 if wanted is None else min(1000, wanted - len(found))
        page = await client.documents(**_query(args), limit=size, offset=offset)
        found.update((d.id, d) for d in page.documents)  # a new arrival shifts pages: once each
        offset += len(page.documents)
        if not page.documents or offset >= page.total:
            break
    return list(found.values())


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.company, args.source, args.since, args.received_since, args.search))


def add_status_commands(sub, common: argparse.ArgumentParser) -> None:
    """Register status, mailboxes and documents on the `gmid` parser."""
    p = command(
        sub,
        "status",
        "what the running daemon is doing",
        "gmid status -c /etc/gmid/config.yaml",
        parents=[common],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = command(sub, "mailboxes", "the watched IMAP mailboxes", "gmid mailboxes", parents=[common])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_mailboxes)

    p = command(
        sub,
        "documents",
        "list archived documents, newest first",
        "gmid documents --company Telekom --since 2026-01-01",
        parents=[common],
    )
    p.add_argument("--company", help="only this company")
    p.add_argument("--source", choices=["smtp", "imap", "portal"], help="only this source")
    p.add_argument("--since", metavar="DATE", help="dated on or after DATE (YYYY-MM-DD)")
    p.add_argument("--received-since", metavar="DATE", help="arrived on or after DATE (YYYY-MM-DD)")
    p.add_argument(
        "--search",
        metavar="TEXT",
        help="words of the document's text, its number, amount, company or seller",
    )
    p.add_argument(
        "--limit",
        type=int,
        help="how many (default: 50 in the table, every one with --json)",
    )
    p.add_argument("--offset", type=int, default=0, help="skip this many")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_documents)
