"""Hostile control clients against a real daemon: huge numbers, piles of subscriptions."""

from __future__ import annotations

import json
import socket
import time

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
