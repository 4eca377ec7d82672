"""The config's `smtp:` section: the local SMTP listener, who may deliver to it, TLS and AUTH."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, SequenceNode

from gmid.config.reader import Reader, is_null
from gmid.config.secretref import SecretRef, parse_secret, readers
from gmid.errors import quoted
from gmid.net import LOOPBACK_NETWORKS, Network, is_loopback, is_loopback_network


@dataclass(frozen=True)
class SmtpTls:
    """The certificate the SMTP listener offers with STARTTLS."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class SmtpAuth:
    """The one user name and password that SMTP AUTH accepts (only over TLS)."""

    username: str
    password: SecretRef


@dataclass(frozen=True)
class SmtpConfig:
    """The local SMTP listener that accepts forwarded invoice mails.

    A client whose address is in `clients` may deliver without AUTH; any other client must
    authenticate (STARTTLS first) when `auth` is set, and is refused at connect time otherwise.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    # Mail providers take attachments of about 25 MB: base64 makes 34 MB of them, and a body.
    max_message_size: int = 40 * 10**6
    recipients: tuple[str, ...] = ("invoices@gmid.local",)
    allow_remote: bool = False
    # Who may deliver without AUTH when `smtp.clients` is not set: programs on this machine.
    clients: tuple[Network, ...] = LOOPBACK_NETWORKS
    tls: SmtpTls | None = None
    auth: SmtpAuth | None = None
    # Sessions at the same time; beyond it the oldest that never sent a command makes room,
    # else the new client gets 421.
    max_sessions: int = 100
    # Bytes of a mail kept in memory while it arrives; the rest waits in a file in the state
    # folder until the mail is filed.
    spool_threshold: int = 1 << 20


_SMTP_KEYS = (
    "enabled",
    "listen",
    "allow_remote",
    "clients",
    "tls",
    "auth",
    "max_message_size",
    "recipients",
    "max_sessions",
    "spool_threshold",
)


def read_smtp(r: Reader, node: Node | None) -> SmtpConfig:
    """Read `smtp:`."""
    m = r.mapping(node, "smtp", _SMTP_KEYS)
    default = SmtpConfig()
    host, port = r.host_port(m.get("listen"), "smtp.listen", (default.host, default.port))
    allow_remote = r.boolean(m.get("allow_remote"), "smtp.allow_remote", False)
    clients = _clients(r, m.get("clients"))
    tls = _smtp_tls(r, m.get("tls"))
    auth = _smtp_auth(r, m.get("auth"))
    # Whether they were written, even if wrongly: a mistake in them is reported once, there.
    has_auth = not is_null(m.get("auth"))
    has_tls = not is_null(m.get("tls"))
    remote = not is_loopback(host)
    if remote and not allow_remote:
        r.problem(
            m.get("listen"),
            "smtp.listen",
            f"{host} is not a loopback address: other machines could send to the listener. "
            "If that is what you want, set allow_remote: true and say who may deliver: "
            "clients: (networks that may send without a password) and/or auth: with tls: "
            "(a user name and password, over STARTTLS only); else listen on 127.0.0.1",
        )
    if has_auth and not has_tls:
        r.problem(
            m["auth"],
            "smtp.auth",
            "AUTH is only offered over TLS, so that the password never crosses the network in "
            "clear: set smtp.tls (cert: and key:) too",
        )
    allowed = default.clients if clients is None else clients
    if remote and allow_remote and not has_auth:
        if all(is_loopback_network(network) for network in allowed):
            which = "lists only this machine" if clients else "is not set (this machine only)"
            if clients == ():
                which = "is empty"
            r.problem(
                m.get("allow_remote"),
                "smtp.allow_remote",
                f"no other machine could deliver: clients: {which} and auth: is not set; "
                "add the networks that may send (e.g. clients: [192.168.1.0/24]) and/or a user "
                "name and password (auth: with tls:)",
            )
    elif clients == () and not has_auth:
        r.problem(
            m["clients"],
            "smtp.clients",
            "empty and auth: is not set: no client could deliver mail; "
            "leave clients: out to let this machine deliver",
        )
    size = r.size(m.get("max_message_size"), "smtp.max_message_size", default.max_message_size)
    if size < 1:
        r.problem(m.get("max_message_size"), "smtp.max_message_size", "must be more than 0")
    recipients = r.addresses(m.get("recipients"), "smtp.recipients")
    if isinstance(m.get("recipients"), SequenceNode) and not m["recipients"].value:
        r.problem(m["recipients"], "smtp.recipients", "needs at least one address")
    return SmtpConfig(
        enabled=r.boolean(m.get("enabled"), "smtp.enabled", True),
        host=host,
        port=port,
        max_message_size=size,
        recipients=tuple(recipients) or default.recipients,
        allow_remote=allow_remote,
        clients=allowed,
        tls=tls,
        auth=auth,
        max_sessions=r.integer(m.get("max_sessions"), "smtp.max_sessions", 100, low=1),
        spool_threshold=r.size(
            m.get("spool_threshold"), "smtp.spool_threshold", default.spool_threshold
        ),
    )


def _clients(r: Reader, node: Node | None) -> tuple[Network, ...] | None:
    """Read `smtp.clients`: networks (192.168.1.0/24, 2001:db8::/32) or addresses; None if
    absent."""
    if is_null(node):
        return None
    found: list[Network] = []
    for i, item in enumerate(r.sequence(node, "smtp.clients")):
        option = f"smtp.clients[{i}]"
        text = (r.text(item, option) or "").strip()
        if not text:
            r.problem(item, option, "empty entry")
            continue
        try:
            network = ipaddress.ip_network(text)
        except ValueError:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                r.problem(
                    item,
                    option,
                    f"{quoted(text)} is not an IP address or network (such as 192.168.1.0/24, "
                    "192.168.1.20 or 2001:db8::/32); host names are not allowed",
                )
            else:
                r.problem(item, option, f"{text} has host bits set; did you mean {loose}?")
            continue
        if network.prefixlen == 0:
            r.warn(
                item,
                option,
                f"{network} is every IPv{network.version} address: any machine that can reach "
                "the listener may deliver without a password",
            )
        if network not in found:
            found.append(network)
    return tuple(found)


def _smtp_tls(r: Reader, node: Node | None) -> SmtpTls | None:
    """Read `smtp.tls`: cert: and key:, PEM files."""
    m = r.mapping(node, "smtp.tls", ("cert", "key"))
    if not m:
        if isinstance(node, MappingNode):
            r.problem(node, "smtp.tls", "needs cert: and key: (PEM files)")
        return None
    missing = [f"{key}:" for key in ("cert", "key") if is_null(m.get(key))]
    if missing:
        r.problem(node, "smtp.tls", f"needs {' and '.join(missing)} too (PEM files)")
    cert = r.path(m.get("cert"), "smtp.tls.cert")
    key = r.path(m.get("key"), "smtp.tls.key")
    if cert is None or key is None:
        return None
    if (who := readers(key)) is not None:
        r.warn(m["key"], "smtp.tls.key", f"{key} is readable by {who}: chmod 600 {key}")
    return SmtpTls(cert=cert, key=key)


def _smtp_auth(r: Reader, node: Node | None) -> SmtpAuth | None:
    """Read `smtp.auth`: the one user name and password SMTP AUTH accepts."""
    m = r.mapping(node, "smtp.auth", ("username", "password"))
    if not m:
        if isinstance(node, MappingNode):
            r.problem(node, "smtp.auth", "needs username: and password:")
        return None
    missing = [f"{key}:" for key in ("username", "password") if is_null(m.get(key))]
    if missing:
        r.problem(node, "smtp.auth", f"needs {' and '.join(missing)} too")
    username = r.text(m.get("username"), "smtp.auth.username")
    if username is not None and not username.strip():
        r.problem(m["username"], "smtp.auth.username", "expected a user name, got an empty value")
        username = None
    password = parse_secret(r, m.get("password"), "smtp.auth.password")
    if username is None or password is None:
        return None
    return SmtpAuth(username=username, password=password)
