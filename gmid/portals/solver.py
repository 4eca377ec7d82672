"""The captcha solver command: a program of the user's choice answers captchas first.

`captcha_solver: {command: "...", timeout: 120s}` in the config (and per portal, which
overrides it; a portal's `captcha_solver: false` turns it off). The command runs with
`/bin/sh -c` like a secret command: it is the user's own config, and nothing a portal sent is
ever put into it. It gets a JSON description of the captcha on stdin, one object:

    {"kind": "token", "portal": "shop", "widget": "recaptcha", "site_key": "6Lc...",
     "page_url": "https://shop.example/login", "invisible": false, "prompt": "...",
     "retry_message": null}
    {"kind": "image", "portal": "shop", "media_type": "image/png", "image": "<base64>",
     "prompt": "...", "retry_message": null}

and prints the answer on stdout (surrounding whitespace is removed). An exit status other than
0, an empty answer or the timeout mean it failed: the log says so, with the first line of its
stderr, and a human is asked through the challenge broker as if there were no solver. Answers
are never logged. `retry_message` is the portal's words about the previous answer it refused.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from connectors.base import CaptchaRequest, CodeRequest, TokenRequest
from gmid import shell
from gmid.config.portals import PortalConfig, SolverConfig
from gmid.portals.challenges.broker import ChallengeBroker

logger = logging.getLogger(__name__)

MAX_ANSWER = 100_000  # characters; tokens are a few thousand at most
Request = CodeRequest | CaptchaRequest | TokenRequest


def solver_for(portal: PortalConfig, default: SolverConfig | None) -> SolverConfig | None:
    """The solver a portal uses: its own, else the global one; None for none."""
    solver = portal.captcha_solver if portal.captcha_solver is not None else default
    return solver if solver is not None and solver.command else None


def asker(
    broker: ChallengeBroker,
    portal: str,
    solver: SolverConfig | None,
    *,
    totp: Callable[[], str] | None,
    expiry: Callable[[], float],
    progress: Callable[[str], None],
) -> Callable[[Request], str]:
    """Return the `ask` of a portal run: captchas go to the solver first, then to a human."""

    def ask(request: Request) -> str:
        if solver is not None and isinstance(request, CaptchaRequest | TokenRequest):
            progress("asking the captcha solver")
            answer = solve(solver, portal, request, min(solver.timeout, expiry()))
            if answer is not None:
                return answer
            progress("waiting for the captcha to be solved by hand")
        return broker.ask(portal, request, totp=totp, expiry=expiry())

    return ask


def describe(portal: str, request: CaptchaRequest | TokenRequest) -> dict[str, Any]:
    """The JSON object the solver reads."""
    if isinstance(request, TokenRequest):
        return {
            "kind": "token",
            "portal": portal,
            "widget": request.widget,
            "site_key": request.site_key,
            "page_url": request.page_url,
            "invisible": request.invisible,
            "prompt": request.prompt,
            "retry_message": request.retry_message,
        }
    return {
        "kind": "image",
        "portal": portal,
        "media_type": request.media_type,
        "image": base64.b64encode(request.image).decode("ascii"),
        "prompt": request.prompt,
        "retry_message": request.retry_message,
    }


def solve(
    solver: SolverConfig, portal: str, request: CaptchaRequest | TokenRequest, timeout: float
) -> str | None:
    """Run the solver; return its answer, or None (logged, without the answer) if it failed."""
    data = describe(portal, request)
    what = f"{data['widget']} check" if data["kind"] == "token" else "captcha image"
    answer, problem = _run(solver.command or "", json.dumps(data).encode(), timeout)
    if answer is None:
        logger.warning("portal %s: the captcha solver %s; asking a human instead", portal, problem)
        return None
    logger.info("portal %s: the captcha solver answered the %s", portal, what)
    return answer


def _run(command: str, stdin: bytes, timeout: float) -> tuple[str | None, str]:
    """Run the command; return (answer, ""), or (None, what went wrong: never the answer)."""
    try:
        done = shell.run(command, stdin, timeout)
    except OSError as e:
        return None, f"could not be started: {e.strerror}"
    except shell.CommandTimeout:
        return None, f"did not answer within {timeout:g} s"
    said = f": {line}" if (line := done.first_error_line()) else ""
    if done.returncode != 0:
        return None, f"exited {done.returncode}{said}"
    try:
        answer = done.stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "printed something that is not UTF-8 text"
    if not answer:
        return None, f"printed no answer{said}"
    if len(answer) > MAX_ANSWER:
        return None, f"printed more than {MAX_ANSWER} characters"
    return answer, ""
