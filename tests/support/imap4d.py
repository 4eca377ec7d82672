"""A real GNU imap4d (GNU Mailutils) for tests, on 127.0.0.1, with its mail in the test's folder.

imap4d runs in inetd mode, one process per connection, started by a small acceptor thread of
the test process on a free port. Each session starts pre-authenticated (`--preauth`: greeting
"* PREAUTH") as the user running the tests: no password, PAM or system account is involved.
The mail is in mbox files, the format Debian's imap4d uses by default: INBOX is the spool file
`spool/<user>`, other folders are files under `folders/`. imap4d writes its own headers into
them (X-IMAPbase, X-UID, Status), so a mail's RFC822.SIZE is not the size of what was appended.

The helpers each use a fresh connection of the stdlib's `imaplib`, the test's own client.
"""

from __future__ import annotations

import atexit
import contextlib
import imaplib
import os
import pwd
import re
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.support.dovecot import HOST, IO_TIMEOUT, quote, sbin_program

_live: set[Imap4d] = set()


def imap4d_binary() -> str | None:
    """The `imap4d` program, or None."""
    return sbin_program("imap4d")


class Imap4dError(RuntimeError):
    """imap4d did not start, or an IMAP command of a helper failed."""


class Imap4d:
    """GNU imap4d behind an acceptor on 127.0.0.1: `start()`, `port`, helpers, `close()`."""

    host = HOST

    def __init__(self, tmp_path: Path) -> None:
        # gmid's config wants a user name and a password; a PREAUTH session uses neither
        self.users = {"gmid": "unused-preauth"}
        binary = imap4d_binary()
        if binary is None:
            raise Imap4dError("imap4d is not installed (apt-get install mailutils-imap4d)")
        self.binary = binary
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="imap4d-", dir=tmp_path))
        self.spool = self.dir / "spool"
        self.folders = self.dir / "folders"
        self.spool.mkdir()
        self.folders.mkdir()
        # INBOX: imap4d appends to an existing spool file only
        (self.spool / pwd.getpwuid(os.getuid()).pw_name).touch(0o600)
        self.config_file = self.dir / "imap4d.conf"
        self.log_file = self.dir / "imap4d.log"
        self.config_file.write_text(
            "mailbox {\n"
            f'  mail-spool "mbox://{self.spool}";\n'
            "};\n"
            "namespace personal {\n"
            '  prefix "" {\n'
            f'    directory "{self.folders}";\n'
            '    delimiter "/";\n'
            "  };\n"
            "};\n"
            "logging { syslog false; };\n"
        )
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sessions: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        _live.add(self)

    def start(self) -> Imap4d:
        """Listen on a free port and check that a session greets with PREAUTH."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((HOST, 0))
        listener.listen(16)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="imap4d acceptor", daemon=True)
        self._thread.start()
        with self.client() as imap:
            if imap.state != "AUTH":
                raise Imap4dError(f"imap4d greeted with {imap.welcome!r}, not PREAUTH")
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with conn, self.log_file.open("ab") as log, self._lock:
                command = [self.binary, "--inetd", "--preauth", f"--config-file={self.config_file}"]
                self._sessions.append(
                    subprocess.Popen(
                        command, stdin=conn, stdout=conn, stderr=log, start_new_session=True
                    )
                )

    def close(self) -> None:
        """Stop accepting, end every session, keep the folder for post-mortems."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(IO_TIMEOUT)
            self._thread = None
        with self._lock:
            for proc in self._sessions:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(IO_TIMEOUT)
            self._sessions.clear()
        _live.discard(self)

    def __enter__(self) -> Imap4d:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # ----------------------------------------------------------------- helpers

    def client(self) -> imaplib.IMAP4:
        if self.port is None:
            raise Imap4dError("imap4d is not started")
        return imaplib.IMAP4(HOST, self.port, timeout=IO_TIMEOUT)

    def create(self, folder: str) -> None:
        with self.client() as imap:
            _ok(imap.create(quote(folder)), "CREATE", folder)

    def delete(self, folder: str) -> None:
        with self.client() as imap:
            _ok(imap.delete(quote(folder)), "DELETE", folder)

    def append(self, folder: str, raw: bytes) -> None:
        with self.client() as imap:
            _ok(imap.append(quote(folder), None, None, raw), "APPEND", folder)

    def uids(self, folder: str = "INBOX") -> list[int]:
        """The UIDs in a folder, by FETCH (imap4d's `UID SEARCH UID n:*` is broken)."""
        with self.client() as imap:
            _ok(imap.select(quote(folder), readonly=True), "EXAMINE", folder)
            typ, data = imap.fetch("1:*", "(UID)")
            if typ != "OK":
                return []  # an empty folder
            found = (re.search(rb"UID (\d+)", d) for d in data if isinstance(d, bytes))
            return sorted(int(m[1]) for m in found if m)

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Each mail's flags by UID, e.g. {3: {"\\\\Deleted"}}; \\Recent left out."""
        with self.client() as imap:
            _ok(imap.select(quote(folder), readonly=True), "EXAMINE", folder)
            typ, data = imap.fetch("1:*", "(UID FLAGS)")
            if typ != "OK":
                return {}  # an empty folder
        result: dict[int, set[str]] = {}
        for line in data:
            if isinstance(line, bytes) and (uid := re.search(rb"UID (\d+)", line)):
                flags = re.search(rb"FLAGS \(([^)]*)\)", line)
                words = flags[1].decode().split() if flags else []
                result[int(uid[1])] = set(words) - {"\\Recent"}
        return result

    def fetch_subject(self, folder: str, uid: int) -> str:
        """The Subject: line of one mail, by UID."""
        with self.client() as imap:
            _ok(imap.select(quote(folder), readonly=True), "EXAMINE", folder)
            typ, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            _ok((typ, data), "FETCH", folder)
        header = b"".join(d[1] for d in data if isinstance(d, tuple))
        return header.decode(errors="replace").strip()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as imap:
            typ, data = imap.status(quote(folder), "(UIDVALIDITY)")
            _ok((typ, data), "STATUS", folder)
            match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
            if match is None:
                raise Imap4dError(f"STATUS {folder}: no UIDVALIDITY in {data!r}")
            return int(match[1])


def _ok(result: tuple[str, list], command: str, folder: str) -> None:
    typ, data = result
    if typ != "OK":
        raise Imap4dError(f"{command} {folder}: {typ} {data!r}")


@atexit.register
def _close_leftovers() -> None:
    for server in list(_live):
        server.close()
