"""aioimaplib, made fit for long-running syncs: a loop instead of recursion in its reader.

The client counts the bytes the server sent (a poll with nothing new must download no mail)
and reports a lost connection, which aioimaplib otherwise leaves its pending commands waiting
for until they time out.
"""

# aioimaplib has no public access to what its reader keeps (a command's literal and lines).
# ruff: noqa: SLF001

from __future__ import annotations

import asyncio
import contextlib

from aioimaplib import IMAP4, IMAP4ClientProtocol
from aioimaplib.aioimaplib import Command, FetchCommand, IncompleteRead, literal_data_re


class CountingProtocol(IMAP4ClientProtocol):
    """aioimaplib's protocol, counting the bytes the server sent, with a loop for its reader.

    aioimaplib 2.0 reads the lines of each chunk from the socket by recursion, one level per
    line: a chunk of many short lines (a metadata FETCH of hundreds of mails arriving while the
    loop was busy) exceeds Python's recursion limit, and the connection is dropped. It also
    copies the rest of the chunk at every line and formats every chunk for a debug log even
    when that log is off. `_handle_responses` here does the same work in a loop over offsets.
    """

    received = 0

    def data_received(self, d: bytes) -> None:
        self.received += len(d)
        try:
            data = self.incomplete_line + d if self.incomplete_line else d
            self._handle_responses(data, self._handle_line, self.current_command)
            self.incomplete_line = b""
            self.current_command = None
        except IncompleteRead as incomplete_read:
            self.current_command = incomplete_read.cmd
            self.incomplete_line = incomplete_read.data

    def _handle_responses(self, data: bytes, line_handler, current_cmd=None) -> None:
        pos, end = 0, len(data)
        while True:
            if pos >= end:
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()
                if current_cmd is not None and _wait_data(current_cmd):
                    raise IncompleteRead(current_cmd)
                return
            if current_cmd is not None and current_cmd.wait_literal_data():
                # aioimaplib keeps a literal's size and what came of it private: no API for them
                want = current_cmd._expected_size - len(current_cmd._resp_literal_data)
                take = min(want, end - pos)
                current_cmd.append_literal_data(data[pos : pos + take])
                pos += take
                if current_cmd.wait_literal_data():
                    raise IncompleteRead(current_cmd)
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                raise IncompleteRead(current_cmd, data[pos:])
            line = data[pos:eol]
            pos = eol + 2
            cmd = line_handler(line, current_cmd)
            literal = literal_data_re.match(line)
            if literal:
                if cmd is None:
                    cmd = Command("NIL", "unused")
                cmd.begin_literal_data(int(literal["size"]))
                current_cmd = cmd
            elif cmd is not None and _wait_data(cmd):
                current_cmd = cmd
            else:
                current_cmd = None


def _wait_data(cmd: Command) -> bool:
    """cmd.wait_data(), for a FETCH without rescanning all its lines at every line.

    aioimaplib's FetchCommand.wait_data joins every line since the last "N FETCH (" and counts
    parentheses: quadratic in the lines of a response (a metadata FETCH of 500 mails has 1,500).
    This keeps the count where the last call left it; the answer is the same.
    """
    if not isinstance(cmd, FetchCommand):
        return cmd.wait_data()
    lines = cmd._resp_lines  # the lines wait_data reads: aioimaplib has no API for them
    scanned, balance = getattr(cmd, "_gmid_scan", (0, 0))
    for index in range(scanned, len(lines)):
        line = lines[index]
        if isinstance(line, bytes):
            if FetchCommand.FETCH_MESSAGE_DATA_RE.match(line):
                balance = 0
            balance += line.count(b"(") - line.count(b")")
    cmd._gmid_scan = (len(lines), balance)  # ours, kept on the command it counts
    return balance != 0


class Client(IMAP4):
    """An aioimaplib client whose protocol counts bytes and reports a lost connection."""

    def create_client(self, host, port, loop, conn_lost_cb=None, ssl_context=None) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = CountingProtocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


async def unless_lost(client: IMAP4, coro) -> None:
    """Run coro until it ends or the connection drops; aioimaplib leaves commands waiting."""
    task = asyncio.ensure_future(coro)
    gone = asyncio.ensure_future(client.gmid_lost.wait())
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        raise ConnectionError("the server closed the connection")
    task.result()


async def close(client: IMAP4) -> None:
    with contextlib.suppress(Exception):
        if client.protocol.state in ("AUTH", "SELECTED"):
            await asyncio.wait_for(client.logout(), 2)
    with contextlib.suppress(Exception):
        if client.protocol.transport is not None:
            client.protocol.transport.close()
