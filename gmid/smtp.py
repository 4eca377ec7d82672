"""The SMTP listener: accepts forwarded invoice mails and answers 250 only once they are durable."""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import Executor

from aiosmtpd.smtp import Envelope, Session

from gmid import __version__
from gmid.events import EventBus
from gmid.ingest import Ingestor, split_plus
from gmid.smtpdata import ChunkedDataSMTP

logger = logging.getLogger(__name__)
# aiosmtpd logs every command at INFO; its warnings are still worth having.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class _Handler:
    """aiosmtpd handler: recipients are checked at RCPT, the work happens at DATA."""

    def __init__(self, listener: SmtpListener):
        self.listener = listener

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address, options):
        base, _tag = split_plus(address)
        if base not in self.listener.ingestor.config.smtp.recipients:
            self.listener.rejected += 1
            return f"550 5.1.1 <{address}>: no such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        listener = self.listener
        raw = envelope.original_content or b""
        work = functools.partial(
            listener.ingestor.ingest,
            bytes(raw),
            source="smtp",
            source_name="smtp",
            recipients=list(envelope.rcpt_tos),
            envelope_from=envelope.mail_from or None,
        )
        try:
            result = await asyncio.get_running_loop().run_in_executor(listener.executor, work)
        except Exception:
            logger.exception("could not store a mail from %s", session.peer)
            return "451 4.3.0 could not store the message, try again later"
        listener.accepted += 1
        if result.quarantined:
            listener.quarantined += 1
            listener.events.publish("mail.quarantined", source="smtp", path=result.quarantined)
        if result.duplicate:
            return "250 2.0.0 OK: already archived"
        return f"250 2.0.0 OK: {result.new_documents} new document(s) for {result.company}"


class SmtpListener:
    """A component: an aiosmtpd server on the daemon's own event loop."""

    def __init__(self, ingestor: Ingestor, executor: Executor, events: EventBus):
        self.ingestor = ingestor
        self.executor = executor
        self.events = events
        self.accepted = 0
        self.rejected = 0
        self.quarantined = 0
        self.address: tuple[str, int] | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def listen(self) -> str | None:
        """The address actually bound, as host:port ([v6]:port)."""
        if self.address is None:
            return None
        host, port = self.address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _protocol(self) -> ChunkedDataSMTP:
        config = self.ingestor.config
        return ChunkedDataSMTP(
            _Handler(self),
            data_size_limit=config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            ident=f"gmid {__version__}",
            hostname="gmid",
            timeout=300,
        )

    async def start(self) -> None:
        """Bind where `smtp.listen` says."""
        smtp = self.ingestor.config.smtp
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host=smtp.host, port=smtp.port)
        self.address = self._server.sockets[0].getsockname()[:2]
        logger.info("SMTP listener on %s", self.listen)

    async def stop(self) -> None:
        """Stop accepting; mails in flight finish (their thread work cannot be cut short)."""
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except TimeoutError:
                logger.warning("SMTP sessions still open at shutdown")
            self._server = None
