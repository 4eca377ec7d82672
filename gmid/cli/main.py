"""The `gmid` command: run the daemon, check the config, talk to a running daemon."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from gmid import __version__
from gmid.control.size import human_size
from gmid.errors import ConfigError, GmidError

logger = logging.getLogger("gmid")


def _setup_logging(verbose: bool) -> None:
    # journald stamps every line itself; a terminal gets a time of day.
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


def _config_path(args: argparse.Namespace) -> Path:
    from gmid.config.load import default_config_path

    return Path(args.config).expanduser() if args.config else default_config_path()


def _socket_path(args: argparse.Namespace) -> Path:
    """Where the daemon listens: --socket, else the config's control.socket, else the default."""
    from gmid.config.load import default_config_path, default_socket_path, load_config

    if args.socket:
        return Path(args.socket).expanduser()
    if args.config:
        return load_config(_config_path(args)).control.socket
    if default_config_path().exists():
        return load_config(default_config_path()).control.socket
    return default_socket_path()


def cmd_daemon(args: argparse.Namespace) -> int:
    from gmid.config.load import load_config
    from gmid.daemon.serve import serve

    _setup_logging(args.verbose)
    config = load_config(_config_path(args))
    for warning in config.warnings:
        logger.warning("%s", warning)
    asyncio.run(serve(config, demo=args.demo))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from gmid.config.load import load_config

    config = load_config(_config_path(args))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{config.path}: OK ({len(config.companies)} companies, "
        f"{len(config.included_files)} included files)"
    )
    return 0


async def _with_client(args: argparse.Namespace, action):
    from gmid.control.client import ControlClient

    async with await ControlClient.connect(_socket_path(args)) as client:
        return await action(client)


def cmd_status(args: argparse.Namespace) -> int:
    status = asyncio.run(_with_client(args, lambda c: c.status()))
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    smtp = status.smtp
    rows = [
        ("daemon", f"gmid {status.version}, pid {status.pid}, up {_ago(status.uptime)}"),
        ("config", status.config),
        ("archive", f"{status.archive} ({status.documents} documents)"),
        ("quarantine", f"{status.quarantined} mails" if status.quarantined else "empty"),
        (
            "smtp",
            f"listening on {smtp.listen} ({smtp.accepted} accepted, {smtp.rejected} rejected)"
            if smtp.enabled
            else "disabled",
        ),
        ("timezone", status.timezone),
    ]
    for key, value in rows:
        print(f"{key:<11} {value}")
    for portal in status.portals:
        last = portal.last_run
        said = f": {last.message}" if last and last.message and portal.state != "running" else ""
        state = portal.progress if portal.state == "running" and portal.progress else portal.state
        print(f"{'portal':<11} {portal.name}: {state}{said}")
        if portal.next_reason:
            when = f"{_local(portal.next_run)}, " if portal.next_run else ""
            print(f"{'':<11} next: {when}{portal.next_reason}")
    for box in status.mailboxes:
        print(f"{'mailbox':<11} {box.name}: {_mailbox_line(box)}")
    for challenge in status.challenges:
        what = "captcha token" if challenge.kind == "token" else challenge.kind
        print(f"{'waiting':<11} {challenge.portal} asks for a {what}: {challenge.prompt}")
        how = "TOKEN (`gmid challenges` says how)" if challenge.kind == "token" else "ANSWER"
        print(f"{'':<11} answer with: gmid code {challenge.portal} {how}")
    return 0


def _mailbox_line(box) -> str:
    state = f"failing ({box.error})" if box.state == "failing" and box.error else box.state
    synced = f", last sync {_local(box.last_sync)}" if box.last_sync else ""
    mails = f"{box.messages} mail{'' if box.messages == 1 else 's'} seen"
    documents = f"{box.documents} document{'' if box.documents == 1 else 's'} filed"
    return f"{state}{synced}, {mails}, {documents}"


def cmd_mailboxes(args: argparse.Namespace) -> int:
    boxes = asyncio.run(_with_client(args, lambda c: c.mailboxes()))
    if args.json:
        print(json.dumps([b.to_dict() for b in boxes], indent=2, ensure_ascii=False))
        return 0
    if not boxes:
        print("no mailboxes configured")
        return 0
    table = [("MAILBOX", "ACCOUNT", "STATE", "LAST SYNC", "MAILS", "DOCUMENTS")]
    for b in boxes:
        state = f"failing ({_cut(b.error, 60)})" if b.state == "failing" and b.error else b.state
        synced = _local(b.last_sync) if b.last_sync else "never"
        account = _cut(f"{b.username}@{b.host}", 40)
        table.append((b.name, account, state, synced, str(b.messages), str(b.documents)))
    _print_table(table)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    if asyncio.run(_with_client(args, lambda c: c.reload())):
        print("the daemon reloaded its config")
        return 0
    print("the daemon refused the new config and kept the old one; see `gmid check-config`")
    return 1


