"""The chunked DATA reader answers and stores exactly what aiosmtpd itself does, byte for byte.

Both servers run on loopback; the same raw byte streams go to each over TCP, sent whole and cut
at every position around the interesting bytes, and the replies and stored messages must match.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from aiosmtpd.smtp import SMTP

from gmid.mail.smtpdata import ChunkedDataSMTP

LIMIT = 20_000


class Recorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 stored"


async def _serve(cls):
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(recorder, data_size_limit=LIMIT, enable_SMTPUTF8=True, hostname="t"),
        "127.0.0.1",
        0,
    )
    return server, recorder


async def _session(port: int, data: bytes, pieces: list[int]) -> list[bytes]:
    """Send one DATA payload (then NOOP and QUIT, pipelined) and return every reply line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]
    for command in (b"EHLO x\r\n", b"MAIL FROM:<a@b.example>\r\n", b"RCPT TO:<c@d.example>\r\n"):
        writer.write(command)
        while (line := await reader.readline())[3:4] == b"-":
            pass
        replies.append(line)
    writer.write(b"DATA\r\n")
    replies.append(await reader.readline())
    stream = data + b"NOOP\r\nQUIT\r\n"
    start = 0
    for cut in [*pieces, len(stream)]:
        writer.write(stream[start:cut])
        await writer.drain()
        await asyncio.sleep(0)
        start = cut
    replies += [await asyncio.wait_for(reader.readline(), 10) for _ in range(3)]
    writer.close()
    return replies


def _cases() -> dict[str, bytes]:
    rng = random.Random(7)
    body = b"".join(
        rng.choice([b"", b".", b"..", b"x", b"\r", b"\n", b"\r\n", b"..\r\n"])
        + bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 80)))
        + b"\r\n"
        for _ in range(300)
    )
    return {
        "empty": b".\r\n",
        "one empty line": b"\r\n.\r\n",
        "dot stuffed": b"Subject: x\r\n\r\n..leading dot\r\n...\r\n.single\r\nend\r\n.\r\n",
        "dot first": b"..\r\n.x\r\n.\r\n",
        "bare LF dot is data": b"a\n.\nb\r\n.\n\r\nc\n.\r\nd\r\n.\r\n",
        "bare CR dot is data": b"a\r.\rb\r\n.\r\r\n.\r\n",
        "line 999": b"a" * 999 + b"\r\n.\r\n",
        "line 1000": b"a" * 1000 + b"\r\n.\r\n",
        "long last line": b"ok\r\n" + b"b" * 3000 + b"\r\n.\r\n",
        "oversize": (b"y" * 98 + b"\r\n") * 300 + b".\r\n",
        "at the limit": (b"z" * 98 + b"\r\n") * (LIMIT // 100) + b".\r\n",
        "random": body + b".\r\n",
    }


async def _compare(data: bytes, pieces: list[int]) -> None:
    stock, stock_rec = await _serve(SMTP)
    ours, our_rec = await _serve(ChunkedDataSMTP)
    try:
        want = await _session(stock.sockets[0].getsockname()[1], data, pieces)
        got = await _session(ours.sockets[0].getsockname()[1], data, pieces)
    finally:
        stock.close()
        ours.close()
    assert got == want
    assert our_rec.messages == stock_rec.messages


@pytest.mark.parametrize(("name", "data"), list(_cases().items()))
async def test_same_as_aiosmtpd_sent_whole(name: str, data: bytes) -> None:
    await _compare(data, [])


@pytest.mark.parametrize("name", ["empty", "one empty line", "dot first", "bare LF dot is data"])
async def test_same_as_aiosmtpd_cut_at_every_byte(name: str) -> None:
    data = _cases()[name]
    for cut in range(1, len(data) + 2):
        await _compare(data, [cut])


async def test_same_as_aiosmtpd_with_the_end_split_across_writes() -> None:
    data = _cases()["random"]
    end = len(data)
    for cut in range(end - 8, end + 1):
        await _compare(data, [cut])
    await _compare(data, list(range(1, end, 97)))
