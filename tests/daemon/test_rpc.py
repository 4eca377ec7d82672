"""The control server's answers to what its methods raise: typed errors, each to its code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gmid.control import protocol as p
from gmid.daemon.rpc.server import Connection, ControlServer
from gmid.errors import Busy, GmidError, NotFound


async def _missing_portal(params, conn):
    raise NotFound("no portal named 'nope' (known: energie)")


async def _running(params, conn):
    raise Busy("a download of energie is under way; try again when it has ended")


async def _refused(params, conn):
    raise GmidError("could not write the change: disk full")


async def _bug(params, conn):
    return {"portal": "energie"}["name"]  # a KeyError: a bug, not a missing portal


METHODS = {
    "missing": _missing_portal,
    "running": _running,
    "refused": _refused,
    "bug": _bug,
}


async def _ask(method: str) -> dict:
    conn = Connection(ControlServer(Path("/nonexistent/gmid.sock"), METHODS), None, None)
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode()
    return (await conn.handle(line))["error"]


@pytest.mark.parametrize(
    ("method", "code", "message"),
    [
        ("missing", p.NOT_FOUND, "no portal named 'nope' (known: energie)"),
        ("running", p.BUSY, "a download of energie is under way; try again when it has ended"),
        ("refused", p.INTERNAL_ERROR, "could not write the change: disk full"),
    ],
)
async def test_typed_errors_become_their_codes(method, code, message):
    assert await _ask(method) == {"code": code, "message": message}


async def test_a_key_error_is_an_internal_error_not_a_missing_portal(caplog):
    error = await _ask("bug")
    assert error == {"code": p.INTERNAL_ERROR, "message": "bug failed; see the daemon's log"}
    assert "control method bug failed" in caplog.text and "KeyError: 'name'" in caplog.text
