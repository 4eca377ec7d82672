"""gmid's reader of IMAP responses (gmid.mail.imap.client.CountingProtocol) against aioimaplib's
own.

gmid replaces aioimaplib's recursive line reader with a loop; the command objects must end up
with exactly the lines aioimaplib would have given them, however the bytes are split.
"""

from __future__ import annotations

import asyncio
import random

from aioimaplib import IMAP4ClientProtocol
from aioimaplib.aioimaplib import FetchCommand

from gmid.mail.imap.client import CountingProtocol
from gmid.mail.imap.fetch import parse_fetch


def fetch_response(count: int, tag: str = "A1") -> bytes:
    """A UID FETCH answer: BODYSTRUCTURE with nested lists, a header literal, a ")" in a name."""
    out = []
    for n in range(1, count + 1):
        header = f"Subject: Rechnung {n}\r\nMessage-ID: <{n}@x>\r\n\r\n".encode()
        name = b'"sad :(.pdf"' if n % 7 == 0 else b'"R.pdf"'
        out.append(
            b'* %d FETCH (UID %d RFC822.SIZE %d BODYSTRUCTURE (("text" "plain" '
            b'("charset" "utf-8") NIL NIL "7bit" 20 1 NIL NIL NIL NIL)("application" "pdf" '
            b'("name" %s) NIL NIL "base64" 400 NIL ("attachment" ("filename" %s)) NIL NIL) '
            b'"mixed" ("boundary" "b") NIL NIL NIL) BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)] '
            b"{%d}\r\n%s)\r\n" % (n, n, 1000 + n, name, name, len(header), header)
        )
    out.append(f"{tag} OK Fetch completed.\r\n".encode())
    return b"".join(out)


def feed(protocol: IMAP4ClientProtocol, chunks: list[bytes]) -> list:
    protocol.state = "SELECTED"
    command = FetchCommand("A1", "1:*", "(UID BODYSTRUCTURE)", loop=asyncio.get_running_loop())
    protocol.pending_async_commands["FETCH"] = command
    for chunk in chunks:
        protocol.data_received(chunk)
    assert command.response.result == "OK"
    return command.response.lines


def split(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


async def test_the_loop_gives_the_lines_aioimaplib_gives() -> None:
    data = fetch_response(30)
    rng = random.Random(5)
    loop = asyncio.get_running_loop()
    for _ in range(20):
        chunks = split(data, rng)
        ours = feed(CountingProtocol(loop), chunks)
        theirs = feed(IMAP4ClientProtocol(loop), chunks)
        assert ours == theirs
    assert len(parse_fetch(ours)) == 30


async def test_a_chunk_of_thousands_of_lines_is_read() -> None:
    # aioimaplib recursed once per line and raised RecursionError here, dropping the connection
    data = fetch_response(3000)
    protocol = CountingProtocol(asyncio.get_running_loop())
    lines = feed(protocol, [data])
    assert [m.uid for m in parse_fetch(lines)] == list(range(1, 3001))
    assert protocol.received == len(data)
