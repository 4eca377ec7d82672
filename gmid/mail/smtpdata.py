"""aiosmtpd's SMTP with a DATA phase that reads the message in chunks, into a bounded spool.

aiosmtpd reads DATA one CRLF-terminated line at a time, an await per line: about 2,300 of them
for a mail with a 130 KB PDF, which is most of what a delivery costs. This subclass finds the
end-of-data sequence with StreamReader.readuntil() over whole buffers and applies the rules of
aiosmtpd 1.4.6 batch by batch as the data arrives: the message ends only at CRLF "." CRLF (no
bare-LF variants: the SMTP smuggling fix), every line of at most `line_length_limit` bytes with
its CRLF (else 500; a subclass may set `data_line_limit` instead), at most `data_size_limit`
bytes (else 552), a leading dot removed from every line. One rule is stricter than
aiosmtpd's: a bare LF (not after a CR) anywhere in the data refuses the message with a reply
that says how to send it (500 5.6.0), where aiosmtpd answered "Line too long" or took the LF
as part of a line.

The message is kept in a Spool: in memory up to `spool_threshold` bytes, beyond that in a file
(mode 0600) in `spool_dir`, so that many clients sending large mails at once do not each hold a
whole mail in memory. The handler finds it in `envelope.spool`; `envelope.content` holds the
bytes only for a message that stayed in memory. A spool file is removed once the DATA hook has
answered, or when the connection is lost; `prepare_spool` removes those a crash left behind.

It never reads past the end-of-data sequence, so a command that follows stays in the stream for
aiosmtpd, whatever was wrong with the message. Everything after the message (the handler's DATA
hook, the reply) is the library's own code path. tests/mail/test_smtpdata.py checks
byte-for-byte parity with aiosmtpd for messages with CRLF line endings.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, syntax

from gmid.archive.fs import make_own_dir, open_own_dir, remove_temp_files
from gmid.errors import GmidError

log = logging.getLogger("mail.log")
logger = logging.getLogger(__name__)

END = b"\r\n.\r\n"
SPOOL_THRESHOLD = 1 << 20  # bytes of a message kept in memory before it goes to a file
SPOOL_DIR_MODE = 0o700  # a mail may say anything about anyone: owner only
SPOOL_FILE_MODE = 0o600
BATCH = 1 << 16  # raw bytes gathered before they are checked, unstuffed and kept

BARE_LF = (
    "500 5.6.0 Bare LF line endings are not accepted; send lines ending in CRLF "
    "(Python smtplib: build the message with policy=email.policy.SMTP)"
)
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"


def prepare_spool(folder: Path) -> int:
    """Make the spool folder (0700) and remove the files a crash left in it; return how many.

    ArchiveError if a symlink (or anything but a folder) is at its name: gmid never writes or
    removes anything behind it.
    """
    make_own_dir(folder, SPOOL_DIR_MODE)
    return remove_temp_files(folder)


class Spool:
    """The content of one message: in memory up to a threshold, beyond it in a file.

    write() and discard() are called on the event loop; read() may be called from a thread
    (it is blocking for a message in a file), also while discard() runs on the loop.
    """

    def __init__(self, folder: Path | None, threshold: int):
        self.folder = folder  # None: everything stays in memory
        self.threshold = threshold
        self.size = 0
        self._held: list[bytes] = []
        self._held_size = 0
        self._data: bytes | None = None  # the whole content, once finished in memory
        self._fd: int | None = None
        self._name: str | None = None
        self._lock = threading.Lock()
        self._discarded = False

    @property
    def path(self) -> Path | None:
        """The spool file, while the message is in one."""
        return None if self.folder is None or self._name is None else self.folder / self._name

    def write(self, data: bytes) -> None:
        """Add data; beyond the threshold what is held goes to the file. OSError, ArchiveError."""
        self._held.append(data)
        self._held_size += len(data)
        self.size += len(data)
        if self.folder is not None and self._held_size > self.threshold:
            self._flush()

    def finish(self) -> bytes | None:
        """Write what is still held to the file; return the content if it stayed in memory."""
        if self._fd is not None:
            self._flush()
            return None
        self._data = b"".join(self._held)
        self._held = []
        return self._data

    def _flush(self) -> None:
        if self._fd is None:
            self._create()
        assert self._fd is not None
        view = memoryview(b"".join(self._held))
        self._held = []
        self._held_size = 0
        while view:
            view = view[os.write(self._fd, view) :]

    def _create(self) -> None:
        assert self.folder is not None
        name = f"mail-{secrets.token_hex(12)}.tmp"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            dir_fd = open_own_dir(self.folder)  # refuses a symlink swapped in since start-up
        except FileNotFoundError:  # removed since start-up: made again, as at start-up
            make_own_dir(self.folder, SPOOL_DIR_MODE)
            dir_fd = open_own_dir(self.folder)
        try:
            self._fd = os.open(name, flags, SPOOL_FILE_MODE, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        self._name = name
        os.fchmod(self._fd, SPOOL_FILE_MODE)  # the umask must not change what we promise

    def read(self) -> bytes:
        """The whole content (blocking for a message in a file); ValueError once discarded."""
        with self._lock:
            if self._discarded:
                raise ValueError("the message was discarded")
            if self._fd is None:
                return self._data if self._data is not None else b"".join(self._held)
            parts = []
            got = 0
            while got < self.size:
                data = os.pread(self._fd, self.size - got, got)
                if not data:
                    raise OSError(errno.EIO, f"{self.path} is shorter than what was written")
                parts.append(data)
                got += len(data)
            return parts[0] if len(parts) == 1 else b"".join(parts)

    def discard(self) -> None:
        """Forget the content and remove the file; safe to call more than once."""
        with self._lock:
            self._held = []
            self._data = None
            self._discarded = True
            fd, self._fd = self._fd, None
            name, self._name = self._name, None
        if fd is not None:
            os.close(fd)
        if name is not None and self.folder is not None:
            try:
                dir_fd = open_own_dir(self.folder)
            except (OSError, GmidError) as exc:
                logger.error("cannot remove the spool file %s: %s", self.folder / name, exc)
                return
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.error("cannot remove the spool file %s: %s", self.folder / name, exc)
            finally:
                os.close(dir_fd)


class Receiver:
    """Checks, unstuffs and spools the raw data of one message as it arrives, batch by batch.

    A batch is cut before a trailing CR or CRLF, which go to the next batch: the sequences the
    rules look for (CRLF, CRLF ".") are then never split between two batches.
    """

    def __init__(self, spool: Spool, line_limit: int, size_limit: int | None, batch: int = BATCH):
        self.spool = spool
        self.batch = batch
        self.line_limit = line_limit
        self.size_limit = size_limit
        self.size = 0  # raw bytes, dot-stuffed, as aiosmtpd counts them
        self._raw: list[bytes] = []
        self._raw_size = 0
        self._carry = b""  # a trailing CR or CRLF, held for the next batch
        self._start = True  # nothing checked yet: a leading dot is the first line's
        self._line = 0  # length of the line still open at the end of the last batch
        self.oversize = self.bare_lf = self.too_long = False
        self.spool_error: Exception | None = None

    @property
    def failed(self) -> bool:
        return self.oversize or self.bare_lf or self.too_long or self.spool_error is not None

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.oversize:
            return
        if self.size_limit and self.size > self.size_limit:
            self.oversize = True  # keep reading to the end, but not keeping: 552 follows
            self._raw = []
            self.spool.discard()
            return
        self._raw.append(chunk)
        self._raw_size += len(chunk)
        if self._raw_size >= self.batch:
            self._batch(last=False)

    def finish(self) -> str | None:
        """Check the rest; return the error reply, or None when the message is in the spool."""
        if not self.oversize:
            self._batch(last=True)
        if self.failed:
            self.spool.discard()
        if self.oversize:
            return TOO_MUCH
        if self.bare_lf:
            return BARE_LF
        if self.too_long:
            return LINE_TOO_LONG
        if self.spool_error is not None:
            return _spool_reply(self.spool_error)
        try:
            self.spool.finish()
        except (OSError, GmidError) as exc:
            self.spool.discard()
            return _spool_reply(exc)
        return None

    def _batch(self, *, last: bool) -> None:
        buf = self._carry + b"".join(self._raw)
        self._raw = []
        self._raw_size = 0
        self._carry = b""
        if not last:
            keep = 2 if buf.endswith(b"\r\n") else 1 if buf.endswith(b"\r") else 0
            if keep:
                buf, self._carry = buf[:-keep], buf[-keep:]
        if not buf or self.bare_lf:
            return  # nothing else is said about a message with a bare LF
        if buf.count(b"\n") != buf.count(b"\r\n"):
            self.bare_lf = True
        if self.line_limit and not self.too_long:
            lines = buf.split(b"\r\n")
            longest = max(self._line + len(lines[0]), max(map(len, lines[1:]), default=0))
            self._line = len(lines[-1]) if len(lines) > 1 else self._line + len(lines[0])
            self.too_long = longest + 2 > self.line_limit
        if self.failed:
            self.spool.discard()
            return
        # De-transparency (RFC 5321 4.5.2): the first dot of every line goes.
        if self._start and buf.startswith(b"."):
            buf = buf[1:]
        self._start = False
        try:
            self.spool.write(buf.replace(b"\r\n.", b"\r\n"))
        except (OSError, GmidError) as exc:
            self.spool_error = exc
            self.spool.discard()


def _spool_reply(exc: Exception) -> str:
    logger.error("cannot keep a mail in the spool: %s", exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "452 4.3.1 Insufficient storage for the message, try again later"
    return "451 4.3.0 could not keep the message, try again later"


class SpooledEnvelope(Envelope):
    """An envelope whose message is in `spool` (and in `content` only if kept in memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.spool: Spool | None = None


class ChunkedDataSMTP(SMTP):
    """SMTP whose DATA phase costs a few awaits per message and keeps a bounded part of it.

    `spool_dir` is where a message beyond `spool_threshold` bytes goes (prepared with
    prepare_spool); without it, every message stays in memory.
    """

    # The longest line of a message (with its CRLF): None for `line_length_limit` as aiosmtpd
    # has it (RFC 5321's 1,000), 0 for no limit but the message's size.
    data_line_limit: int | None = None

    def __init__(
        self,
        handler: Any,
        *,
        spool_dir: Path | None = None,
        spool_threshold: int = SPOOL_THRESHOLD,
        **kwargs: Any,
    ):
        super().__init__(handler, **kwargs)
        # A decoded message must be in memory: the library hands the handler a str.
        self.spool_dir = None if self._decode_data else spool_dir
        self.spool_threshold = spool_threshold

    def _create_envelope(self) -> SpooledEnvelope:
        return SpooledEnvelope()

    async def _read_message(self, receiver: Receiver) -> None:
        """Read up to the end-of-data sequence, feeding the dot-stuffed data to receiver."""
        reader: asyncio.StreamReader = self._reader
        # The DATA command's own CRLF came just before: a message that is only "." ends here.
        # Read single bytes while what was read could still be the start of the end sequence,
        # so that readuntil() below never has to look behind what it was given.
        head = b""
        tail = b"\r\n"
        while True:
            for cut in range(len(tail)):
                if END.startswith(tail[cut:]):
                    break
            else:
                break  # no suffix of what we read can begin the end sequence
            byte = await reader.readexactly(1)
            head += byte
            tail = (tail + byte)[-4:]
            if (b"\r\n" + head).endswith(END):
                receiver.feed(head[:-3])
                return
        receiver.feed(head)
        while True:
            try:
                chunk = await reader.readuntil(END)
            except asyncio.LimitOverrunError as e:
                # No end sequence in the buffer yet; take what is surely message data. The
                # last len(END) - 1 bytes stay in the buffer, so an end sequence that begins
                # there is still found by the next readuntil().
                receiver.feed(await reader.readexactly(e.consumed))
                continue
            receiver.feed(chunk[:-3])  # keep the last line's CRLF, drop ".\r\n"
            return

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = Spool(self.spool_dir, self.spool_threshold)
        try:
            await self._receive(spool)
        finally:
            spool.discard()

    async def _receive(self, spool: Spool) -> None:
        """Read the message into spool, hand it to the DATA hook, and answer."""
        assert self.envelope is not None
        line_limit = self.data_line_limit
        if line_limit is None:
            line_limit = self.line_length_limit
        receiver = Receiver(spool, line_limit, self.data_size_limit)
        try:
            await self._read_message(receiver)
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        error = receiver.finish()
        if error is not None:
            await self.push(error)
            self._set_post_data_state()
            return
        content = spool.read() if spool.path is None else None
        if self._decode_data:
            # gmid never decodes; keep the library's behaviour for anyone who does.
            assert content is not None
            try:
                decoded = content.decode(
                    "utf-8" if self.enable_SMTPUTF8 else "ascii",
                    errors="surrogateescape" if self.enable_SMTPUTF8 else "strict",
                )
            except UnicodeDecodeError:
                await self.push("500 Error: strict ASCII mode")
                return
            self.envelope.content = decoded
        else:
            self.envelope.content = content
        self.envelope.original_content = content
        if isinstance(self.envelope, SpooledEnvelope):
            self.envelope.spool = spool
        status = MISSING
        if "DATA" in self._handle_hooks:
            status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)
