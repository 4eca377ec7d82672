"""The control socket: permissions, peer uid, hostile clients, events."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from gmid.control.client import ControlClient
from tests.support.mails import invoice_mail, make_pdf


def _exchange(sock: socket.socket, line: bytes) -> dict:
    sock.sendall(line)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed the connection"
        buf += chunk
    return json.loads(buf)


def test_socket_is_owner_only(daemon):
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.socket.parent.stat().st_mode) == 0o700


def test_status_over_the_socket(daemon):
    status = daemon.status()
    assert status.pid == daemon.proc.pid
    assert status.documents == 0
    assert status.smtp.enabled and status.smtp.listen.startswith("127.0.0.1:")
    assert status.archive == str(daemon.archive)


def test_garbage_gets_errors_and_the_connection_stays_usable(daemon):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(daemon.socket))
        assert _exchange(sock, b"this is not json\n")["error"]["code"] == -32700
        assert _exchange(sock, b"\xff\xfe\x00\x01\n")["error"]["code"] == -32700
        assert _exchange(sock, b"[1, 2, 3]\n")["error"]["code"] == -32600
        assert _exchange(sock, b'{"id": 1, "method": "status"}\n')["error"]["code"] == -32600
        unknown = _exchange(sock, b'{"jsonrpc": "2.0", "id": 2, "method": "rm -rf"}\n')
        assert unknown["error"]["code"] == -32601 and unknown["id"] == 2
        bad = b'{"jsonrpc": "2.0", "id": 3, "method": "documents.list", "params": {"limit": "x"}}\n'
        answer = _exchange(sock, bad)
        assert answer["error"]["code"] == -32602 and "limit" in answer["error"]["message"]
        bad_since = (
            b'{"jsonrpc":"2.0","id":4,"method":"documents.list","params":{"since":"soon"}}\n'
        )
        assert _exchange(sock, bad_since)["error"]["code"] == -32602
        huge = b'{"jsonrpc": "2.0", "id": 5, "method": "status", "x": "' + b"a" * 3_000_000
        assert "too long" in _exchange(sock, huge + b'"}\n')["error"]["message"]
        ok = _exchange(sock, b'{"jsonrpc": "2.0", "id": 6, "method": "status"}\n')
        assert ok["id"] == 6 and ok["result"]["pid"] == daemon.proc.pid
    # A client that vanishes mid-line does not hurt the daemon either.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(daemon.socket))
        sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "meth')
    assert daemon.status().pid == daemon.proc.pid


def test_a_client_that_half_closes_after_asking_still_gets_its_answer(daemon):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(daemon.socket))
        sock.sendall(b'{"jsonrpc": "2.0", "id": 7, "method": "status"}\n')
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert json.loads(data)["id"] == 7


NOBODY_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "status"}\\n')
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.decode())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another uid")
def test_another_uid_is_refused(daemon):
    # The venv's interpreter may sit under /root, out of nobody's reach; the system one is not.
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    run = lambda: subprocess.run(  # noqa: E731
        [python, "-c", NOBODY_CLIENT, str(daemon.socket)],
        user="nobody",
        capture_output=True,
        text=True,
        timeout=20,
        cwd="/",
    )
    # The folder's permissions keep other users out in the first place...
    assert run().stdout.strip() == "EACCES"
    # ...and if someone loosens them, the peer's uid is still checked.
    os.chmod(daemon.socket.parent, 0o755)
    os.chmod(daemon.socket, 0o666)
    result = run()
    assert result.stdout, result.stderr
    answer = json.loads(result.stdout)
    assert answer["error"]["code"] == -32001
    assert "result" not in answer
    assert "refused a control connection from uid" in daemon.log_text()
    assert daemon.status().pid == daemon.proc.pid


def test_events_stream_document_added(daemon):
    async def scenario():
        async with await ControlClient.connect(daemon.socket) as client:
            events = client.events(["document.added"])
            first = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0.2)  # let the subscription land before the mail
            raw = invoice_mail(
                sender="rechnung@telekom.example",
                subject="Rechnung",
                pdfs=[("r.pdf", make_pdf("event test"))],
            )
            code, _ = await asyncio.to_thread(daemon.send, raw)
            assert code == 250
            event = await asyncio.wait_for(first, 10)
            await events.aclose()
            return event

    event = asyncio.run(scenario())
    assert event.type == "document.added"
    assert event.data["document"]["company"] == "Telekom"
    assert event.data["document"]["path"].endswith(".pdf")


def test_second_daemon_on_same_state_refuses_to_start(daemon):
    from tests.conftest import Daemon

    second = Daemon(**{**daemon.__dict__, "proc": None, "log": daemon.dir / "second.log"})
    with pytest.raises(RuntimeError, match="another gmid daemon"):
        second.start(timeout=10)
    assert daemon.status().pid == daemon.proc.pid


def test_a_socket_folder_open_to_others_stops_the_start_before_anything_listens(daemon_dir):
    """The refusal comes first: no SMTP listener opened (and logged) only to be closed."""
    daemon_dir.socket.parent.mkdir(mode=0o755)
    os.chmod(daemon_dir.socket.parent, 0o755)
    with pytest.raises(RuntimeError, match="daemon exited 1"):
        daemon_dir.start()
    log = daemon_dir.log_text()
    assert "must belong to uid" in log and "chmod 700" in log
    assert "SMTP listener" not in log and "Traceback" not in log
    assert not daemon_dir.socket.exists()
