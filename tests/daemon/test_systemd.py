"""The systemd units and the notify protocol, checked for real.

- `systemd-analyze verify` is quiet about both units, `systemd-analyze security` scores the
  system unit <= 2.0.
- The daemon does its work (SMTP with a PDF, `gmid status`, a portal run over TLS, a reload)
  under the unit's own MemoryDenyWriteExecute=, SystemCallFilter= and RestrictAddressFamilies=:
  no systemd runs as PID 1 here, so the test applies them to the daemon's process the way
  systemd does (a seccomp filter built from `systemd-analyze syscall-filter`, through
  libseccomp; PR_SET_MDWE) and reads them from systemd/gmid.service, so the unit is what is
  tested.
- The daemon speaks the notify protocol: READY=1 once the socket answers, STATUS= lines,
  WATCHDOG=1 at half of $WATCHDOG_USEC, RELOADING=1 ... READY=1, STOPPING=1.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import functools
import itertools
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gmid.config.load import load_config
from gmid.control.client import ControlClient
from gmid.daemon.systemd import SdNotify
from gmid.demo.portal import DemoPortal, make_server
from tests.conftest import ROOT, Daemon, make_daemon_dir
from tests.portals.test_runs import DEMO_FORM
from tests.support.mails import invoice_mail, make_pdf
from tests.support.portal_http import _certificates, _server_context

UNIT = ROOT / "systemd" / "gmid.service"
USER_UNIT = ROOT / "systemd" / "user" / "gmid.service"
INSTALLED_GMID = "/opt/gmid/bin/gmid"
CODE = "135790"


def require(program: str) -> str:
    """The program's path, or skip the test (fail it under CI=true) when it is missing."""
    found = shutil.which(program)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{program} is missing: these tests need it (apt-get install systemd)")
        pytest.skip(f"{program} is not installed (apt-get install systemd)")
    return found


