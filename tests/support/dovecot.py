"""A real Dovecot IMAP server for tests, on 127.0.0.1 with its own config, mail and sockets.

Every instance runs its own `dovecot -F` master in a process group of its own, with:

- its config and logs in a fresh folder under the `tmp_path` it is given (kept for post-mortems),
- its sockets (`base_dir`), state, password file and maildirs in a short private folder under
  /tmp (Unix socket paths are limited to 108 bytes, and pytest's tmp folders are mode 0700,
  which Dovecot's unprivileged processes could not enter); `close()` removes that folder.

Folder names passed to the helpers are in IMAP wire form (modified UTF-7, with the server's
prefix and separator: none and "/" unless the test chose others): the caller encodes, the helpers
quote. The helpers each use a fresh connection of the stdlib's `imaplib`, the test's own client;
the code under test brings its own.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port

HOST = "127.0.0.1"
DEFAULT_USERS = {"gmid": "imap-secret"}

# What Dovecot 2.3 announces after login, less IDLE: for `Dovecot(idle=False)`. Before login
# Dovecot shows the same list (plus its AUTH= mechanisms), so the setting covers both.
CAPABILITY_WITHOUT_IDLE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS "
    "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS "
    "LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
    "LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ "
    "NOTIFY"
)

START_TIMEOUT = 10.0  # seconds; a start normally takes about 50 ms
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 10.0  # every socket operation of the test-side clients

_live: set[Dovecot] = set()  # not closed yet: killed at exit if a test forgot one


def sbin_program(name: str) -> str | None:
    """A server program: on PATH, or in /usr/sbin (not on a non-root user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin") / name
    return str(sbin) if os.access(sbin, os.X_OK) else None


def dovecot_binary() -> str | None:
    """The `dovecot` program, or None."""
    return sbin_program("dovecot")


def quote(name: str) -> str:
    """An IMAP quoted string for a folder name (already modified UTF-7) or other argument."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DovecotError(RuntimeError):
    """Dovecot did not start, or an IMAP command of a helper failed."""


class _BindFailed(DovecotError):
    """The port was taken between choosing it and Dovecot binding it."""


class Dovecot:
    """One Dovecot instance: `start()`, use `port`/`client()`/helpers, `close()` (or `with`)."""

    host = HOST

    def __init__(
        self,
        tmp_path: Path,
        *,
        idle: bool = True,
        users: dict[str, str] | None = None,
        tls: bool = False,
        prefix: str = "",
        separator: str = "/",
        public: str | None = None,
    ) -> None:
        """Prepare (not start) a server; users maps user name to password (default gmid).

        With tls, it also listens for IMAP over TLS on `tls_port`, with a self-signed
        certificate for 127.0.0.1 and localhost that `ca_file` holds. prefix and separator are
        those of the personal namespace: `prefix="INBOX.", separator="."` makes it look like
        Cyrus or Courier, where every folder is below INBOX ("INBOX.Archive"). public: the
        prefix of a public namespace (shared folders, with the same separator), e.g. "Public.".
        """
        binary = dovecot_binary()
        if binary is None:
            raise DovecotError("dovecot is not installed (apt-get install dovecot-imapd)")
        self.binary = binary
        self.idle = idle
        self.prefix, self.separator, self.public = prefix, separator, public
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        tmp_path.mkdir(parents=True, exist_ok=True)
        # Own folders even when one test starts several servers with the same tmp_path.
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-", dir=tmp_path))
        self.root = Path(tempfile.mkdtemp(prefix="gmid-dc-", dir="/tmp"))
        os.chmod(self.root, 0o711)  # the mail user and Dovecot's own users must pass through
        self.config_file = self.dir / "dovecot.conf"
        self.log_file = self.dir / "dovecot.log"
        self.stderr_file = self.dir / "stderr.log"
        self._log_files = (self.log_file, self.stderr_file)
        self.base_dir = self.root / "run"
        self.state_dir = self.root / "state"
        self.mail_root = self.root / "mail"
        self.passwd_file = self.root / "passwd"
        self.port: int | None = None
        self.tls_port: int | None = None
        self.ca_file: Path | None = None
        if tls:
            self.ca_file, self._key_file = self.root / "cert.pem", self.root / "key.pem"
            _self_signed(self.ca_file, self._key_file)
        self.proc: subprocess.Popen[bytes] | None = None
        self._greeting_token = secrets.token_hex(6)
        self._seq = 0  # maildir file names of deliver_files, in delivery order
        self._closed = False

        self._root_mode = os.geteuid() == 0
        if self._root_mode:
            mail_user = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = mail_user.pw_uid, mail_user.pw_gid
        else:  # everything runs as the current user
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
        self.mail_root.mkdir()
        os.chown(self.mail_root, self.mail_uid, self.mail_gid)
        os.chmod(self.mail_root, 0o700)
        self.state_dir.mkdir()
        self._write_passwd()
        _live.add(self)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Dovecot:
        """Start Dovecot and wait for its greeting; a fresh server gets a free port."""
        if self._closed:
            raise DovecotError("this Dovecot was closed")
        if self.running:
            return self
        fresh = self.port is None
        attempts = 2 if fresh else 20  # a restart keeps its port: wait for it to come free
        for attempt in range(attempts):
            if fresh and (attempt > 0 or self.port is None):
                self.port = free_port()
                self.tls_port = free_port() if self.ca_file else None
            try:
                self._start_once()
                return self
            except _BindFailed:
                if attempt == attempts - 1:
                    raise
                if not fresh:
                    time.sleep(0.1)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop like systemd does: SIGTERM to all of the server's processes, then wait.

        Connected IMAP clients get "* BYE Server shutting down.". (SIGTERM to the master alone
        leaves their sessions running.) When only the master is left and it does not exit at
        once, it is in Dovecot 2.3's one-second idle wait for its log process: that is cut short
        with SIGKILL.
        """
        if self.proc is None:
            return
        proc = self.proc
        if proc.poll() is None:
            deadline = time.monotonic() + STOP_TIMEOUT
            alone_since = None
            next_term = 0.0
            while proc.poll() is None and time.monotonic() < deadline:
                if time.monotonic() >= next_term:
                    # again and again: a master that saw a child die before its own SIGTERM
                    # may just have started a new one (anvil, log), which would keep it waiting
                    self._signal_group(proc.pid, signal.SIGTERM)
                    next_term = time.monotonic() + 0.05
                if len(self._group(proc.pid)) > 1:
                    alone_since = None
                elif alone_since is None:
                    alone_since = time.monotonic()
                elif time.monotonic() - alone_since > 0.05:
                    break
                time.sleep(0.005)
        self._signal_group(proc.pid, signal.SIGKILL)  # the idle master, or whatever hung
        proc.wait(STOP_TIMEOUT)
        self._wait_group_gone(proc.pid)

    def kill(self) -> None:
        """Kill the master and all its processes with SIGKILL at once, like a crash."""
        if self.proc is None:
            return
        self._signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        self._wait_group_gone(self.proc.pid)

    def restart(self) -> Dovecot:
        """Stop (SIGTERM) and start again on the same port, with the same mail and UIDs."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its private folder (mail, sockets); logs stay."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            _live.discard(self)
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        """Whether the master process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        """Dovecot's log, then anything it wrote to stderr before its log was set up."""
        parts = [f.read_text(errors="replace") for f in self._log_files if f.exists()]
        return "\n".join(p for p in parts if p)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Dovecot {self.host}:{self.port} {state} {self.dir}>"

    # ----------------------------------------------------------------- users

    def set_password(self, user: str, password: str) -> None:
        """Set (or add) a user's password, effective for the next login (takes up to 1 s)."""
        self.users[user] = password
        self._write_passwd()
        # Dovecot looks at the file at most once per second (per whole second of the clock):
        # after a lookup earlier in this second it would not see the change until the next.
        time.sleep(1.01 - time.time() % 1)

    def _write_passwd(self) -> None:
        lines = []
        for user, password in self.users.items():
            if not user or any(c in user for c in ":\n\r\t "):
                raise ValueError(f"user name not usable in a passwd-file: {user!r}")
            # {PLAIN.b64}: any password, even with ":" in it, fits the passwd-file line
            encoded = base64.b64encode(password.encode()).decode()
            lines.append(f"{user}:{{PLAIN.b64}}{encoded}\n")
        previous = self.passwd_file.stat().st_mtime if self.passwd_file.exists() else 0.0
        tmp = self.passwd_file.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        os.chmod(tmp, 0o644)  # read by Dovecot's auth process, which runs as its own user
        # Dovecot notices a changed passwd-file by its mtime in whole seconds (and its size):
        # make sure the seconds differ even for two changes within the same second.
        mtime = max(time.time(), previous + 1)
        os.utime(tmp, (mtime, mtime))
        tmp.replace(self.passwd_file)

    # ----------------------------------------------------------------- IMAP helpers

    def client(self, user: str = "gmid") -> imaplib.IMAP4:
        """A logged-in stdlib IMAP client (the caller logs out, or uses it in `with`)."""
        imap = imaplib.IMAP4(self.host, self._port(), timeout=IO_TIMEOUT)
        try:
            imap.login(user, self.users[user])
        except BaseException:
            with contextlib.suppress(Exception):
                imap.shutdown()
            raise
        return imap

    def create(self, folder: str, user: str = "gmid") -> None:
        """Create a folder (name in modified UTF-7) and subscribe to it."""
        with self.client(user) as imap:
            _ok(imap.create(quote(folder)), "CREATE", folder)
            _ok(imap.subscribe(quote(folder)), "SUBSCRIBE", folder)

    def delete(self, folder: str, user: str = "gmid") -> None:
        """Delete a folder with all its mail."""
        with self.client(user) as imap:
            _ok(imap.delete(quote(folder)), "DELETE", folder)

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: str = "",
        date: datetime | float | str | None = None,
        user: str = "gmid",
    ) -> int:
        """APPEND one mail and return its new UID, from APPENDUID.

        imaplib turns bare LF or CR into CRLF, as IMAP wants; give CRLF mails to get the same
        bytes back from `fetch_raw`. flags: e.g. "\\Seen \\Flagged"; date: the INTERNALDATE
        (an aware datetime, epoch seconds or an IMAP date string).
        """
        when = imaplib.Time2Internaldate(date) if date is not None else None
        with self.client(user) as imap:
            typ, data = imap.append(quote(folder), flags or None, when, raw)
            _ok((typ, data), "APPEND", folder)
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        match = re.search(r"\[APPENDUID (\d+) (\d+)\]", text)
        if match is None:
            raise DovecotError(f"APPEND answered without APPENDUID: {text}")
        return int(match.group(2))

    def uids(self, folder: str = "INBOX", user: str = "gmid") -> list[int]:
        """The folder's UIDs in ascending order."""
        with self.client(user) as imap:
            return self._uids(imap, folder)

    def flags(self, folder: str = "INBOX", user: str = "gmid") -> dict[int, set[str]]:
        """Each mail's flags by UID, e.g. {3: {"\\\\Seen"}}; \\Recent (per session) left out."""
        with self.client(user) as imap:
            if not self._uids(imap, folder):
                return {}
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
            _ok((typ, data), "FETCH", folder)
        result: dict[int, set[str]] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            text = line.decode(errors="replace")
            uid = re.search(r"UID (\d+)", text)
            flags = re.search(r"FLAGS \(([^)]*)\)", text)
            if uid and flags:
                result[int(uid.group(1))] = set(flags.group(1).split()) - {"\\Recent"}
        return result

    def uidvalidity(self, folder: str = "INBOX", user: str = "gmid") -> int:
        """The folder's UIDVALIDITY, from STATUS."""
        with self.client(user) as imap:
            typ, data = imap.status(quote(folder), "(UIDVALIDITY)")
            _ok((typ, data), "STATUS", folder)
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        match = re.search(r"UIDVALIDITY (\d+)", text)
        if match is None:
            raise DovecotError(f"STATUS without UIDVALIDITY: {text}")
        return int(match.group(1))

    def fetch_raw(self, folder: str, uid: int, user: str = "gmid") -> bytes:
        """The whole mail with that UID as stored (BODY.PEEK[], so \\Seen is not set)."""
        with self.client(user) as imap:
            _ok(imap.select(quote(folder), readonly=True), "EXAMINE", folder)
            typ, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
            _ok((typ, data), "FETCH", folder)
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        raise DovecotError(f"no mail with UID {uid} in {folder}")

    # ----------------------------------------------------------------- direct delivery

    def folder_path(self, folder: str = "INBOX", user: str = "gmid") -> Path:
        """The maildir of a folder (Maildir++ layout: "A/B" is Maildir/.A.B, INBOX is Maildir)."""
        maildir = self.mail_root / user / "Maildir"
        if folder.upper() == "INBOX":
            return maildir
        return maildir / ("." + folder.replace("/", "."))

    def deliver_files(self, folder: str, raws: Iterable[bytes], user: str = "gmid") -> None:
        """Put mails straight into the folder's maildir `new/`, the way a local MDA does.

        Fast (no IMAP round trips): for benchmarks with thousands of mails. Dovecot gives them
        UIDs, in delivery order, at the next SELECT/EXAMINE/STATUS. The folder is created first
        when it does not exist yet.
        """
        path = self.folder_path(folder, user)
        if not (path / "new").is_dir():
            if folder.upper() == "INBOX":
                with self.client(user) as imap:  # Dovecot creates INBOX at first access
                    _ok(imap.status("INBOX", "(MESSAGES)"), "STATUS", folder)
            else:
                self.create(folder, user)
        tmp_dir, new_dir = path / "tmp", path / "new"
        now = int(time.time())
        for raw in raws:
            self._seq += 1
            # <secs>.M<usecs>P<pid>...: Dovecot assigns UIDs to new files sorted by this time
            name = f"{now}.M{self._seq}P{os.getpid()}Q{self._greeting_token}.gmid-test,S={len(raw)}"
            tmp = tmp_dir / name
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, raw)
                if self._root_mode:
                    os.fchown(fd, self.mail_uid, self.mail_gid)
            finally:
                os.close(fd)
            os.rename(tmp, new_dir / name)

    # ----------------------------------------------------------------- internals

    def _port(self) -> int:
        if self.port is None or not self.running:
            raise DovecotError("Dovecot is not running: call start() first")
        return self.port

    @staticmethod
    def _uids(imap: imaplib.IMAP4, folder: str) -> list[int]:
        _ok(imap.select(quote(folder), readonly=True), "EXAMINE", folder)
        typ, data = imap.uid("SEARCH", "ALL")
        _ok((typ, data), "SEARCH", folder)
        return sorted(int(n) for d in data if d for n in d.split())

    def _start_once(self) -> None:
        assert self.port is not None
        # A stale socket or master.pid from an earlier (killed) run confuses Dovecot: for
        # example auth hangs on a dead anvil-auth-penalty socket. base_dir is ours alone.
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.config_file.write_text(self._config())
        log_start = [f.stat().st_size if f.exists() else 0 for f in self._log_files]
        with self.stderr_file.open("ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # own process group: kill() takes all children too
            )
        try:
            self._wait_for_greeting(log_start)
        except BaseException:
            self.kill()
            raise

    def _wait_for_greeting(self, log_start: list[int]) -> None:
        """Wait for this server's own greeting ("* OK ... <token> ready.") on its port."""
        assert self.proc is not None and self.port is not None
        deadline = time.monotonic() + START_TIMEOUT
        token = self._greeting_token.encode()
        while True:
            if self.proc.poll() is not None:
                log = self.log_text()
                new = b"".join(
                    f.read_bytes()[start:] if f.exists() else b""
                    for f, start in zip(self._log_files, log_start, strict=True)
                )
                if b"Address already in use" in new:
                    raise _BindFailed(f"port {self.port} is taken")
                raise DovecotError(f"dovecot exited with {self.proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not greet within {START_TIMEOUT}s:\n{self.log_text()}"
                )
            try:
                line = self._read_greeting(min(2.0, max(0.1, deadline - time.monotonic())))
            except (ConnectionRefusedError, ConnectionResetError, TimeoutError):
                time.sleep(0.005)
                continue
            if line.startswith(b"* OK") and token in line:
                return
            if line:  # another server got the port first; our master will fail to bind
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(2)
                raise _BindFailed(f"port {self.port} answers for another server: {line!r}")
            time.sleep(0.005)

    def _read_greeting(self, timeout: float) -> bytes:
        """The first line the port sends; b"" if it says nothing in time or our master died."""
        assert self.proc is not None and self.port is not None
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.settimeout(0.02)  # short slices: notice a master that failed meanwhile
            data = b""
            until = time.monotonic() + timeout
            while b"\n" not in data and time.monotonic() < until and self.proc.poll() is None:
                try:
                    chunk = s.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                data += chunk
            return data.split(b"\n", 1)[0] if b"\n" in data else b""

    @staticmethod
    def _group(pgid: int) -> list[bytes]:
        """The command names of the live (not zombie) processes in a process group."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) != pgid or fields[0] == "Z":
                    continue
                found.append((entry / "cmdline").read_bytes().split(b"\0", 1)[0])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
        return found

    def _wait_group_gone(self, pgid: int) -> None:
        """Wait until all processes of the group have exited (their sockets are closed)."""
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._group(pgid) and time.monotonic() < deadline:
            time.sleep(0.005)

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _public_namespace(self) -> str:
        if self.public is None:
            return ""
        return (
            f"namespace public {{\n  type = public\n  prefix = {self.public}\n"
            f"  separator = {self.separator}\n  location = maildir:{self.mail_root}/public\n"
            "  list = yes\n}\n"
        )

    def _config(self) -> str:
        if self._root_mode:
            # Dovecot's own users (dovecot, dovenull) come with the Debian package
            users = ""
            chroot = ""
        else:  # unprivileged: one user for everything, and no chroot
            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            users = (
                f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                f"default_internal_group = {group}\n"
            )
            chroot = "  chroot =\n"
        capability = "" if self.idle else f"imap_capability = {CAPABILITY_WITHOUT_IDLE}\n"
        ssl = "ssl = no"
        if self.ca_file:
            ssl = f"ssl = yes\nssl_cert = <{self.ca_file}\nssl_key = <{self._key_file}"
        return f"""\
