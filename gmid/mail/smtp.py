"""The SMTP listener: accepts forwarded invoice mails and answers 250 only once they are durable.

Who may deliver (see SmtpConfig): a client whose address is in `smtp.clients` (by default this
machine's loopback) needs no AUTH. Any other client is refused at connect time with 554, unless
`smtp.auth` is set: then it must STARTTLS and AUTH (PLAIN or LOGIN) before MAIL, else 530. The
settings are read at each connection, so that a reload applies them to the next client.

A mail arrives into a spool (gmid/mail/smtpdata.py): `smtp.spool_threshold` bytes of it in
memory, the rest in a private file in the state folder's smtp-spool/, so that memory stays
bounded by `smtp.max_sessions` times the threshold however many clients send big mails. It is
read back whole in the worker thread that parses and files it; mails beyond the threshold are
parsed one at a time (parsing takes several times a mail's size), smaller ones as many at once
as the executor has workers. A message with bare LF line endings is refused with 500 5.6.0 and
how to send it (CRLF), never taken apart at a bare-LF "." line (SMTP smuggling).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hmac
import ipaddress
import logging
import os
import ssl
import time
from concurrent.futures import Executor
from typing import Any

from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session, syntax

from gmid import __version__, failpoints
from gmid.config.smtp import SmtpConfig, SmtpTls
from gmid.errors import GmidError, SecretError
from gmid.events import EventBus
from gmid.mail.ingest import Ingestor, IngestResult, split_plus
from gmid.mail.smtpdata import ChunkedDataSMTP, Spool, SpooledEnvelope, prepare_spool
from gmid.net import Network

logger = logging.getLogger(__name__)
# aiosmtpd logs every command at INFO; its warnings are still worth having.
logging.getLogger("mail.log").setLevel(logging.WARNING)

# Failed AUTH attempts on one connection before it is closed.
MAX_AUTH_FAILURES = 3
# A refused client is logged once, then again only after this many seconds.
REFUSED_LOG_INTERVAL = 3600.0
FIRST_COMMAND_TIMEOUT = 30.0  # seconds a new client may stay silent
REASON_SHOWN = 200  # characters of a quarantine reason in a reply
STOP_WAIT = 8.0  # seconds a stop waits for mails in flight (within the daemon's STOP_TIMEOUT)
CROWD_LOG_INTERVAL = 60.0  # seconds between two log lines about too many sessions
# Where mails beyond smtp.spool_threshold wait, in the state folder, while they arrive.
SPOOL_DIR = "smtp-spool"
# Mails beyond smtp.spool_threshold parsed and filed at the same time; the others wait, in
# their spool files.
BIG_INGESTS = 1


class _Handler:
    """aiosmtpd handler: recipients are checked at RCPT, the work happens at DATA."""

    def __init__(self, listener: SmtpListener):
        self.listener = listener

    async def handle_EHLO(
        self, server: GmidSMTP, session: Session, envelope: Envelope, hostname, responses
    ) -> list[str]:
        # aiosmtpd leaves remembering the name to a handler that has this hook.
        session.host_name = hostname
        if server.smtp_config.auth is None:
            return [line for line in responses if not line.startswith("250-AUTH")]
        return responses

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        base, _tag = split_plus(address)
        if base not in self.listener.ingestor.config.smtp.recipients:
            self.listener.rejected += 1
            return f"550 5.1.1 <{address}>: no such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session: Session, envelope: SpooledEnvelope) -> str:
        listener = self.listener
        assert envelope.spool is not None
        failpoints.hit("smtp-data")  # the mail is in, not filed yet
        if envelope.spool.size < 64 and not envelope.spool.read().strip():
            # DATA with nothing (or blank lines) before the dot: no mail to keep
            return "554 5.6.0 The message is empty; nothing was kept"
        work = functools.partial(
            _ingest_spooled,
            listener.ingestor,
            envelope.spool,
            source="smtp",
            source_name="smtp",
            recipients=list(envelope.rcpt_tos),
            envelope_from=envelope.mail_from or None,
        )
        try:
            # A mail beyond the spool threshold waits its turn: parsing takes several times
            # its size.
            big = envelope.spool.path is not None
            async with listener.big_ingests if big else contextlib.nullcontext():
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(listener.executor, work)
        except Exception:
            logger.exception("could not store a mail from %s", session.peer)
            return "451 4.3.0 could not store the message, try again later"
        listener.accepted += 1
        if result.quarantined:
            listener.quarantined += 1
            listener.events.publish("mail.quarantined", source="smtp", path=result.quarantined)
        return _reply(result)


def _reply(result: IngestResult) -> str:
    """The 250 line that tells the sender what became of its mail."""
    if result.archive_failed:
        return "250 2.0.0 OK: kept in the quarantine, the archive could not be written"
    if result.duplicate and not result.quarantined:
        return "250 2.0.0 OK: already archived"
    filed = f"{result.new_documents} new document(s) for {result.company}"
    if not result.quarantined:
        return f"250 2.0.0 OK: {filed}"
    # One line of printable ASCII: the reason quotes the mail, which may say anything.
    reason = "".join(c if " " <= c <= "~" else "?" for c in result.reason or "unreadable")
    reason = reason if len(reason) <= REASON_SHOWN else reason[: REASON_SHOWN - 3] + "..."
    if result.stored:
        return f"250 2.0.0 OK: {filed}; kept in the quarantine too: {reason}"
    return f"250 2.0.0 OK: kept in the quarantine: {reason}"


def _ingest_spooled(ingestor: Ingestor, spool: Spool, **options: Any) -> IngestResult:
    """Read a received mail from its spool and ingest it: in a worker thread, so that only as
    many whole mails as the executor has workers are in memory at once."""
    return ingestor.ingest(spool.read(), **options)


class _Session(Session):
    # aiosmtpd sets this deprecated attribute after every AUTH; its property logs a warning.
    login_data = None


class GmidSMTP(ChunkedDataSMTP):
    """The SMTP protocol with gmid's access rules, for one connection."""

    # A receipt with an 8,000-character line can be stored: refusing it would have fetchmail
    # bounce it to the supplier at every poll. Only the message's size bounds its lines.
    data_line_limit = 0

    def __init__(self, handler: _Handler, *, smtp_config: SmtpConfig, **kwargs: Any):
        self.smtp_config = smtp_config
        self.listener = handler.listener
        self._password: str | None = None  # the expected one, only while an AUTH runs
        self._auth_failures = 0
        self.spoke = False  # has the client sent anything yet?
        self.in_data = False  # a mail in flight: between DATA's 354 and its reply
        super().__init__(handler, authenticator=self._check_login, **kwargs)

    def data_received(self, data: bytes) -> None:
        self.spoke = True
        super().data_received(data)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # From the 354 to the reply a mail is in flight: a stopping daemon waits for it.
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False
            if self.listener.stopping:
                self.shut_down()

    def shut_down(self) -> None:
        """Tell the client the service is going away, and close the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"421 4.3.2 gmid is shutting down, try again later\r\n")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.sessions.pop(self, None)
        super().connection_lost(exc)

    def _silent_timeout(self) -> None:
        if not self.spoke and self.transport is not None:
            self.transport.close()

    def _create_session(self) -> Session:
        return _Session(self.loop)

    @property
    def _client(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else "?"

    async def _handle_client(self) -> None:
        assert self.session is not None and self.transport is not None
        if not self.listener.admit(self):
            await self.push("421 4.7.0 too many connections, try again later")
            self.transport.close()
            return
        self.loop.call_later(FIRST_COMMAND_TIMEOUT, self._silent_timeout)
        if not allowed(self.session.peer, self.smtp_config.clients):
            if self.smtp_config.auth is None:
                self.listener.refuse(self._client, "not in smtp.clients")
                await self.push(f"554 5.7.1 {self._client} may not send mail here")
                assert self.transport is not None
                self.transport.close()
                return
            self._auth_required = True  # MAIL, RCPT and DATA answer 530 until AUTH succeeds
        await super()._handle_client()

    async def check_auth_needed(self, caller_method: str) -> bool:
        needed = await super().check_auth_needed(caller_method)
        if needed:
            self.listener.refuse(self._client, "not in smtp.clients, and no AUTH")
        return needed

    async def smtp_AUTH(self, arg: str) -> None:
        auth = self.smtp_config.auth
        if auth is None:
            await self.push("502 5.5.1 AUTH is not offered here")
            return
        assert self.session is not None
        if arg and self._tls_protocol and self.session.extended_smtp:
            # Fetched now, off the event loop: a command or a file may have changed.
            loop = asyncio.get_running_loop()
            try:
                self._password = await loop.run_in_executor(
                    self.listener.executor, auth.password.resolve
                )
            except SecretError as e:
                logger.error("SMTP AUTH from %s: smtp.auth.password: %s", self._client, e)
                await self.push("454 4.7.0 Temporary authentication failure")
                return
        try:
            await super().smtp_AUTH(arg)
        finally:
            self._password = None
        if self._auth_failures >= MAX_AUTH_FAILURES and self.transport is not None:
            self.transport.close()

    def _check_login(self, server, session, envelope, mechanism: str, data: Any) -> AuthResult:
        """aiosmtpd's authenticator: the one configured user name and password."""
        auth = self.smtp_config.auth
        if auth is None or self._password is None or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Both compared in constant time, whichever is wrong.
        user_ok = hmac.compare_digest(data.login, auth.username.encode("utf-8"))
        password_ok = hmac.compare_digest(data.password, self._password.encode("utf-8"))
        if user_ok and password_ok:
            logger.info("SMTP client %s authenticated as %s", self._client, auth.username)
            return AuthResult(success=True, auth_data=auth.username)
        self._auth_failures += 1
        logger.warning(
            "SMTP AUTH from %s failed: wrong user name or password (%d of %d)",
            self._client,
            self._auth_failures,
            MAX_AUTH_FAILURES,
        )
        if self._auth_failures >= MAX_AUTH_FAILURES:
            message = "421 4.7.0 Too many failed authentications, closing"
            return AuthResult(success=False, handled=False, message=message)
        return AuthResult(success=False, handled=False)