def unit_options(path: Path, section: str = "Service") -> dict[str, list[str]]:
    """The options of one section of a unit file, each with all its values in order."""
    options: dict[str, list[str]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            key, _, value = line.partition("=")
            options.setdefault(key.strip(), []).append(value.strip())
    return options


def gmid_program() -> Path:
    """This checkout's `gmid` program (the venv's), for units that must name a real one."""
    program = Path(sys.executable).parent / "gmid"
    assert program.is_file() and os.access(program, os.X_OK), f"{program}: run scripts/setup"
    return program


def system_unit_here(tmp_path: Path) -> Path:
    """The system unit as it is installed, but with ExecStart= naming this checkout's gmid."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_GMID} " in text
    unit = tmp_path / "gmid.service"
    unit.write_text(text.replace(f"ExecStart={INSTALLED_GMID} ", f"ExecStart={gmid_program()} "))
    return unit


# -- the units ------------------------------------------------------------------------------


def test_the_system_unit_verifies_without_a_word(tmp_path):
    analyze = require("systemd-analyze")
    unit = system_unit_here(tmp_path)
    # User=gmid need not exist for verify; a unit that named `nobody` would get a warning.
    result = subprocess.run(
        [analyze, "verify", "--no-pager", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_the_user_unit_verifies_without_a_word(tmp_path):
    analyze = require("systemd-analyze")
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "gmid").symlink_to(gmid_program())  # where %h/.local/bin points
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    result = subprocess.run(
        [analyze, "--user", "verify", "--no-pager", str(USER_UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_the_system_unit_scores_2_or_better(tmp_path):
    analyze = require("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--no-pager", "--offline=true", str(system_unit_here(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"Overall exposure level for gmid\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0, result.stdout


def test_the_units_ask_for_what_the_daemon_relies_on():
    system, user = unit_options(UNIT), unit_options(USER_UNIT)
    for options in (system, user):
        assert options["Type"] == ["notify"]
        assert options["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        assert options["WatchdogSec"] and options["Restart"] == ["on-failure"]
        assert options["UMask"] == ["0077"]
        assert options["MemoryDenyWriteExecute"] == ["yes"]
        assert options["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
        assert options["LimitNOFILE"] == ["8192"]
    assert system["User"] == ["gmid"] and system["Group"] == ["gmid"]
    assert system["StateDirectory"] == ["gmid"] and system["StateDirectoryMode"] == ["0700"]
    assert system["RuntimeDirectory"] == ["gmid"] and system["RuntimeDirectoryMode"] == ["0700"]
    assert system["ConfigurationDirectory"] == ["gmid"]
    assert system["CapabilityBoundingSet"] == [""]
    assert system["ExecStart"] == [f"{INSTALLED_GMID} daemon -c /etc/gmid/config.yaml"]


def test_the_installed_config_loads_and_matches_the_unit():
    config = load_config(ROOT / "systemd" / "config.yaml")
    assert not config.warnings
    system = unit_options(UNIT)
    assert config.state_dir == Path("/var/lib") / system["StateDirectory"][0]
    assert config.control.socket == Path("/run") / system["RuntimeDirectory"][0] / "gmid.sock"
    assert config.archive.dir.is_relative_to(config.state_dir)
    # The TUI writes into the include folder: the unit lets it.
    assert config.include == "portals.d/*.yaml"
    assert "ReadWritePaths=-/etc/gmid/portals.d" in UNIT.read_text()


def test_install_service_wants_root_and_changes_nothing_without_it():
    script = ROOT / "scripts" / "install-service"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    command = [str(script)]
    if os.getuid() == 0:  # try it as nobody
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "run it as root" in result.stderr


# -- the sandbox, applied as systemd applies it -----------------------------------------------

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_CMP_GE = 5
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000
AF_MAX = 46  # linux/socket.h


def scmp_act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def libseccomp() -> ctypes.CDLL:
    """libseccomp (libseccomp2, which systemd itself depends on), through ctypes."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("libseccomp is missing (apt-get install libseccomp2)")
        pytest.skip("libseccomp is not installed (apt-get install libseccomp2)")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


class Filter:
    """One seccomp filter for this machine's native architecture, built now, loaded later."""

    def __init__(self, default: int):
        self.lib = libseccomp()
        self.ctx = self.lib.seccomp_init(default)
        assert self.ctx, "seccomp_init failed"
        # SystemCallArchitectures=native: a call through another ABI (x32, i386) is fatal.
        kill = SCMP_ACT_KILL_PROCESS
        assert self.lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_ACT_BADARCH, kill) == 0

    def number(self, name: str) -> int | None:
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        return nr if nr >= 0 else None  # not a system call of this architecture

    def add(self, action: int, name: str, *conditions: tuple[int, int, int, int]) -> None:
        nr = self.number(name)
        if nr is None:
            return
        array = (ArgCmp * len(conditions))(*(ArgCmp(*c) for c in conditions))
        assert self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(conditions), array) == 0, (
            name
        )

    def load(self) -> None:
        """In the child, before exec: the kernel keeps the filter across execve."""
        if self.lib.seccomp_load(self.ctx) != 0:
            raise OSError(ctypes.get_errno(), "seccomp_load failed")


