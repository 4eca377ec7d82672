"""The `gmid` commands about portals: list, download, answer their codes, suggest new ones."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime

from gmid.cli.common import Clock, clock, command, cut, print_table, with_client
from gmid.control.protocol import PortalInfo
from gmid.errors import GmidError


def cmd_portals(args: argparse.Namespace) -> int:
    portals, times = asyncio.run(with_client(args, _portals))
    if args.json:
        print(json.dumps([p.to_dict() for p in portals], indent=2, ensure_ascii=False))
        return 0
    if not portals:
        print("no portals configured")
        return 0
    table = [("PORTAL", "COMPANY", "STATE", "NEXT RUN", "LAST RUN")]
    for p in portals:
        last = p.last_run
        when = times.at(last.finished_at) if last else "never"
        said = f" ({last.message})" if last and last.message else ""
        state = p.progress if p.state == "running" and p.progress else p.state
        planned = times.at(p.next_run) if p.next_run else "-"
        table.append((p.name, cut(p.company, 24), state, planned, when + said))
    print_table(table)
    print(times.note())
    return 0


async def _portals(client) -> tuple[list[PortalInfo], Clock]:
    return await client.portals(), await clock(client)


def cmd_challenges(args: argparse.Namespace) -> int:
    pending = asyncio.run(with_client(args, lambda c: c.challenges()))
    if args.json:
        print(json.dumps([c.to_dict() for c in pending], indent=2, ensure_ascii=False))
        return 0
    if not pending:
        print("no portal is waiting for a code")
        return 0
    for c in pending:
        print(describe_challenge(c))
    return 0


def describe_challenge(c) -> str:
    medium = f" ({c.medium})" if c.medium and c.medium != "unknown" else ""
    medium = f" ({c.widget})" if c.kind == "token" and c.widget else medium
    lines = [f"{c.portal}: {c.kind}{medium}: {c.prompt}  [id {c.id}, {int(c.seconds_left)} s left]"]
    if c.retry_message:
        lines.append(f"  the portal said: {c.retry_message}")
    if c.image_path:
        lines.append(f"  image: {c.image_path}")
    lines += [f"  {line}" for line in c.token_steps()]
    answer = "TOKEN" if c.kind == "token" else "ANSWER"
    lines.append(f"  answer with: gmid code {c.portal} {answer}")
    return "\n".join(lines)


def cmd_code(args: argparse.Namespace) -> int:
    answer = args.answer
    if answer is None:
        answer = getpass.getpass(f"code for {args.portal}: ")
    verdict = asyncio.run(with_client(args, lambda c: _answer(c, args.portal, answer)))
    print(verdict.said)
    return verdict.exit_code


@dataclass(frozen=True)
class Verdict:
    """What became of an answer: the line to print and the exit code."""

    said: str
    exit_code: int = 0


VERDICT_WAIT = 60.0  # seconds; a portal that takes longer is followed in `gmid portals`


async def _answer(client, key: str, answer: str) -> Verdict:
    """Answer a challenge and wait for the portal's verdict: asked again (refused), the run
    going on or ending (taken), or no word within VERDICT_WAIT."""
    events = await client.subscribe(["challenge.pending", "portal.progress", "portal.finished"])
    try:
        challenge = await client.answer(key, answer)
        portal = challenge.portal
        async with asyncio.timeout(VERDICT_WAIT):
            async for event in events:
                if event.data.get("portal") == portal:
                    verdict = _verdict(portal, challenge.kind, event)
                    if verdict is not None:
                        return verdict
    except TimeoutError:
        return Verdict(f"{portal}: answer given; the portal has not said yet (`gmid portals`)")
    finally:
        await events.aclose()
    return Verdict(f"{portal}: answer given; the daemon went away before the portal said")


def _verdict(portal: str, kind: str, event) -> Verdict | None:
    """The verdict an event of the portal's brings, if any."""
    data = event.data
    if event.type == "challenge.pending" and data.get("retry_message"):
        return Verdict(
            f"{portal}: the portal refused the {kind}: {data['retry_message']}\n"
            f"  it asks again: gmid code {portal} ANSWER",
            exit_code=1,
        )
    if event.type == "challenge.pending":  # a new question: the one answered was taken
        return Verdict(
            f"{portal}: the portal took the {kind}; it now asks for a {data.get('kind')}: "
            f"{data.get('prompt')}\n  answer with: gmid code {portal} ANSWER"
        )
    if event.type == "portal.finished":
        message = f": {data['message']}" if data.get("message") else ""
        taken = data.get("outcome") == "ok"
        return Verdict(f"{portal}: {data.get('outcome')}{message}", 0 if taken else 4)
    if event.type == "portal.progress" and data.get("progress") != "logging in":
        return Verdict(f"{portal}: the portal took the {kind}; {data['progress']}")
    return None


def cmd_fetch(args: argparse.Namespace) -> int:
    if not args.wait:
        asyncio.run(with_client(args, lambda c: c.fetch(args.portal)))
        print(f"{args.portal}: download started; `gmid portals` shows how it goes")
        return 0
    run = asyncio.run(with_client(args, lambda c: _follow(c, args.portal)))
    print(f"{run.portal}: {run.outcome}: {run.message or ''}".rstrip(": "))
    if run.portal_message:
        print(f"  the portal said: {run.portal_message}")
    return 0 if run.outcome == "ok" else 4


