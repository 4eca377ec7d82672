"""An accounting inbox by e-mail: one mail per document, sent through the user's own server.

DATEV Unternehmen online, lexoffice, sevDesk and others take receipts mailed to a per-customer
address. Each document goes as the attachment of a mail of its own, by SMTP submission with
STARTTLS (or TLS from the first byte, `security: tls`) and AUTH; the server's certificate is
always verified (`ca_bundle` adds a private CA), and a server that offers no STARTTLS is refused
before the password is sent. The Message-ID is made from the delivery's key, so that a mail
sent again after a crash is the same mail to whoever looks (many inboxes drop the second).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from yaml.nodes import Node

from gmid.config.reader import Reader, is_email
from gmid.config.secretref import SecretRef, parse_secret
from gmid.deliver.base import Delivery, DeliveryFailed
from gmid.deliver.template import fill, template_error
from gmid.errors import SecretError, quoted

logger = logging.getLogger(__name__)

KEYS = (
    "host",
    "port",
    "security",
    "user",
    "password",
    "ca_bundle",
    "from",
    "to",
    "subject",
    "body",
)
SECURITY = {"starttls": 587, "tls": 465}
DEFAULT_SUBJECT = "{company} {number} {date}"
DEFAULT_BODY = "{company}\n{kind} {number}\n{date}\n{amount} {currency}\n\n{name}\n"
SMTP_TIMEOUT = 60.0  # seconds, at most, for one exchange with the server


@dataclass(frozen=True)
class Options:
    """An e-mail destination's options from the config."""

    host: str
    user: str
    password: SecretRef
    sender: str  # the option `from`
    to: str
    port: int = 587
    security: str = "starttls"
    ca_bundle: Path | None = None
    subject: str = DEFAULT_SUBJECT
    body: str = DEFAULT_BODY


def read_options(reader: Reader, node: Node | None, option: str) -> Options | None:
    """Read an e-mail destination's options (its entry in `deliver:` without the common keys);
    problems name file, line and option, and give None."""
    found = reader.mapping(node, option, KEYS)
    values: dict[str, str] = {}
    for key in ("host", "user", "from", "to"):
        text = reader.text(found.get(key), f"{option}.{key}")
        if text is None or not text.strip():
            reader.problem(found.get(key, node), f"{option}.{key}", "required")
        elif key in ("from", "to") and not is_email(text.strip()):
            reader.problem(found[key], f"{option}.{key}", f"{quoted(text)} is not user@domain")
        else:
            values[key] = text.strip()
    password = parse_secret(reader, found.get("password"), f"{option}.password")
    if password is None and "password" not in found:
        reader.problem(node, f"{option}.password", "required: AUTH is always used")
    security = reader.text(found.get("security"), f"{option}.security", "starttls")
    if security not in SECURITY:
        reader.problem(
            found.get("security"), f"{option}.security", "expected starttls or tls (no plain)"
        )
        security = "starttls"
    port = reader.integer(found.get("port"), f"{option}.port", SECURITY[security], low=1)
    templates = {}
    for key, default in (("subject", DEFAULT_SUBJECT), ("body", DEFAULT_BODY)):
        templates[key] = reader.text(found.get(key), f"{option}.{key}", default)
        if (error := template_error(templates[key])) is not None:
            reader.problem(found.get(key), f"{option}.{key}", error)
    if len(values) < 4 or password is None:
        return None
    return Options(
        host=values["host"],
        user=values["user"],
        password=password,
        sender=values["from"],
        to=values["to"],
        port=port,
        security=security,
        ca_bundle=reader.path(found.get("ca_bundle"), f"{option}.ca_bundle"),
        subject=templates["subject"],
        body=templates["body"],
    )


def message_id(item: Delivery, sender: str) -> str:
    """The same Message-ID for the same document and destination, every time."""
    digest = hashlib.sha256(item.key.encode()).hexdigest()[:40]
    return f"<{digest}.gmid@{sender.rpartition('@')[2]}>"