def client_address(peer: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a peer name; an IPv4 client of a dual-stack listener as IPv4."""
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        # A link-local IPv6 peer comes with its interface: fe80::1%eth0.
        address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def allowed(peer: object, networks: tuple[Network, ...]) -> bool:
    """Tell whether a client may deliver without AUTH."""
    address = client_address(peer)
    return address is not None and any(address in network for network in networks)


def _bind_error(host: str, port: int, error: OSError) -> GmidError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return GmidError(f"smtp.listen: cannot listen on {where}: {error.strerror or error}")


def load_tls(tls: SmtpTls) -> ssl.SSLContext:
    """The server context for STARTTLS; GmidError names the file that cannot be used."""
    for option, path in (("cert", tls.cert), ("key", tls.key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise GmidError(f"smtp.tls.{option}: cannot read {path}: {e.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    def no_passphrase() -> bytes:
        # Else OpenSSL would ask for it on the terminal.
        raise GmidError(f"smtp.tls.key: {tls.key} needs a passphrase; gmid needs it without")

    try:
        context.load_cert_chain(tls.cert, tls.key, password=no_passphrase)
    except ssl.SSLError as e:
        raise GmidError(
            f"smtp.tls: cannot use the certificate {tls.cert} with the key {tls.key}: "
            f"{e.reason or e}"
        ) from None
    return context


def _tls_stamp(tls: SmtpTls) -> tuple[object, ...]:
    """What tells that the certificate files changed (renewed) since they were loaded."""
    stamps: list[object] = [tls]
    for path in (tls.cert, tls.key):
        try:
            st = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


class SmtpListener:
    """A component: an aiosmtpd server on the daemon's own event loop."""

    def __init__(self, ingestor: Ingestor, executor: Executor, events: EventBus):
        self.ingestor = ingestor
        self.executor = executor
        self.events = events
        self.accepted = 0
        self.rejected = 0
        self.quarantined = 0
        self.refused = 0  # connections and MAIL commands of clients that may not deliver
        self.address: tuple[str, int] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._refused_logged: dict[str, float] = {}
        self._tls: ssl.SSLContext | None = None
        self._tls_stamp: tuple[object, ...] | None = None
        self.sessions: dict[GmidSMTP, None] = {}  # open ones, oldest first
        self.spool_dir = ingestor.config.state_dir / SPOOL_DIR
        self.big_ingests = asyncio.Semaphore(BIG_INGESTS)
        self._crowd_logged = -CROWD_LOG_INTERVAL
        self.stopping = False

    @property
    def listen(self) -> str | None:
        """The address actually bound, as host:port ([v6]:port)."""
        if self.address is None:
            return None
        host, port = self.address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def refuse(self, client: str, why: str) -> None:
        """Count a refused client; log it once, and again only after a while."""
        self.refused += 1
        now = time.monotonic()
        last = self._refused_logged.get(client)
        if last is not None and now - last < REFUSED_LOG_INTERVAL:
            return
        if len(self._refused_logged) >= 1024:
            self._refused_logged.clear()
        self._refused_logged[client] = now
        logger.warning("SMTP client %s refused: %s", client, why)

    def admit(self, session: GmidSMTP) -> bool:
        """Let a new session in under smtp.max_sessions: the oldest silent one makes room."""
        cap = self.ingestor.config.smtp.max_sessions
        if len(self.sessions) >= cap:
            silent = next((s for s in self.sessions if not s.spoke), None)
            now = time.monotonic()
            if now - self._crowd_logged >= CROWD_LOG_INTERVAL:
                self._crowd_logged = now
                what = "closed one that sent nothing" if silent else "refused a new one"
                logger.warning("too many SMTP sessions (at most %d): %s", cap, what)
            if silent is None:
                self.refused += 1
                return False
            self.sessions.pop(silent, None)
            if silent.transport is not None:
                silent.transport.close()
        self.sessions[session] = None
        return True

    def _tls_context(self, tls: SmtpTls | None) -> ssl.SSLContext | None:
        """The STARTTLS context, loaded again when the files or the config changed."""
        if tls is None:
            return None
        stamp = _tls_stamp(tls)
        if stamp != self._tls_stamp:
            self._tls_stamp = stamp  # a file that cannot be used is reported once
            try:
                self._tls = load_tls(tls)
            except GmidError as e:
                kept = "; keeping the certificate loaded before" if self._tls else ""
                logger.error("%s%s", e, kept)
        return self._tls

    def _protocol(self) -> GmidSMTP:
        config = self.ingestor.config
        return GmidSMTP(
            _Handler(self),
            smtp_config=config.smtp,
            tls_context=self._tls_context(config.smtp.tls),
            data_size_limit=config.smtp.max_message_size,
            spool_dir=self.spool_dir,
            spool_threshold=config.smtp.spool_threshold,
            enable_SMTPUTF8=True,
            ident=f"gmid {__version__}",
            hostname="gmid",
            timeout=300,
        )

    async def start(self) -> None:
        """Prepare the spool folder (emptied of what a crash left), then bind where
        `smtp.listen` says. ArchiveError if a symlink is where the spool folder belongs."""
        self.stopping = False
        smtp = self.ingestor.config.smtp
        loop = asyncio.get_running_loop()
        removed = await loop.run_in_executor(self.executor, prepare_spool, self.spool_dir)
        if removed:
            logger.warning("removed %d spool file(s) of mails cut short by a stop", removed)
        if smtp.tls is not None:
            # A certificate that cannot be used stops the start, rather than the first client.
            self._tls, self._tls_stamp = load_tls(smtp.tls), _tls_stamp(smtp.tls)
        if smtp.auth is not None:
            try:
                await loop.run_in_executor(self.executor, smtp.auth.password.resolve)
            except SecretError as e:
                logger.error("smtp.auth.password: %s; SMTP AUTH fails until it can be read", e)
        self._server = await loop.create_server(
            self._protocol, host=smtp.host, port=smtp.port, backlog=self._backlog()
        )
        self.address = self._server.sockets[0].getsockname()[:2]
        logger.info("SMTP listener on %s", self.listen)

    async def rebind(self, host: str, port: int) -> None:
        """Listen on another address: bind it first, then close the old listener.

        GmidError, with the old listener still there, when the new address cannot be bound.
        Only a move to the same port on another host (0.0.0.0 from 127.0.0.1) must let the old
        one go first; it is bound again when the new one fails.
        """
        loop = asyncio.get_running_loop()
        old = self._server
        try:
            server = await loop.create_server(
                self._protocol, host=host, port=port, backlog=self._backlog()
            )
        except OSError as e:
            same_port = self.address is not None and port == self.address[1]
            if not (same_port and e.errno == errno.EADDRINUSE and old is not None):
                raise _bind_error(host, port, e) from None
            old_host, old_port = self.address
            await self._close(old)
            try:
                server = await loop.create_server(
                    self._protocol, host=host, port=port, backlog=self._backlog()
                )
            except OSError as e2:
                self._server = await loop.create_server(
                    self._protocol, host=old_host, port=old_port
                )
                raise _bind_error(host, port, e2) from None
            old = None
        self._server = server
        self.address = server.sockets[0].getsockname()[:2]
        logger.info("SMTP listener on %s", self.listen)
        if old is not None:
            await self._close(old)

    def _backlog(self) -> int:
        # Also how many connections asyncio accepts in one go: no more than the cap.
        return min(100, self.ingestor.config.smtp.max_sessions)

    @staticmethod
    async def _close(server: asyncio.AbstractServer) -> None:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except TimeoutError:
            logger.warning("SMTP sessions still open on the old address")

    async def stop(self) -> None:
        """Stop accepting; answer the mails in flight, then close every session with 421.

        A mail whose data came in is filed and answered before its connection closes: a
        sender that sees the connection drop after DATA sends the mail again ("message may be
        sent more than once"). The wait is bounded by STOP_WAIT; idle sessions close at once.
        """
        self.stopping = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for session in [s for s in self.sessions if not s.in_data]:
            session.shut_down()
        deadline = time.monotonic() + STOP_WAIT
        while any(s.in_data for s in self.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        late = [s for s in self.sessions if s.in_data]
        if late:
            logger.warning("closing %d SMTP session(s) in the middle of a mail", len(late))
        for session in list(self.sessions):
            session.shut_down()
