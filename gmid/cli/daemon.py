"""The `gmid` commands that run things: the daemon, the config check, a reload, the demo portal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from gmid.cli.common import command, config_path, options, setup_logging, with_client

logger = logging.getLogger("gmid")


def cmd_daemon(args: argparse.Namespace) -> int:
    from gmid.config.load import load_config
    from gmid.daemon.serve import serve

    setup_logging(args.verbose)
    config = load_config(config_path(args))
    for warning in config.warnings:
        logger.warning("%s", warning)
    asyncio.run(serve(config, demo=args.demo))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from gmid.config.load import load_config

    config = load_config(config_path(args))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{config.path}: OK ({len(config.companies)} companies, "
        f"{len(config.included_files)} included files)"
    )
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    answer = asyncio.run(with_client(args, lambda c: c.reload_answer()))
    if answer.reloaded:
        print("the daemon reloaded its config")
        return 0
    reason = answer.reason or "see `gmid check-config`"
    print(f"the daemon refused the new config and kept the old one: {reason}")
    return 1


def cmd_demo_portal(args: argparse.Namespace) -> int:
    from gmid.demo.portal import DemoPortal, make_server

    setup_logging(False)
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


def add_daemon_commands(sub, common: argparse.ArgumentParser) -> None:
    """Register daemon, check-config and reload on the `gmid` parser."""
    config_only = options(socket=False)  # these read the config file, not the socket
    p = command(
        sub,
        "daemon",
        "run the daemon in the foreground",
        "gmid daemon -c /etc/gmid/config.yaml",
        parents=[config_only],
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--demo",
        action="store_true",
        help="also feed the daemon sample invoice mails over SMTP (a local demo, no accounts)",
    )
    p.set_defaults(func=cmd_daemon)

    p = command(
        sub,
        "check-config",
        "report every problem in the config, exit 1 if any",
        "gmid check-config -c ~/.config/gmid/config.yaml",
        parents=[config_only],
    )
    p.set_defaults(func=cmd_check_config)

    p = command(
        sub,
        "reload",
        "make the daemon read its config again",
        "gmid reload -c /etc/gmid/config.yaml",
        parents=[common],
    )
    p.set_defaults(func=cmd_reload)


def add_demo_command(sub) -> None:
    """Register demo-portal on the `gmid` parser."""
    p = command(
        sub,
        "demo-portal",
        "serve the demo supplier portal on loopback",
        "gmid demo-portal --port 8089 --captcha recaptcha",
    )
    p.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (default 8089)")
    p.add_argument("--code", help="send this code instead of a random one")
    p.add_argument(
        "--captcha",
        choices=("recaptcha", "hcaptcha", "turnstile"),
        help="guard the login with a demo captcha widget of this kind",
    )
    p.set_defaults(func=cmd_demo_portal)