def compose(options: Options, item: Delivery) -> EmailMessage:
    """The mail that carries one document."""
    mail = EmailMessage()
    mail["From"] = options.sender
    mail["To"] = options.to
    mail["Subject"] = fill(options.subject, item.fields, item.name) or item.name
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = message_id(item, options.sender)
    mail.set_content(fill(options.body, item.fields, item.name) + "\n")
    maintype, _, subtype = item.media_type.partition("/")
    mail.add_attachment(
        item.read(),
        maintype=maintype or "application",
        subtype=subtype or "octet-stream",
        filename=item.name,
    )
    return mail


def destination(name: str, options: Options) -> Email:
    """The e-mail destination of these options."""
    return Email(name, options)


class Email:
    """The user's mail server and the inbox address; deliver() sends one mail per document."""

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.options = options
        self.context = ssl.create_default_context(
            cafile=str(options.ca_bundle) if options.ca_bundle else None
        )

    def close(self) -> None:
        """Nothing is kept open between deliveries."""

    def deliver(self, item: Delivery, deadline: float) -> str:
        """Send the document to the inbox; the mail's Message-ID."""
        options = self.options
        try:
            password = options.password.resolve()
        except SecretError as e:
            raise DeliveryFailed(f"mail to {options.to}: {e}") from None
        mail = compose(options, item)
        where = f"{options.host}:{options.port}"
        try:
            smtp = self._connect(deadline)
            try:
                self._send(smtp, mail, password, where)
            finally:
                # the mail is sent once the server said 250; a QUIT that fails changes nothing
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    smtp.quit()
                smtp.close()
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            raise DeliveryFailed(
                f"{where} refused {options.to}: {code} {_text(text)}", permanent=code >= 500
            ) from None
        except smtplib.SMTPResponseException as e:
            raise DeliveryFailed(
                f"{where} refused the mail: {_words(e)}", permanent=e.smtp_code >= 500
            ) from None
        except ssl.SSLError as e:
            why = getattr(e, "verify_message", None) or e.reason or str(e)
            raise DeliveryFailed(f"{where}: TLS: {why}") from None
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryFailed(f"{where} cannot be reached: {e}") from None
        logger.info("%s: %s sent to %s as %s", self.name, item.name, options.to, mail["Message-ID"])
        return str(mail["Message-ID"])

    def _send(self, smtp: smtplib.SMTP, mail: EmailMessage, password: str, where: str) -> None:
        """STARTTLS, AUTH and the mail, on a connected client."""
        options = self.options
        self._secure(smtp, where)
        try:
            smtp.login(options.user, password)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryFailed(
                f"{where} refused the login of {options.user}: {_words(e)}", permanent=True
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed(f"{where} offers no AUTH", permanent=True) from None
        smtp.send_message(mail, from_addr=options.sender, to_addrs=[options.to])

    def _connect(self, deadline: float) -> smtplib.SMTP:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeliveryFailed(f"mail to {self.options.to}: the delivery's time ran out")
        timeout = min(left, SMTP_TIMEOUT)
        host, port = self.options.host, self.options.port
        if self.options.security == "tls":
            return smtplib.SMTP_SSL(host, port, timeout=timeout, context=self.context)
        return smtplib.SMTP(host, port, timeout=timeout)

    def _secure(self, smtp: smtplib.SMTP, where: str) -> None:
        """STARTTLS, verified; a server without it gets no password."""
        if self.options.security == "tls":
            smtp.ehlo()
            return
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise DeliveryFailed(
                f"{where} offers no STARTTLS: the password is not sent without encryption",
                permanent=True,
            )
        smtp.starttls(context=self.context)
        smtp.ehlo()


def _words(error: smtplib.SMTPResponseException) -> str:
    return f"{error.smtp_code} {_text(error.smtp_error)}"


def _text(raw: bytes | str) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:300]