async def _follow(client, portal: str):
    """Start a run, print its progress, prompt for codes on a terminal, return how it ended."""
    from gmid.control.protocol import ChallengeInfo, RunInfo

    events = client.events(["portal.progress", "portal.finished", "challenge.pending"])
    subscribed = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    run_task = asyncio.ensure_future(client.fetch(portal, wait=True))
    next_event = subscribed
    try:
        while True:
            done, _ = await asyncio.wait({run_task, next_event}, return_when="FIRST_COMPLETED")
            if run_task in done:
                return run_task.result()
            event = next_event.result()
            next_event = asyncio.ensure_future(anext(events))
            data = event.data
            if data.get("portal", "").casefold() != portal.casefold() and event.type != (
                "challenge.pending"
            ):
                continue
            if event.type == "portal.progress":
                print(f"  {data['progress']}", flush=True)
            elif event.type == "challenge.pending":
                challenge = ChallengeInfo.from_dict(data)
                if challenge.portal.casefold() != portal.casefold():
                    continue
                print(describe_challenge(challenge), flush=True)
                if sys.stdin.isatty():
                    # getpass: a code typed is not echoed (nor left in the scrollback)
                    prompt = f"{challenge.kind} for {portal}: "
                    answer = await asyncio.to_thread(getpass.getpass, prompt)
                    if answer.strip():
                        await client.answer(challenge.id, answer.strip())
            elif event.type == "portal.finished":
                return RunInfo.from_dict(data)
    finally:
        for task in (next_event, run_task):
            task.cancel()
        await events.aclose()


def cmd_suggest(args: argparse.Namespace) -> int:
    login = _suggest_login(args)
    result = asyncio.run(with_client(args, lambda c: c.suggest(args.url, args.domain, **login)))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if not result.form_found:
        print(f"no login form found at {result.login_url}")
    if result.two_step:
        print("a two-step login: the user name on one page, the password on the next")
    if args.login is not None:
        print("logged in" if result.logged_in else "the login did not work (see below)")
    if result.documents_url:
        print(f"invoices listed at {result.documents_url}: `documents:` drafted, check it")
    print(f"draft written to {result.draft} (disabled)")
    if result.note:
        print(f"  {result.note}")
    print("left to fill in:")
    for item in result.todo:
        print(f"  - {item}")
    print(f"edit it, then `gmid check-config`, `gmid reload` and `gmid fetch {result.name} --wait`")
    return 0


def _suggest_login(args: argparse.Namespace) -> dict[str, str]:
    """The user's credentials for `suggest --login`: the password from --password-file, or
    asked without echo on a terminal; never from the command line."""
    if args.login is None:
        if args.password_file is not None:
            raise GmidError("--password-file goes with --login USER")
        return {}
    if args.password_file is not None:
        path = os.path.abspath(os.path.expanduser(args.password_file))
        try:
            with open(path, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as e:
            raise GmidError(f"cannot read the password file {path}: {e.strerror or e}") from e
        return {"username": args.login, "password": password, "password_file": path}
    if not sys.stdin.isatty():
        raise GmidError(
            "--login USER: run it on a terminal to be asked the password, or give --password-file"
        )
    password = getpass.getpass(f"password of {args.login} on the portal: ")
    return {"username": args.login, "password": password}


def cmd_schedule(args: argparse.Namespace) -> int:
    plan = asyncio.run(with_client(args, lambda c: c.schedule(args.days)))
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False))
        return 0
    times = Clock(plan.timezone)

    def local(iso: str) -> str:
        return times.at(iso, "%a %Y-%m-%d %H:%M")

    lines = [
        (datetime.fromisoformat(r.at), f"{local(r.at)}  {r.portal:<20}  {r.reason}")
        for r in plan.runs
    ]
    for q in plan.quiet:
        until = f"-- quiet until {local(q.end)}"
        lines.append((datetime.fromisoformat(q.start), f"{local(q.start)}  {until}  ({q.why})"))
    print(f"the next {args.days} days, times in {plan.timezone}:")
    for _, line in sorted(lines):
        print(line)
    if not plan.runs:
        print("no scheduled runs (portals that are disabled run only by hand)")
    return 0


def add_portal_commands(sub, common: argparse.ArgumentParser) -> None:
    """Register the portal commands on the `gmid` parser."""
    p = command(
        sub,
        "portals",
        "the linked portals and their state",
        "gmid portals --json",
        parents=[common],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_portals)

    p = command(
        sub, "schedule", "the runs of the coming days", "gmid schedule --days 14", parents=[common]
    )
    p.add_argument("--days", type=int, default=7, help="how many days ahead (default 7)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_schedule)

    p = command(
        sub,
        "fetch",
        "start a download from a portal now",
        "gmid fetch telekom --wait",
        parents=[common],
    )
    p.add_argument("portal", help="the portal's name")
    p.add_argument(
        "--wait",
        action="store_true",
        help="follow the run to its end; on a terminal, ask for codes when the portal wants one",
    )
    p.set_defaults(func=cmd_fetch)

    p = command(
        sub,
        "suggest",
        "draft a description of a portal gmid does not know",
        "gmid suggest https://kundencenter.example.de/login",
        parents=[common],
    )
    p.add_argument("url", help="the portal's login page (or home page)")
    p.add_argument("--domain", help="the portal's domain (default: the URL's host, no www.)")
    p.add_argument(
        "--login",
        metavar="USER",
        help="log in as USER (the password is asked) to find the invoices page too",
    )
    p.add_argument(
        "--password-file",
        metavar="FILE",
        help="with --login: read the password from FILE (the draft reads it from there too)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_suggest)

    p = command(
        sub,
        "challenges",
        "codes and captchas portals wait for",
        "gmid challenges",
        parents=[common],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_challenges)

    p = command(
        sub,
        "code",
        "answer a portal's code or captcha",
        "gmid code telekom 123456",
        parents=[common],
    )
    p.add_argument("portal", help="the portal's name (or the challenge id)")
    p.add_argument("answer", nargs="?", help="the code (asked without echo when left out)")
    p.set_defaults(func=cmd_code)