@functools.cache
def syscall_set(name: str) -> frozenset[str]:
    """A system call, or a group such as @system-service with its nested groups, expanded."""
    if not name.startswith("@"):
        return frozenset([name])
    analyze = require("systemd-analyze")
    out = subprocess.run(
        [analyze, "syscall-filter", "--no-pager", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    found: set[str] = set()
    for line in out.splitlines()[1:]:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            found |= syscall_set(entry)
    assert found, f"systemd-analyze knows no {name}"
    return frozenset(found)


def allowed_syscalls(filters: list[str]) -> set[str]:
    """SystemCallFilter= lines as systemd reads them: the first sets an allow list (with
    @default implied), each later "~" line takes its calls out again."""
    allowed: set[str] = set()
    for i, line in enumerate(filters):
        deny = line.startswith("~")
        names = line.removeprefix("~").split()
        if i == 0:
            assert not deny, "the unit's filter is an allow list"
            allowed |= syscall_set("@default")
        for name in names:
            if deny:
                allowed -= syscall_set(name)
            else:
                allowed |= syscall_set(name)
    return allowed


class Sandbox:
    """The unit's seccomp-based options, applied to a child process before it runs gmid."""

    def __init__(self, options: dict[str, list[str]]):
        self.filters: list[Filter] = []
        self.mdwe = options.get("MemoryDenyWriteExecute") == ["yes"]
        if "SystemCallFilter" in options:
            errno_name = options.get("SystemCallErrorNumber", ["EPERM"])[-1]
            allow_list = Filter(scmp_act_errno(getattr(errno, errno_name)))
            self.allowed = allowed_syscalls(options["SystemCallFilter"])
            for name in sorted(self.allowed):
                allow_list.add(SCMP_ACT_ALLOW, name)
        if self.mdwe:
            # systemd <= 255 (this machine's) does MemoryDenyWriteExecute= with seccomp, newer
            # ones with PR_SET_MDWE where the kernel has it: the test applies both.
            mdwe = Filter(SCMP_ACT_ALLOW)
            deny = scmp_act_errno(errno.EPERM)
            wx = PROT_WRITE | PROT_EXEC
            mdwe.add(deny, "mmap", (2, SCMP_CMP_MASKED_EQ, wx, wx))
            mdwe.add(deny, "mprotect", (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
            mdwe.add(deny, "pkey_mprotect", (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
            mdwe.add(deny, "shmat", (2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
            self.filters.append(mdwe)
        if "RestrictAddressFamilies" in options:
            families = {getattr(socket, f) for f in options["RestrictAddressFamilies"][-1].split()}
            restrict = Filter(SCMP_ACT_ALLOW)
            refuse = scmp_act_errno(errno.EAFNOSUPPORT)
            for family in range(AF_MAX):
                if family not in families:
                    restrict.add(refuse, "socket", (0, SCMP_CMP_EQ, family, 0))
            restrict.add(refuse, "socket", (0, SCMP_CMP_GE, AF_MAX, 0))
            self.filters.append(restrict)
        if "SystemCallFilter" in options:
            self.filters.append(allow_list)
        self.libc = ctypes.CDLL(None, use_errno=True)

    def apply(self) -> None:
        """preexec_fn: no new privileges, W^X for good, then the filters."""
        prctl = self.libc.prctl
        prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        if prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (NoNewPrivileges=yes)
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        # Linux < 6.3 has no PR_SET_MDWE (EINVAL): the seccomp rules above still hold there.
        mdwe = prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) if self.mdwe else 0
        if mdwe != 0 and ctypes.get_errno() != errno.EINVAL:
            raise OSError(ctypes.get_errno(), "PR_SET_MDWE")
        for f in self.filters:  # the allow list last: seccomp() itself is not on it
            f.load()


def test_the_sandbox_really_refuses():
    """The test's sandbox is not a no-op: W^X memory, a call outside the list, and a netlink
    socket are refused in a process under it."""
    sandbox = Sandbox(unit_options(UNIT))
    assert {"read", "sendto", "execve", "epoll_wait"} <= sandbox.allowed
    assert not {"setuid", "chown", "setpriority", "mount"} & sandbox.allowed
    probe = """
import ctypes, mmap, os, socket
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("wx mapped")
except OSError as e:
    print("wx", e.errno)
try:
    os.setpriority(os.PRIO_PROCESS, 0, 5)
    print("setpriority allowed")
except OSError as e:
    print("setpriority", e.errno)
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
    print("netlink allowed")
except OSError as e:
    print("netlink", e.errno)
print("tcp", socket.socket(socket.AF_INET, socket.SOCK_STREAM).family.name)
print("mdwe", ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))  # PR_GET_MDWE
"""
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=sandbox.apply,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"wx {errno.EPERM}",
        f"setpriority {errno.EPERM}",
        f"netlink {errno.EAFNOSUPPORT}",
        "tcp AF_INET",
    ], result.stdout
    kernel = tuple(int(n) for n in re.findall(r"\d+", os.uname().release)[:2])
    if kernel >= (6, 3):  # PR_MDWE_REFUSE_EXEC_GAIN, kept across execve
        assert lines[4] == f"mdwe {PR_MDWE_REFUSE_EXEC_GAIN}"


# -- helpers: a notify socket, the demo portal over TLS ----------------------------------------


class NotifySocket:
    """The service manager's end: a datagram socket, read at once as systemd does (a queue
    of unread datagrams fills up after a few: the daemon would then see EAGAIN)."""

    def __init__(self, address: str):
        self.address = address  # as in $NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.1)
        self.watchdog: list[float] = []  # when each WATCHDOG=1 arrived
        self.messages: list[tuple[float, dict[str, str]]] = []  # every other one, in order
        self.read = 0  # messages before this one were returned by next()
        self._arrived = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "NOTIFY_SOCKET": self.address, **extra}

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self._arrived:
                if fields == {"WATCHDOG": "1"}:
                    self.watchdog.append(now)
                else:
                    self.messages.append((now, fields))
                self._arrived.notify_all()

    def next(self, timeout: float) -> tuple[float, dict[str, str]] | None:
        """The next message other than a lone WATCHDOG=1 (those are only counted): when it
        arrived, and its fields."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.read < len(self.messages), timeout):
                return None
            self.read += 1
            return self.messages[self.read - 1]

    def wait_for(self, key: str, value: str | None = None, timeout: float = 15) -> float:
        """Skip messages until one sets key (to value); return when it arrived."""
        deadline = time.monotonic() + timeout
        while (message := self.next(deadline - time.monotonic())) is not None:
            at, fields = message
            if key in fields and value in (None, fields[key]):
                return at
        seen = [fields for _, fields in self.messages]
        raise AssertionError(f"no {key}={value or '...'} within {timeout}s; got {seen}")

    def wait_for_status(self, pattern: str, timeout: float = 15) -> str:
        """Skip messages until a STATUS= line matches pattern; return it."""
        deadline = time.monotonic() + timeout
        while (message := self.next(deadline - time.monotonic())) is not None:
            status = message[1].get("STATUS", "")
            if re.search(pattern, status):
                return status
        seen = [fields for _, fields in self.messages]
        raise AssertionError(f"no STATUS= matching {pattern!r} within {timeout}s; got {seen}")

    def close(self) -> None:
        self._closed = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify"))
    yield sock
    sock.close()


@contextmanager
def demo_portal(*, tls: bool) -> Iterator[tuple[DemoPortal, str]]:
    """The demo portal on loopback (https://localhost with a private CA when tls)."""
    portal = DemoPortal(code=CODE)
    server = make_server(portal, port=0)
    if tls:
        server.socket = _server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    portal.port = server.server_address[1]
    try:
        yield (
            portal,
            f"https://localhost:{portal.port}" if tls else f"http://127.0.0.1:{portal.port}",
        )
    finally:
        server.shutdown()
        server.server_close()


PORTAL = """\
portals:
  - name: energie
    company: Demo Energie
    enabled: false
    username: demo
    password: {{command: "echo demo"}}
    {ca}
"""


def portal_config(url: str, ca: Path | None = None) -> str:
    head = PORTAL.format(ca=f"ca_bundle: {ca}" if ca else "")
    return head + DEMO_FORM.format(start=f"{url}/login")


def fetch_typing_the_code(daemon: Daemon, portal: str = "energie"):
    """Fetch a portal and wait for the run, typing the SMS code when it is asked for."""

    async def go(client: ControlClient):
        async with await ControlClient.connect(daemon.socket) as typist:
            run = asyncio.ensure_future(client.fetch(portal, wait=True))
            deadline = time.monotonic() + 30
            while not await typist.challenges():
                assert not run.done() and time.monotonic() < deadline, "no code was asked for"
                await asyncio.sleep(0.05)
            await typist.answer(portal, CODE)
            return await run

    return daemon.call(go)


def log_is_clean(daemon: Daemon) -> None:
    log = daemon.log_text()
    for bad in ("Traceback", "ERROR", "Operation not permitted", "could not notify systemd"):
        assert bad not in log, log


# -- the daemon under the unit's sandbox --------------------------------------------------------


def test_the_daemon_works_under_the_units_syscall_filter_and_wx_policy(notify_socket):
    sandbox = Sandbox(unit_options(UNIT))
    with demo_portal(tls=True) as (portal, url):
        daemon = make_daemon_dir(extra=portal_config(url, _certificates()[0]))
        try:
            daemon.start(preexec_fn=sandbox.apply, env=notify_socket.env(WATCHDOG_USEC="2000000"))
            notify_socket.wait_for("READY", "1")

            # SMTP: a mail with a PDF, filed before the 250.
            mail = invoice_mail(
                sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("sandboxed"))]
            )
            assert daemon.send(mail)[0] == 250
            notify_socket.wait_for_status(r"; 1 document$")

            # The CLI over the control socket.
            status = subprocess.run(
                [sys.executable, "-m", "gmid", "status", "--socket", str(daemon.socket)],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            assert status.returncode == 0, status.stderr
            assert "energie" in status.stdout

            # A portal run over TLS with a private CA, a password command, an SMS code.
            run = fetch_typing_the_code(daemon)
            assert (run.outcome, run.new_documents) == ("ok", 6), run
            assert portal.downloads == 6
            notify_socket.wait_for_status(r"; 7 documents$")
            files = daemon.archived_files()
            assert len(files) == 7 and all(f.read_bytes().startswith(b"%PDF-") for f in files)

            # A reload on SIGHUP, with a changed config.
            daemon.config.write_text(
                daemon.config.read_text().replace(
                    "companies:\n", "companies:\n  - name: Neu\n    senders: ['@neu.example']\n"
                )
            )
            daemon.proc.send_signal(signal.SIGHUP)
            notify_socket.wait_for("RELOADING", "1")
            notify_socket.wait_for("READY", "1")
            assert "Neu" in {c.name for c in daemon.status().companies}
            assert daemon.status().documents == 7

            assert len(notify_socket.watchdog) >= 1  # sendto() on a Unix socket passes too
            assert daemon.stop() == 0
            notify_socket.wait_for("STOPPING", "1")
            log_is_clean(daemon)
        finally:
            daemon.stop(signal.SIGKILL)
            shutil.rmtree(daemon.dir, ignore_errors=True)


def test_imap_over_tls_works_under_the_units_sandbox(make_dovecot, notify_socket):
    dovecot = make_dovecot(tls=True)
    first = invoice_mail(sender="rechnung@telekom.example", pdfs=[("a.pdf", make_pdf("imap 1"))])
    dovecot.append("INBOX", first)
    daemon = make_daemon_dir(
        extra=f"""\
mailboxes:
  - name: box
    host: 127.0.0.1
    port: {dovecot.tls_port}
    security: tls
    ca_bundle: {dovecot.ca_file}
    username: gmid
    password: {{command: "echo imap-secret"}}
    rules:
      - attachment: ["*.pdf"]
        then: seen
"""
    )
    try:
        daemon.start(preexec_fn=Sandbox(unit_options(UNIT)).apply, env=notify_socket.env())
        notify_socket.wait_for_status(r"^0 portals; 1 mailbox; 1 document$", timeout=30)
        # A mail that arrives while the folder waits in IDLE.
        second = invoice_mail(sender="rechnung@telekom.example", pdfs=[("b.pdf", make_pdf("2"))])
        uid = dovecot.append("INBOX", second)
        notify_socket.wait_for_status(r"^0 portals; 1 mailbox; 2 documents$", timeout=30)
        deadline = time.monotonic() + 15
        while "\\Seen" not in dovecot.flags("INBOX").get(uid, set()):
            assert time.monotonic() < deadline, "the mail was not marked seen"
            time.sleep(0.05)
        [box] = daemon.call(lambda c: c.mailboxes())
        assert (box.state, box.error, box.documents) == ("idle", None, 2), box
        assert daemon.stop() == 0
        log_is_clean(daemon)
    finally:
        daemon.stop(signal.SIGKILL)
        shutil.rmtree(daemon.dir, ignore_errors=True)


# -- the notify protocol ------------------------------------------------------------------------


def start_notifying(daemon: Daemon, notify: NotifySocket, **env: str) -> None:
    """Start the daemon as systemd would, without waiting for its socket: READY=1 says when."""
    with daemon.log.open("ab") as log:
        daemon.proc = subprocess.Popen(
            [sys.executable, "-m", "gmid", "daemon", "-c", str(daemon.config)],
            stdout=log,
            stderr=log,
            cwd=ROOT,
            env=notify.env(**env),
        )


def test_the_daemon_tells_systemd_what_it_does(notify_socket):
    with demo_portal(tls=False) as (_portal, url):
        daemon = make_daemon_dir(extra=portal_config(url))
        try:
            start_notifying(daemon, notify_socket, WATCHDOG_USEC="200000")

            # READY=1 first, once the control socket answers: one try, no retry.
            _, first = notify_socket.next(timeout=30) or (0, {})
            assert first == {"READY": "1", "STATUS": "1 portal; 0 mailboxes; 0 documents"}, (
                daemon.log_text()
            )
            status = daemon.status()
            assert status.pid == daemon.proc.pid
            daemon.smtp_port = int(status.smtp.listen.rsplit(":", 1)[1])

            # WATCHDOG=1 every 0.1 s (half of WATCHDOG_USEC), from the start.
            time.sleep(1.2)
            pings = notify_socket.watchdog
            assert pings[0] < notify_socket.messages[0][0]  # before READY=1 already
            last_second = [t for t in pings if t > pings[-1] - 1.0]
            gaps = [round(b - a, 3) for a, b in itertools.pairwise(pings)]
            assert 6 <= len(last_second) <= 12, gaps

            # STATUS= follows what happens: a mail, a run waiting for a code, its documents.
            assert daemon.send(invoice_mail(sender="rechnung@telekom.example"))[0] == 250
            assert notify_socket.wait_for_status(r"documents?$") == (
                "1 portal; 0 mailboxes; 1 document"
            )
            daemon.call(lambda c: c.fetch("energie"))
            notify_socket.wait_for_status(r"^1 portal, 1 running, 1 waiting for a code; ")
            daemon.call(lambda c: c.answer("energie", CODE))
            notify_socket.wait_for_status(r"^1 portal; 0 mailboxes; 7 documents$")

            # SIGHUP: RELOADING=1 (with the moment, for systemd >= 253), then READY=1; also
            # when the new config is refused and the old one kept.
            good = daemon.config.read_text()
            for config in (good + "mailboxes: []\n", good + "smtp: [broken\n"):
                daemon.config.write_text(config)
                daemon.proc.send_signal(signal.SIGHUP)
                _, reloading = notify_socket.next(timeout=15) or (0, {})
                assert reloading.keys() == {"RELOADING", "MONOTONIC_USEC"}, reloading
                now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
                assert 0 <= now - int(reloading["MONOTONIC_USEC"]) < 10_000_000
                notify_socket.wait_for("READY", "1")
            assert "config reload refused" in daemon.log_text()

            # SIGTERM: STOPPING=1, then the pings stop.
            daemon.proc.send_signal(signal.SIGTERM)
            notify_socket.wait_for("STOPPING", "1")
            assert daemon.proc.wait(15) == 0
            time.sleep(0.3)
            stopped = len(notify_socket.watchdog)
            time.sleep(0.3)
            assert len(notify_socket.watchdog) == stopped
            log = daemon.log_text()
            assert "Traceback" not in log and "could not notify" not in log, log
        finally:
            daemon.stop(signal.SIGKILL)
            shutil.rmtree(daemon.dir, ignore_errors=True)


def test_an_abstract_notify_socket_works_too():
    notify = NotifySocket(f"@gmid-test-{uuid.uuid4().hex}")
    daemon = make_daemon_dir()
    try:
        start_notifying(daemon, notify)
        notify.wait_for("READY", "1", timeout=30)
        assert daemon.status().pid == daemon.proc.pid
        daemon.proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        assert daemon.proc.wait(15) == 0
        assert notify.watchdog == []  # no WATCHDOG_USEC, no pings
        assert "could not notify" not in daemon.log_text()
    finally:
        daemon.stop(signal.SIGKILL)
        notify.close()
        shutil.rmtree(daemon.dir, ignore_errors=True)


def test_without_notify_socket_there_is_nothing_to_do():
    environ = {"WATCHDOG_USEC": "1000000"}
    assert SdNotify.from_environ(environ) is None
    assert environ == {}  # not passed on to the commands gmid runs either


def test_the_notify_variables_are_read_and_taken_out_of_the_environment():
    mine = str(os.getpid())
    environ = {"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": mine, "X": "1"}
    notify = SdNotify.from_environ(environ)
    assert notify is not None and environ == {"X": "1"}
    assert notify.address == b"\0sd" and notify.watchdog_interval == 15.0
    path = SdNotify.from_environ({"NOTIFY_SOCKET": "/run/systemd/notify"})
    assert path is not None and path.address == b"/run/systemd/notify"
    assert path.watchdog_interval is None
    # The watchdog is someone else's (a process that passed its environment on).
    other = SdNotify.from_environ(
        {"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    )
    assert other is not None and other.watchdog_interval is None
    assert SdNotify.from_environ({"NOTIFY_SOCKET": "vsock:2:9"}) is None


def test_a_failed_send_is_logged_once_and_never_raises(tmp_path, caplog):
    notify = SdNotify(str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.WARNING, logger="gmid.daemon.systemd"):
        assert notify.ready() is False
        assert notify.status("1 portal") is False
        assert notify.stopping() is False
    assert [r.getMessage() for r in caplog.records] == [
        f"could not notify systemd at {tmp_path / 'nobody-listens'}: [Errno 2] "
        "No such file or directory"
    ]
    notify.close()