def cmd_documents(args: argparse.Namespace) -> int:
    page = asyncio.run(
        _with_client(
            args,
            lambda c: c.documents(
                company=args.company,
                source=args.source,
                since=args.since,
                text=args.search,
                limit=args.limit,
                offset=args.offset,
            ),
        )
    )
    if args.json:
        print(json.dumps([d.to_dict() for d in page.documents], indent=2, ensure_ascii=False))
        return 0
    if not page.documents:
        print("no documents" + (" match" if page.total == 0 and _filtered(args) else ""))
        return 0
    table = [("RECEIVED", "COMPANY", "SOURCE", "SIZE", "PATH")]
    for d in page.documents:
        received, company = _local(d.received_at), _cut(d.company, 24)
        table.append((received, company, d.source, human_size(d.size), d.path))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4]
        )
    shown = page.offset + len(page.documents)
    if shown < page.total:
        print(f"({page.offset + 1}-{shown} of {page.total}; --offset {shown} for more)")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.company, args.source, args.since, args.search))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{v}{u}" for v, u in parts if v][:2]
    return "".join(shown) or "0s"


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _print_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def cmd_verify(args: argparse.Namespace) -> int:
    from gmid.config.load import load_config
    from gmid.verify.run import run

    config = load_config(_config_path(args))
    return run(config, quick=args.quick, repair=args.repair, as_json=args.json)


def cmd_demo_portal(args: argparse.Namespace) -> int:
    from gmid.demo.portal import DemoPortal, make_server

    _setup_logging(False)
    try:
        server = make_server(DemoPortal(code=args.code, captcha=args.captcha), port=args.port)
    except OSError as e:
        print(f"gmid: cannot listen on 127.0.0.1:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    port = server.server_address[1]
    print(f"demo portal on http://127.0.0.1:{port}/ (user demo, password demo)", flush=True)
    try:
        server.serve_forever(0.1)
    finally:
        server.server_close()
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.app import main as tui_main

    passed = [("-c", args.config), ("--socket", args.socket)]
    return tui_main([part for flag, value in passed if value for part in (flag, value)])


def build_parser() -> argparse.ArgumentParser:
    from gmid.cli.portals import add_portal_commands
    from gmid.cli.session import add_session_commands

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file (default: $CONFIGURATION_DIRECTORY/config.yaml under systemd, "
        "else ~/.config/gmid/config.yaml)",
    )
    common.add_argument(
        "--socket",
        metavar="PATH",
        help="the daemon's control socket (default: the config's control.socket)",
    )
    parser = argparse.ArgumentParser(
        prog="gmid",
        description="Self-hosted invoice collector: portals and e-mail in, one archive out.",
    )
    parser.add_argument("--version", action="version", version=f"gmid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("daemon", parents=[common], help="run the daemon in the foreground")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--demo",
        action="store_true",
        help="also feed the daemon sample invoice mails over SMTP (a local demo, no accounts)",
    )
    p.set_defaults(func=cmd_daemon)

    p = sub.add_parser(
        "check-config", parents=[common], help="report every problem in the config, exit 1 if any"
    )
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("status", parents=[common], help="what the running daemon is doing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("mailboxes", parents=[common], help="the watched IMAP mailboxes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_mailboxes)

    p = sub.add_parser("reload", parents=[common], help="make the daemon read its config again")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("documents", parents=[common], help="list archived documents, newest first")
    p.add_argument("--company", help="only this company")
    p.add_argument("--source", choices=["smtp", "imap", "portal"], help="only this source")
    p.add_argument("--since", metavar="DATE", help="received on or after DATE (YYYY-MM-DD)")
    p.add_argument("--search", metavar="TEXT", help="text in the path, company, name or number")
    p.add_argument("--limit", type=int, default=50, help="how many (default 50, max 1000)")
    p.add_argument("--offset", type=int, default=0, help="skip this many")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_documents)

    add_portal_commands(sub, common)
    add_session_commands(sub, common)

    p = sub.add_parser(
        "verify", parents=[common], help="check the archive folder against the index, exit 1 if not"
    )
    p.add_argument("--repair", action="store_true", help="fix what is safe (daemon stopped)")
    p.add_argument("--quick", action="store_true", help="compare sizes, do not hash indexed files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo-portal", help="serve the demo supplier portal on loopback")
    p.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (default 8089)")
    p.add_argument("--code", help="send this code instead of a random one")
    p.add_argument(
        "--captcha",
        choices=("recaptcha", "hcaptcha", "turnstile"),
        help="guard the login with a demo captcha widget of this kind",
    )
    p.set_defaults(func=cmd_demo_portal)

    p = sub.add_parser("tui", parents=[common], help="the terminal dashboard (same as gmid-tui)")
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
