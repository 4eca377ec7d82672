"""The control server's answers to what its methods raise: typed errors, each to its code."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest

from gmid.control import protocol as p
from gmid.daemon.rpc.params import InvalidParams
from gmid.daemon.rpc.server import Connection, ControlServer
from gmid.errors import Busy, GmidError, NotFound


async def _missing_portal(services, params, conn):
    raise NotFound("no portal named 'nope' (known: energie)")


async def _running(services, params, conn):
    raise Busy("a download of energie is under way; try again when it has ended")


async def _refused(services, params, conn):
    raise GmidError("could not write the change: disk full")


async def _bug(services, params, conn):
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


async def test_invalid_params_carry_their_problems():
    async def refused(services, params, conn):
        raise InvalidParams("nothing was written", {"problems": ["x.yaml:2: name: taken"]})

    conn = Connection(ControlServer(Path("/nonexistent/gmid.sock"), {"add": refused}), None, None)
    answer = await conn.handle(b'{"jsonrpc": "2.0", "id": 7, "method": "add"}')
    assert answer["id"] == 7 and answer["error"] == {
        "code": p.INVALID_PARAMS,
        "message": "nothing was written",
        "data": {"problems": ["x.yaml:2: name: taken"]},
    }


async def test_an_answer_is_encoded_once_by_the_server():
    async def portals(services, params, conn):
        return [p.PortalInfo("energie", "Demo Energie", "form", True, "ok")]

    conn = Connection(ControlServer(Path("/x.sock"), {"portals.list": portals}), None, None)
    answer = await conn.handle(b'{"jsonrpc": "2.0", "id": 1, "method": "portals.list"}')
    [portal] = answer["result"]
    assert portal["name"] == "energie" and portal["last_run"] is None
    assert json.loads(p.encode(answer)) == answer


async def test_a_connection_task_that_fails_is_logged_once_and_a_gone_client_not_at_all(caplog):
    """Tasks of a connection (the event pump of `subscribe`, which `fetch --wait` uses) end
    with ConnectionResetError when their client dies mid-push: no "Task exception was never
    retrieved" traceback in the log. A real failure is logged once, as gmid's own line."""

    async def push_to_a_dead_client():
        raise ConnectionResetError("Connection lost")

    async def bug():
        raise ValueError("a bug in a pump")

    conn = Connection(ControlServer(Path("/nonexistent/gmid.sock"), {}), None, None)
    for coro in (push_to_a_dead_client(), bug()):
        task = conn.spawn(coro)
        await asyncio.wait([task])
    del task, conn
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
    assert "Connection lost" not in caplog.text
    assert caplog.text.count("a task of a control connection failed") == 1
    assert "ValueError: a bug in a pump" in caplog.text
