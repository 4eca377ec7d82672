"""The control methods about the daemon as a whole: `status`, `mailboxes.list`, `config.reload`."""

from __future__ import annotations

import asyncio
import os

from gmid import __version__
from gmid.config.load import Company
from gmid.control import protocol as p
from gmid.daemon.rpc.params import Params
from gmid.daemon.rpc.portals import portal_infos
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services


async def status(s: Services, params: Params, conn: Connection) -> p.Status:
    """What the daemon is doing: its components, portals, codes asked for, mailboxes, counts."""
    daemon, config = s.daemon, s.daemon.config
    loop = asyncio.get_running_loop()
    documents = await loop.run_in_executor(daemon.executor, s.index.count)
    quarantined = await loop.run_in_executor(daemon.executor, s.index.quarantine_count)
    smtp = daemon.smtp
    assert daemon.ingestor is not None
    failures = daemon.ingestor.archive_failures
    return p.Status(
        version=__version__,
        pid=os.getpid(),
        started_at=daemon.started_at.isoformat(),
        uptime=round(daemon.uptime(), 3),
        config=str(config.path),
        archive=str(config.archive.dir),
        state_dir=str(config.state_dir),
        timezone=config.timezone,
        documents=documents,
        quarantined=quarantined,
        archive_failures=failures.mails,
        archive_failed_at=failures.last_at.isoformat() if failures.last_at else None,
        archive_error=failures.last_error,
        smtp=p.SmtpStatus(
            enabled=smtp is not None,
            listen=smtp.listen if smtp else None,
            accepted=smtp.accepted if smtp else 0,
            rejected=smtp.rejected if smtp else 0,
            quarantined=smtp.quarantined if smtp else 0,
        ),
        portals=portal_infos(s),
        companies=[company_info(c) for c in config.companies],
        challenges=[c.info() for c in s.broker.pending()],
        mailboxes=await mailboxes(s, {}, conn),
        components={
            "control": f"listening on {config.control.socket}",
            "smtp": f"listening on {smtp.listen}" if smtp else "disabled",
        },
    )


def company_info(company: Company) -> p.CompanyInfo:
    """A company of the config as the socket shows it."""
    return p.CompanyInfo(name=company.name, senders=list(company.senders), file=company.file)


async def mailboxes(s: Services, params: Params, conn: Connection) -> list[p.MailboxInfo]:
    """Every configured IMAP mailbox with its connection state and counts."""
    loop = asyncio.get_running_loop()
    boxes = await loop.run_in_executor(s.daemon.executor, s.imap.status)
    return [p.MailboxInfo.from_dict(box) for box in boxes]


async def reload(s: Services, params: Params, conn: Connection) -> p.Reloaded:
    """Read the config again; an invalid one is refused and the running one kept."""
    if await s.daemon.reload():
        return p.Reloaded(reloaded=True)
    return p.Reloaded(reloaded=False, reason=s.daemon.reload_refused)
