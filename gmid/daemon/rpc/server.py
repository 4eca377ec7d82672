"""The control socket: JSON-RPC 2.0 over a Unix socket, owner-only, one JSON object per line.

The server looks a request's method up in its table (gmid/daemon/rpc/methods.py), calls the
handler with the daemon's services, and answers: a protocol payload encoded once here, or the
error code of what the handler raised (InvalidParams, NotFound, Busy; any other error is the
daemon's own, told as an internal error).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gmid.control import protocol as p
from gmid.daemon.rpc.params import InvalidParams
from gmid.errors import Busy, GmidError, NotFound

logger = logging.getLogger(__name__)

# A method: (the daemon's services, the request's params, the connection) -> its answer.
Handler = Callable[[Any, dict[str, Any], "Connection"], Awaitable[Any]]
MAX_IN_FLIGHT = 32  # requests of one connection answered at the same time
FIRST_REQUEST_TIMEOUT = 10.0  # seconds a new connection may stay silent
REFUSED_LOG_INTERVAL = 60.0  # seconds between two log lines about refused connections


def peer_uid(sock: socket.socket) -> int:
    """Return the uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class Connection:
    """One client: reads requests, writes answers and pushed events."""

    def __init__(self, server: ControlServer, reader, writer):
        self.server = server
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self._write_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._answers: set[asyncio.Task] = set()
        self.tasks: set[asyncio.Task] = set()
        # The connection's one event subscription (a `subscribe` replaces the one before it).
        self.subscription: asyncio.Task | None = None
        self.asked = False  # has it sent a request yet? (silent ones make room for others)

    async def send(self, message: dict[str, Any]) -> None:
        """Write one message; answers and events never interleave mid-line."""
        async with self._write_lock:
            self.writer.write(p.encode(message))
            await self.writer.drain()

    async def read_line(self) -> bytes | None:
        """Return the next line, b"" for an over-long one (discarded), None at EOF."""
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            return e.partial or None
        except asyncio.LimitOverrunError:
            # Discard up to and including the next newline so the connection stays usable.
            while True:
                try:
                    await self.reader.readuntil(b"\n")
                    return b""
                except asyncio.LimitOverrunError as e:
                    await self.reader.readexactly(e.consumed)
                except asyncio.IncompleteReadError:
                    return None
        return line

    async def _next_line(self) -> bytes | None:
        """The next line; None too when a new client stays silent for FIRST_REQUEST_TIMEOUT."""
        if self.asked:
            return await self.read_line()
        try:
            line = await asyncio.wait_for(self.read_line(), FIRST_REQUEST_TIMEOUT)
        except TimeoutError:
            return None
        self.asked = True
        return line

    async def serve(self) -> None:
        """Answer requests until the client goes away, several at a time.

        A request that waits (a portal run with `wait`) must not hold up the others on the
        same connection; answers carry their id, so they may come in any order.
        """
        while (line := await self._next_line()) is not None:
            if not line:
                await self.send(p.error(None, p.INVALID_REQUEST, "request line too long"))
                continue
            if not line.strip():
                continue
            await self._slots.acquire()  # a bounded number in flight: reading waits beyond it
            task = asyncio.ensure_future(self._answer(line))
            self.tasks.add(task)
            self._answers.add(task)
            task.add_done_callback(self.tasks.discard)
            task.add_done_callback(self._answers.discard)
        # The client closed its side: what it asked before still gets answered (`socat`-style
        # clients half-close after sending).
        if self._answers:
            await asyncio.gather(*self._answers, return_exceptions=True)

    async def _answer(self, line: bytes) -> None:
        try:
            answer = await self.handle(line)
            if answer is not None:
                await self.send(answer)
        except ConnectionError:
            pass
        finally:
            self._slots.release()

    async def handle(self, line: bytes) -> dict[str, Any] | None:
        """Turn one request line into its answer (None for a notification)."""
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError) as e:
            return p.error(None, p.PARSE_ERROR, f"invalid JSON: {e}")
        if not isinstance(message, dict):
            return p.error(
                None, p.INVALID_REQUEST, "expected a JSON object (batches are not supported)"
            )
        id_ = message.get("id")
        if not isinstance(id_, str | int | type(None)) or isinstance(id_, bool):
            return p.error(None, p.INVALID_REQUEST, "id must be a string, a number or null")
        method = message.get("method")
        params = message.get("params", {})
        if message.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return p.error(id_, p.INVALID_REQUEST, 'expected {"jsonrpc": "2.0", "method": ...}')
        if not isinstance(params, dict):
            return p.error(id_, p.INVALID_PARAMS, "params must be an object")
        handler = self.server.methods.get(method)
        if handler is None:
            return p.error(id_, p.METHOD_NOT_FOUND, f"unknown method {method!r}")
        try:
            value = await handler(self.server.context, params, self)
        except InvalidParams as e:
            return p.error(id_, p.INVALID_PARAMS, str(e), e.data)
        except NotFound as e:
            return p.error(id_, p.NOT_FOUND, str(e))
        except Busy as e:
            return p.error(id_, p.BUSY, str(e))
        except GmidError as e:
            return p.error(id_, p.INTERNAL_ERROR, str(e))
        except Exception:
            logger.exception("control method %s failed", method)
            return p.error(id_, p.INTERNAL_ERROR, f"{method} failed; see the daemon's log")
        return None if "id" not in message else p.result(id_, wire(value))

    def close(self) -> None:
        """Cancel what runs for this client and close its socket."""
        for task in list(self.tasks):
            task.cancel()
        # The subscription's task would keep this connection alive through its traceback.
        self.subscription = None
        self.writer.close()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        """Run a task tied to this connection (cancelled when it closes)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_ended)
        return task


def _ended(task: asyncio.Task) -> None:
    """Take a connection task's end: a client gone is no news; anything else is logged once."""
    if task.cancelled():
        return
    error = task.exception()  # retrieved here, so asyncio does not complain at collection
    if error is not None and not isinstance(error, ConnectionError):
        logger.error("a task of a control connection failed", exc_info=error)


