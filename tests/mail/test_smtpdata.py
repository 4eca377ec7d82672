"""The chunked DATA reader answers and stores exactly what aiosmtpd itself does, byte for byte,
for messages with CRLF line endings, whether it keeps them in memory or in a spool file; a
message with a bare LF gets a reply that says how to send it.

Both servers run on loopback; the same raw byte streams go to each over TCP, sent whole and cut
at every position around the interesting bytes, and the replies and stored messages must match.
"""

from __future__ import annotations

import asyncio
import os
import random
import stat
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP

from gmid.mail.smtpdata import BARE_LF, ChunkedDataSMTP, Receiver, Spool, prepare_spool

LIMIT = 20_000
BIG_LIMIT = 400_000


class Recorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.modes: list[int] = []

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        spool = getattr(envelope, "spool", None)
        if content is None:  # kept in a spool file
            self.modes.append(stat.S_IMODE(os.stat(spool.path).st_mode))
            content = await asyncio.to_thread(spool.read)
        self.messages.append(content)
        return "250 stored"


async def _serve(cls, limit: int = LIMIT, **options):
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(recorder, data_size_limit=limit, enable_SMTPUTF8=True, hostname="t", **options),
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


def _random_body(seed: int, lines: int) -> bytes:
    """CRLF lines with dots, empty lines and bare CRs where they are tricky."""
    rng = random.Random(seed)
    body = b"".join(
        rng.choice([b"", b".", b"..", b"x", b"\r", b"\r\n", b"..\r\n", b"\r\r\n."])
        + bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 80)))
        + b"\r\n"
        for _ in range(lines)
    )
    while b"\r\n.\r\n" in b"\r\n" + body:  # a line that is just a dot would end the message
        body = (b"\r\n" + body).replace(b"\r\n.\r\n", b"\r\n..\r\n")[2:]
    return body