# Written by tests/support/dovecot.py for one test server.
protocols = imap
listen = {HOST}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_file}
instance_name = gmid-test-{self._greeting_token}
login_greeting = gmid test Dovecot {self._greeting_token} ready.
{users}first_valid_uid = 1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# 2.3 still answers a failed login only after its 0.5 s failure timer
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 200
mailbox_idle_check_interval = 1 secs
{capability}
namespace inbox {{
  inbox = yes
  prefix = {self.prefix}
  separator = {self.separator}
}}
{self._public_namespace()}
passdb {{
  driver = passwd-file
  args = {self.passwd_file}
}}

userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={self.mail_root}/%u
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.tls_port or 0}
  }}
{chroot}}}

# No growing login delays after wrong passwords (the auth penalty of anvil).
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _self_signed(cert: Path, key: Path) -> None:
    """A self-signed certificate (its own CA) for 127.0.0.1 and localhost, valid two days."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _ok(result: tuple[str, list], command: str, folder: str) -> None:
    typ, data = result
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise DovecotError(f"{command} {folder!r}: {typ} {text}")


@atexit.register
def _kill_leftovers() -> None:
    """At interpreter exit, take down servers a crashed test never closed."""
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.kill()
        shutil.rmtree(server.root, ignore_errors=True)
