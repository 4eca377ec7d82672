"""A local demo without accounts: sample invoice mails sent to the daemon's own SMTP listener."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from datetime import date
from email import policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

from gmid.demo.pdf import simple_pdf
from gmid.errors import NotFound

if TYPE_CHECKING:
    from gmid.daemon.daemon import Daemon

logger = logging.getLogger(__name__)

SMTP_POLICY = policy.default.clone(linesep="\r\n")


def invoice_pdf(company: str, number: str, amount: str, day: date) -> bytes:
    """A demo invoice as a PDF."""
    return simple_pdf(
        [
            company,
            f"Invoice {number}",
            f"Date: {day.isoformat()}",
            f"Amount due: {amount} EUR",
            "This is a gmid demo document.",
        ]
    )


def demo_mails(today: date) -> list[tuple[str, str, bytes]]:
    """(envelope sender, recipient, message) for the demo: one per way a mail is filed."""
    month = today.strftime("%Y%m")
    mails = []

    msg = EmailMessage()
    msg["From"] = "Stadtwerke Rechnungsservice <rechnung@stadtwerke.example>"
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = f"Ihre Rechnung {month}-0042"
    msg["Message-ID"] = f"<demo-{month}-stadtwerke@stadtwerke.example>"
    msg.set_content("Guten Tag,\n\nanbei Ihre Rechnung.\n")
    pdf = invoice_pdf("Stadtwerke", f"{month}-0042", "84,20", today)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="Rechnung.pdf")
    mails.append(
        ("rechnung@stadtwerke.example", "invoices@gmid.local", msg.as_bytes(policy=SMTP_POLICY))
    )

    inner = EmailMessage()
    inner["From"] = "billing@hosting.example"
    inner["To"] = "me@home.example"
    inner["Subject"] = f"Invoice H-{month}"
    inner.set_content("Your monthly hosting invoice is attached.\n")
    pdf = invoice_pdf("Hosting Example Ltd", f"H-{month}", "12,00", today)
    inner.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"H-{month}.pdf")
    outer = EmailMessage()
    outer["From"] = "me@home.example"
    outer["To"] = "invoices+hosting-gmbh@gmid.local"
    outer["Subject"] = f"Fwd: Invoice H-{month}"
    outer["Message-ID"] = f"<demo-{month}-hosting@home.example>"
    outer.set_content("Forwarded; the plus address files it under Hosting GmbH.\n")
    outer.add_attachment(inner)
    mails.append(
        ("me@home.example", "invoices+hosting-gmbh@gmid.local", outer.as_bytes(policy=SMTP_POLICY))
    )

    receipt = EmailMessage()
    receipt["From"] = "shop@books.example"
    receipt["To"] = "invoices@gmid.local"
    receipt["Subject"] = f"Your receipt {month}"
    receipt["Message-ID"] = f"<demo-{month}-receipt@books.example>"
    receipt.set_content(
        "Thank you for your order.\nTotal: 23,90 EUR\n(no attachment: kept as .eml)\n"
    )
    mails.append(
        ("shop@books.example", "invoices@gmid.local", receipt.as_bytes(policy=SMTP_POLICY))
    )

    mails.append(mails[0])  # the same mail again: filed once
    return mails


def _send(host: str, port: int, mails: list[tuple[str, str, bytes]]) -> list[str]:
    answers = []
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.ehlo()
        for sender, rcpt, raw in mails:
            smtp.mail(sender)
            smtp.rcpt(rcpt)
            code, text = smtp.data(raw)
            answers.append(f"{code} {text.decode(errors='replace')}")
    return answers


DEMO_PORTAL = "demo-energie"


async def run_demo(daemon: Daemon) -> None:
    """Send the demo mails over real SMTP, then fetch from the demo portal (it asks a code)."""
    await _demo_mails(daemon)
    await _demo_portal(daemon)


async def _demo_mails(daemon: Daemon) -> None:
    if daemon.smtp is None or daemon.smtp.address is None:
        logger.warning("demo: the SMTP listener is disabled in the config; no mails to send")
        return
    host, port = daemon.smtp.address
    mails = demo_mails(date.today())
    logger.info("demo: sending %d sample mails to %s", len(mails), daemon.smtp.listen)
    try:
        answers = await asyncio.to_thread(_send, host, port, mails)
    except (OSError, smtplib.SMTPException) as e:
        logger.error("demo: could not send the sample mails: %s", e)
        return
    for (_sender, rcpt, _raw), answer in zip(mails, answers, strict=True):
        logger.info("demo: mail to %s -> %s", rcpt, answer)
    logger.info("demo: the documents are in %s", daemon.config.archive.dir)


async def _demo_portal(daemon: Daemon) -> None:
    from urllib.parse import urlsplit

    from gmid.demo.portal import DemoPortal, serve_in_thread

    runner = daemon.runner
    try:
        portal = runner.portal(DEMO_PORTAL) if runner else None
    except NotFound:
        portal = None
    if runner is None or portal is None:
        logger.info("demo: no %r portal in the config; skipping the portal demo", DEMO_PORTAL)
        return
    port = urlsplit(str(portal.options.get("start", ""))).port or 8089
    try:
        server = await asyncio.to_thread(serve_in_thread, DemoPortal(), port)
    except OSError as e:
        logger.error("demo: cannot serve the demo portal on 127.0.0.1:%d: %s", port, e.strerror)
        return
    config = f"-c {daemon.config.path}"
    subscription = daemon.events.subscribe()
    try:
        logger.info("demo: fetching the invoices of the demo portal on 127.0.0.1:%d", port)
        run = runner.fetch(DEMO_PORTAL)
        while not run.done():
            getter = asyncio.ensure_future(subscription.get())
            await asyncio.wait({getter, run}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            event = getter.result()
            if event["type"] == "challenge.pending" and event["data"]["portal"] == DEMO_PORTAL:
                logger.warning(
                    "demo: the portal waits for the SMS code above; in another terminal type "
                    "`.venv/bin/gmid code %s %s CODE`",
                    config,
                    DEMO_PORTAL,
                )
        record = await run
        logger.info("demo: portal run ended: %s (%s)", record.outcome, record.message)
        logger.info("demo: in another terminal try: .venv/bin/gmid documents %s", config)
        # Keep serving: a second `gmid fetch demo-energie` finds the session and no new files.
        await asyncio.Event().wait()
    finally:
        daemon.events.unsubscribe(subscription)
        server.shutdown()
        server.server_close()
