"""The control methods about what portals wait for: `challenges.list`, `challenge.answer`."""

from __future__ import annotations

from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services


async def challenges_list(s: Services, params: Params, conn: Connection) -> list[p.ChallengeInfo]:
    """The codes, captchas and approvals portals are waiting for, oldest first."""
    return [challenge.info() for challenge in s.broker.pending()]


async def challenge_answer(s: Services, params: Params, conn: Connection) -> p.ChallengeInfo:
    """Answer a challenge, by its id or by its portal's name (NotFound: none, or several)."""
    key = check.text(params, "key")
    answer = check.text(params, "answer")
    try:
        return s.broker.answer(key, answer).info()
    except ValueError as e:  # nothing left of the answer once cleaned
        raise InvalidParams(str(e)) from None