def _cases() -> dict[str, bytes]:
    return {
        "empty": b".\r\n",
        "one empty line": b"\r\n.\r\n",
        "dot stuffed": b"Subject: x\r\n\r\n..leading dot\r\n...\r\n.single\r\nend\r\n.\r\n",
        "dot first": b"..\r\n.x\r\n.\r\n",
        "bare CR dot is data": b"a\r.\rb\r\n.\r\r\n.\r\n",
        "line 999": b"a" * 999 + b"\r\n.\r\n",
        "line 1000": b"a" * 1000 + b"\r\n.\r\n",
        "long last line": b"ok\r\n" + b"b" * 3000 + b"\r\n.\r\n",
        "oversize": (b"y" * 98 + b"\r\n") * 300 + b".\r\n",
        "at the limit": (b"z" * 98 + b"\r\n") * (LIMIT // 100) + b".\r\n",
        "random": _random_body(7, 300) + b".\r\n",
    }


# Messages with a bare LF somewhere; aiosmtpd took them, or answered "Line too long".
BARE_LF_CASES = {
    "bare LF dot is data": b"a\n.\nb\r\n.\n\r\nc\n.\r\nd\r\n.\r\n",
    "all lines LF": b"Subject: x\n\nbody\n..dot\n" + b"w" * 2000 + b"\n\r\n.\r\n",
    "LF first": b"\nx\r\n.\r\n",
    "one LF deep in a big mail": _random_body(3, 2000) + b"late\n" + _random_body(4, 99) + b".\r\n",
    "in a line too long": b"x" * 1500 + b"\n" + b"y" * 1500 + b"\r\n.\r\n",
}

# A spool threshold so small that every message beyond a line or two goes to a file.
SPOOLS = {"memory": None, "file": 64}


async def _compare(data: bytes, pieces: list[int], spool: str, folder: Path) -> None:
    limit = BIG_LIMIT if len(data) > LIMIT * 2 else LIMIT
    options = {} if SPOOLS[spool] is None else {"spool_dir": folder, "spool_threshold": 64}
    stock, stock_rec = await _serve(SMTP, limit)
    ours, our_rec = await _serve(ChunkedDataSMTP, limit, **options)
    try:
        want = await _session(stock.sockets[0].getsockname()[1], data, pieces)
        got = await _session(ours.sockets[0].getsockname()[1], data, pieces)
    finally:
        stock.close()
        ours.close()
    assert got == want
    assert our_rec.messages == stock_rec.messages
    if SPOOLS[spool] and any(len(m) > SPOOLS[spool] for m in our_rec.messages):
        assert our_rec.modes == [0o600]  # it was in a file, private
    else:
        assert our_rec.modes == []
    assert os.listdir(folder) == []  # every spool file removed once answered


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    prepare_spool(tmp_path / "spool")
    return tmp_path / "spool"


@pytest.mark.parametrize("spool", list(SPOOLS))
@pytest.mark.parametrize("name", list(_cases()))
async def test_same_as_aiosmtpd_sent_whole(name: str, spool: str, folder: Path) -> None:
    await _compare(_cases()[name], [], spool, folder)


@pytest.mark.parametrize("spool", list(SPOOLS))
async def test_same_as_aiosmtpd_for_a_big_mail_in_many_batches(spool: str, folder: Path) -> None:
    """Over 200 KB: several batches, cut wherever TCP cuts them."""
    data = _random_body(11, 5000) + b".\r\n"
    assert len(data) > 200_000
    await _compare(data, [], spool, folder)
    await _compare(data, list(range(1, len(data), 65_531)), spool, folder)


@pytest.mark.parametrize("spool", list(SPOOLS))
@pytest.mark.parametrize("name", ["empty", "one empty line", "dot first", "bare CR dot is data"])
async def test_same_as_aiosmtpd_cut_at_every_byte(name: str, spool: str, folder: Path) -> None:
    data = _cases()[name]
    for cut in range(1, len(data) + 2):
        await _compare(data, [cut], spool, folder)


async def test_same_as_aiosmtpd_with_the_end_split_across_writes(folder: Path) -> None:
    data = _cases()["random"]
    end = len(data)
    for cut in range(end - 8, end + 1):
        await _compare(data, [cut], "file", folder)
    await _compare(data, list(range(1, end, 97)), "file", folder)


async def _bare_lf_session(data: bytes, pieces: list[int], folder: Path) -> None:
    ours, recorder = await _serve(ChunkedDataSMTP, BIG_LIMIT, spool_dir=folder, spool_threshold=64)
    try:
        replies = await _session(ours.sockets[0].getsockname()[1], data, pieces)
    finally:
        ours.close()
    assert replies[-3] == BARE_LF.encode() + b"\r\n"
    assert b"CRLF" in replies[-3] and b"policy=email.policy.SMTP" in replies[-3]
    assert recorder.messages == []
    # The whole message was read: the commands after it are answered as commands.
    assert replies[-2].startswith(b"250") and replies[-1].startswith(b"221")
    assert os.listdir(folder) == []


@pytest.mark.parametrize("name", list(BARE_LF_CASES))
async def test_a_bare_lf_is_refused_with_how_to_send_it(name: str, folder: Path) -> None:
    await _bare_lf_session(BARE_LF_CASES[name], [], folder)


async def test_a_bare_lf_is_refused_wherever_the_data_is_cut(folder: Path) -> None:
    data = BARE_LF_CASES["bare LF dot is data"]
    for cut in range(1, len(data) + 2):
        await _bare_lf_session(data, [cut], folder)


def _receive(data: bytes, batch: int, folder: Path, threshold: int) -> tuple[str | None, bytes]:
    """Feed the dot-stuffed data (without the final ".\r\n") in pieces of `batch` bytes."""
    spool = Spool(folder, threshold)
    receiver = Receiver(spool, 1001, BIG_LIMIT, batch=batch)
    for start in range(0, len(data), batch):
        receiver.feed(data[start : start + batch])
    error = receiver.finish()
    content = b"" if error else spool.read()
    spool.discard()
    return error, content


@pytest.mark.parametrize(
    "name", [*_cases(), *BARE_LF_CASES, "CRLF dot at every place"], ids=lambda n: n
)
def test_where_the_batches_are_cut_changes_nothing(name: str, folder: Path) -> None:
    """A CRLF, a CRLF "." or a long line split between two batches is still seen whole."""
    if name == "CRLF dot at every place":
        data = b"a\r\n.b\r\n..\r\n\r\n.\r\r\n" * 3 + b".\r\n"
    else:
        data = {**_cases(), **BARE_LF_CASES}[name]
    data = data[:-3]  # what the reader hands on: the final ".\r\n" is not data
    whole = _receive(data, len(data) + 1, folder, 1 << 30)
    sizes = range(1, 12) if len(data) < 5000 else (1, 7, 999, 1000, 1001, 4096)
    for batch in sizes:
        assert _receive(data, batch, folder, 1 << 30) == whole
        assert _receive(data, batch, folder, 5) == whole  # most of it in a spool file
    assert os.listdir(folder) == []