def wire(value: Any) -> Any:
    """An answer as JSON: a protocol payload by its to_dict, a list of them item by item."""
    if isinstance(value, list):
        return [wire(item) for item in value]
    return value.to_dict() if isinstance(value, p.Wire) else value


class ControlServer:
    """The daemon's control socket, a component with start() and stop().

    `methods` maps each method's name to its handler; `context` is what every handler gets
    first (the daemon's services).
    """

    def __init__(
        self,
        path: Path,
        methods: dict[str, Handler],
        context: Any = None,
        max_connections: int = 64,
    ):
        self.path = Path(path)
        self.methods = methods
        self.context = context
        self.max_connections = max_connections
        self._refused_logged = -REFUSED_LOG_INTERVAL
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[Connection, None] = {}  # oldest first
        self._prepared = False

    async def prepare(self) -> None:
        """Check that the socket can be made: its folder (created 0700) is ours and closed to
        others, and no daemon answers on it (a stale socket file is removed).

        The daemon calls this before it opens any listener, so that a refusal here comes
        before anything listens or logs that it does.
        """
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise GmidError(
                f"{folder}: the control socket's folder must belong to uid {os.getuid()} and "
                "not be open to others (chmod 700), or set control.socket elsewhere"
            )
        if self.path.exists() or self.path.is_symlink():
            if await _answers(self.path):
                raise GmidError(f"another gmid daemon is already listening on {self.path}")
            self.path.unlink()
        self._prepared = True

    async def start(self) -> None:
        """Create the socket (0600) after prepare(), which it runs when nobody did."""
        if not self._prepared:
            await self.prepare()
        # The backlog is also how many connections asyncio accepts in one go, before any is
        # looked at: keep it to the cap, so a flood cannot take more descriptors than that.
        self._server = await asyncio.start_unix_server(
            self._accept, path=str(self.path), limit=p.MAX_LINE, backlog=self.max_connections
        )
        os.chmod(self.path, 0o600)
        logger.info("control socket on %s", self.path)

    async def stop(self) -> None:
        """Close the socket and every connection."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock)
        if uid not in (os.getuid(), 0):
            logger.warning("refused a control connection from uid %d", uid)
            with contextlib.suppress(ConnectionError, TimeoutError):
                await conn.send(p.error(None, p.FORBIDDEN, "permission denied: uid not allowed"))
                # Half-close and drain what the client already sent: closing with unread data
                # would reset the connection and the client would never see the answer.
                writer.write_eof()
                await asyncio.wait_for(reader.read(1 << 16), 1)
            writer.close()
            return
        if not self._make_room():
            self._log_refused("too many control connections: refused a new one")
            with contextlib.suppress(ConnectionError):
                await conn.send(p.error(None, p.BUSY, "too many connections; try again later"))
            writer.close()
            return
        self._connections[conn] = None
        try:
            await conn.serve()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.pop(conn, None)
            conn.close()

    def _make_room(self) -> bool:
        """Tell whether a new connection may stay: at the limit, the oldest silent one goes."""
        if len(self._connections) < self.max_connections:
            return True
        silent = next((c for c in self._connections if not c.asked), None)
        if silent is None:
            return False
        self._log_refused("too many control connections: closed one that asked nothing")
        self._connections.pop(silent, None)
        silent.close()
        return True

    def _log_refused(self, message: str) -> None:
        """Log a refusal, at most once a minute (a flood must not flood the log too)."""
        now = asyncio.get_running_loop().time()
        if now - self._refused_logged >= REFUSED_LOG_INTERVAL:
            self._refused_logged = now
            logger.warning("%s (at most %d at a time)", message, self.max_connections)


async def _answers(path: Path) -> bool:
    """Tell whether something accepts connections on a Unix socket path."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
