"""Hostile control clients against a real daemon: huge numbers, piles of subscriptions."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from gmid.control.client import ControlClient
from tests.conftest import crowded_daemon
from tests.support.mails import invoice_mail, make_pdf


def _connect(daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(daemon.socket))
    return sock


def _request(id_: int, method: str, **params) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()


def _messages(sock: socket.socket, until: float) -> list[dict]:
    """Every message the daemon sends on sock until the deadline (time.monotonic)."""
    buf = b""
    while (left := until - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
    return [json.loads(line) for line in buf.splitlines() if line.strip()]


def test_an_offset_beyond_sqlite_integers_is_refused_not_a_traceback(daemon):
    with _connect(daemon) as sock:
        sock.sendall(_request(1, "documents.list", offset=2**64) + b"\n")
        sock.sendall(_request(2, "documents.list", offset=2**63 - 1) + b"\n")
        answers = {m["id"]: m for m in _messages(sock, time.monotonic() + 3)}
    assert answers[1]["error"]["code"] == -32602
    assert "offset must be a whole number" in answers[1]["error"]["message"]
    assert answers[2]["result"]["documents"] == []
    assert "Traceback" not in daemon.log_text()


def test_one_subscription_per_connection(daemon):
    with _connect(daemon) as sock:
        for i in range(200):
            sock.sendall(_request(i, "subscribe", types=["document.added"]) + b"\n")
        answers = _messages(sock, time.monotonic() + 2)
        assert sum(1 for m in answers if "result" in m) == 200
        raw = invoice_mail(
            sender="rechnung@telekom.example",
            subject="Rechnung",
            pdfs=[("r.pdf", make_pdf("subscribed"))],
        )
        assert daemon.send(raw)[0] == 250
        pushed = [m for m in _messages(sock, time.monotonic() + 3) if m.get("method") == "event"]
    # Each subscribe replaced the one before: the document comes once, not 200 times.
    assert [m["params"]["type"] for m in pushed] == ["document.added"]


@pytest.fixture
def crowded():
    """A daemon with few file descriptors and a small cap on control connections."""
    with crowded_daemon("control", "max_connections: 16") as d:
        yield d


def test_idle_control_clients_do_not_lock_out_status(crowded):
    idle = []
    try:
        for _ in range(600):  # twice the daemon's file descriptors
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            idle.append(sock)
            _connect_when_room(sock, crowded.socket)
        time.sleep(0.5)  # the daemon takes in what waits in its backlog
        for _ in range(3):
            started = time.monotonic()
            status = asyncio.run(asyncio.wait_for(_status(crowded), 5))
            assert status.pid == crowded.proc.pid
            assert time.monotonic() - started < 1
    finally:
        for sock in idle:
            sock.close()
    log = crowded.log_text()
    assert "out of system resource" not in log
    assert log.count("too many control connections") == 1, log


def _connect_when_room(sock: socket.socket, path) -> None:
    """Connect, waiting while the daemon's backlog is full (a daemon out of file descriptors
    accepts nothing: then this fails)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return sock.connect(str(path))
        except BlockingIOError:
            assert time.monotonic() < deadline, "the daemon accepts no more connections"
            time.sleep(0.01)


async def _status(daemon):
    async with await ControlClient.connect(daemon.socket) as client:
        return await client.status()
