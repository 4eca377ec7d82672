"""The config's `mailboxes:` section: IMAP mailboxes to watch and the rules that pick invoices."""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode

from gmid.config.reader import Reader, is_null, line_of
from gmid.config.secretref import SecretRef, parse_secret
from gmid.errors import did_you_mean, quoted
from gmid.net import is_loopback

MAILBOX_KEYS = (
    "name",
    "host",
    "port",
    "security",
    "allow_insecure",
    "ca_bundle",
    "username",
    "password",
    "folders",
    "since",
    "poll",
    "idle_check",
    "rules",
    "expunge",
    "enabled",
)
RULE_KEYS = ("from", "subject", "attachment", "exclude_attachment", "company", "then")
SECURITY = ("tls", "plain")
ACTIONS = ("none", "seen", "flag", "delete", "move")
DEFAULT_POLL = datetime.timedelta(minutes=5)
MIN_POLL = datetime.timedelta(seconds=10)
# How often an IDLE is ended to look for mail the server did not report (some never do)
DEFAULT_IDLE_CHECK = datetime.timedelta(minutes=5)
MIN_IDLE_CHECK = datetime.timedelta(seconds=1)
MAX_IDLE_CHECK = datetime.timedelta(minutes=28)  # servers may end an IDLE after 30 minutes
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ADDRESS_PATTERN = re.compile(r"[^\s@]*@[^\s@]*")


@dataclass(frozen=True)
class Action:
    """What is done to a mail once its documents are on disk."""

    kind: str = "none"  # one of ACTIONS
    folder: str | None = None  # the target of "move"

    def __str__(self) -> str:
        return f"move: {self.folder}" if self.kind == "move" else self.kind


@dataclass(frozen=True)
class Rule:
    """Which mails of a mailbox hold invoices; every given condition must hold."""

    senders: tuple[str, ...] = ()  # "@domain", "user@domain" or globs, lower-case
    subjects: tuple[str, ...] = ()  # case-insensitive words or globs
    attachments: tuple[str, ...] = ()  # file name globs, lower-case
    exclude_attachments: tuple[str, ...] = ()
    company: str | None = None
    then: Action = field(default_factory=Action)

    def sender_matches(self, addresses: Iterable[str]) -> bool:
        """Tell whether one of the mail's sender addresses is one this rule names."""
        if not self.senders:
            return True
        return any(_address_matches(p, a.lower()) for p in self.senders for a in addresses)

    def subject_matches(self, subject: str) -> bool:
        """Tell whether the subject contains one of the words (or matches one of the globs)."""
        if not self.subjects:
            return True
        folded = subject.casefold()
        return any(
            fnmatch.fnmatchcase(folded, p) if _is_glob(p) else p in folded for p in self.subjects
        )

    def attachment_wanted(self, filename: str | None) -> bool:
        """Tell whether a part with this file name may be filed under this rule."""
        name = (filename or "").casefold()
        if any(fnmatch.fnmatchcase(name, p) for p in self.exclude_attachments):
            return False
        return not self.attachments or any(fnmatch.fnmatchcase(name, p) for p in self.attachments)


@dataclass(frozen=True)
class MailboxConfig:
    """One IMAP account and the folders of it that gmid watches."""

    name: str
    host: str
    port: int
    security: str
    username: str
    password: SecretRef | None
    folders: tuple[str, ...] = ("INBOX",)
    since: datetime.date | None = None
    poll: datetime.timedelta = DEFAULT_POLL
    idle_check: datetime.timedelta = DEFAULT_IDLE_CHECK
    rules: tuple[Rule, ...] = ()
    # On a server without UIDPLUS: EXPUNGE the folder after deleting or moving mails, which
    # also removes mails others flagged \Deleted there; without it they stay flagged \Deleted.
    expunge: bool = False
    enabled: bool = True
    allow_insecure: bool = False
    ca_bundle: Path | None = None
    file: str = ""
    line: int | None = None


def _address_matches(pattern: str, address: str) -> bool:
    if _is_glob(pattern):
        return fnmatch.fnmatchcase(address, pattern)
    if pattern.startswith("@"):
        domain = address.rpartition("@")[2]
        return domain == pattern[1:] or domain.endswith("." + pattern[1:])
    return address == pattern


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def read_mailboxes(r: Reader, node: Node | None) -> list[MailboxConfig]:
    """Read the `mailboxes:` list; every problem is recorded with its file, line and option."""
    found: list[MailboxConfig] = []
    names: dict[str, int | None] = {}
    for i, item in enumerate(r.sequence(node, "mailboxes")):
        option = f"mailboxes[{i}]"
        if not isinstance(item, MappingNode):
            r.problem(item, option, "expected a mailbox: name:, host:, username:, password: ...")
            continue
        mailbox = _mailbox(r, item, option)
        if mailbox is None:
            continue
        if mailbox.name in names:
            r.problem(
                item,
                f"{option}.name",
                f"duplicate mailbox {quoted(mailbox.name)}; first at line {names[mailbox.name]}",
            )
            continue
        names[mailbox.name] = mailbox.line
        found.append(mailbox)
    return found


def _mailbox(r: Reader, node: MappingNode, option: str) -> MailboxConfig | None:
    m = r.mapping(node, option, MAILBOX_KEYS)
    name = r.text(m.get("name"), f"{option}.name")
    if name is None:
        r.problem(node, f"{option}.name", "every mailbox needs a name")
        return None
    if not _NAME.fullmatch(name):
        r.problem(
            m["name"], f"{option}.name", f"{quoted(name)}: use letters, digits, '.', '_' and '-'"
        )
    host = (r.text(m.get("host"), f"{option}.host") or "").strip()
    if not host:
        r.problem(m.get("host", node), f"{option}.host", "every mailbox needs the server's host")
    security = (r.text(m.get("security"), f"{option}.security", "tls") or "").strip().lower()
    if security not in SECURITY:
        r.problem(
            m.get("security"),
            f"{option}.security",
            f"{quoted(security)} is not one of tls, plain" + did_you_mean(security, SECURITY),
        )
        security = "tls"
    allow_insecure = r.boolean(m.get("allow_insecure"), f"{option}.allow_insecure", False)
    if security == "plain" and host and not is_loopback(host) and not allow_insecure:
        r.problem(
            m.get("security"),
            f"{option}.security",
            f"plain IMAP to {host} would send the password unencrypted; use tls, or set "
            "allow_insecure: true if the network in between is yours",
        )
    port = r.integer(m.get("port"), f"{option}.port", 993 if security == "tls" else 143, low=1)
    if port > 65535:
        r.problem(m["port"], f"{option}.port", f"port {port} is out of range (1-65535)")
    username = r.text(m.get("username"), f"{option}.username")
    password = parse_secret(r, m.get("password"), f"{option}.password")
    if username is None or not username.strip():
        r.problem(m.get("username", node), f"{option}.username", "the login name is needed")
    if password is None and "password" not in m:
        r.problem(node, f"{option}.password", "the password is needed (a secret reference)")
    folders = _folders(r, m.get("folders"), f"{option}.folders")
    poll = r.duration(m.get("poll"), f"{option}.poll", DEFAULT_POLL)
    if poll < MIN_POLL:
        r.problem(m["poll"], f"{option}.poll", f"at least {int(MIN_POLL.total_seconds())}s")
        poll = MIN_POLL
    idle_check = _idle_check(r, m.get("idle_check"), f"{option}.idle_check")
    rules = tuple(
        rule
        for j, item in enumerate(r.sequence(m.get("rules"), f"{option}.rules"))
        if (rule := _rule(r, item, f"{option}.rules[{j}]", folders)) is not None
    )
    return MailboxConfig(
        name=name,
        host=host,
        port=port,
        security=security,
        username=(username or "").strip(),
        password=password,
        folders=folders,
        since=r.convert(m.get("since"), f"{option}.since", _date, None),
        poll=poll,
        idle_check=idle_check,
        rules=rules,
        expunge=r.boolean(m.get("expunge"), f"{option}.expunge", False),
        enabled=r.boolean(m.get("enabled"), f"{option}.enabled", True),
        allow_insecure=allow_insecure,
        ca_bundle=r.path(m.get("ca_bundle"), f"{option}.ca_bundle"),
        file=r.file,
        line=line_of(node),
    )


def _idle_check(r: Reader, node: Node | None, option: str) -> datetime.timedelta:
    check = r.duration(node, option, DEFAULT_IDLE_CHECK)
    if check < MIN_IDLE_CHECK:
        r.problem(node, option, f"at least {int(MIN_IDLE_CHECK.total_seconds())}s")
        return MIN_IDLE_CHECK
    if check > MAX_IDLE_CHECK:
        minutes = int(MAX_IDLE_CHECK.total_seconds() // 60)
        r.problem(node, option, f"at most {minutes}m: servers may end an IDLE after 30 minutes")
        return MAX_IDLE_CHECK
    return check


def _folders(r: Reader, node: Node | None, option: str) -> tuple[str, ...]:
    if is_null(node):
        return ("INBOX",)
    items = _words(r, node, option)
    folders: list[str] = []
    for i, folder in enumerate(items):
        text = folder.strip()
        if not text or any(c in text for c in "\r\n\0"):
            r.problem(node, f"{option}[{i}]", f"{quoted(folder)} is not a folder name")
        elif text.upper() == "INBOX" and "INBOX" not in folders:
            folders.append("INBOX")
        elif text in folders or text.upper() == "INBOX":
            r.problem(node, f"{option}[{i}]", f"{quoted(text)} is listed twice")
        else:
            folders.append(text)
    if not folders and not items:
        r.problem(node, option, "name at least one folder, e.g. [INBOX]")
    return tuple(folders) or ("INBOX",)


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {quoted(value)}") from None


def _rule(r: Reader, node: Node, option: str, folders: tuple[str, ...]) -> Rule | None:
    if not isinstance(node, MappingNode):
        r.problem(node, option, "expected a rule: from:, subject:, attachment:, then: ...")
        return None
    m = r.mapping(node, option, RULE_KEYS)
    senders = []
    for j, text in enumerate(_words(r, m.get("from"), f"{option}.from")):
        pattern = text.strip().lower()
        if not _ADDRESS_PATTERN.fullmatch(pattern) or pattern == "@":
            r.problem(
                m["from"],
                f"{option}.from[{j}]",
                f"{quoted(text)} is not an address, @domain or a glob such as billing@*",
            )
        else:
            senders.append(pattern)
    subjects = [s.strip().casefold() for s in _words(r, m.get("subject"), f"{option}.subject")]
    include = _globs(r, m.get("attachment"), f"{option}.attachment")
    exclude = _globs(r, m.get("exclude_attachment"), f"{option}.exclude_attachment")
    company = r.text(m.get("company"), f"{option}.company")
    if company is not None and not company.strip():
        r.problem(m["company"], f"{option}.company", "expected a company name")
        company = None
    return Rule(
        senders=tuple(senders),
        subjects=tuple(s for s in subjects if s),
        attachments=include,
        exclude_attachments=exclude,
        company=company.strip() if company else None,
        then=_action(r, m.get("then"), f"{option}.then", folders),
    )


def _words(r: Reader, node: Node | None, option: str) -> list[str]:
    if isinstance(node, ScalarNode) and not is_null(node):
        return [node.value]
    return r.text_list(node, option)


def _globs(r: Reader, node: Node | None, option: str) -> tuple[str, ...]:
    globs = []
    for j, text in enumerate(_words(r, node, option)):
        if not text.strip():
            r.problem(node, f"{option}[{j}]", "empty pattern")
        else:
            globs.append(text.strip().casefold())
    return tuple(globs)


def _action(r: Reader, node: Node | None, option: str, folders: tuple[str, ...]) -> Action:
    if is_null(node):
        return Action()
    if isinstance(node, ScalarNode):
        kind = node.value.strip().lower()
        if kind == "move":
            r.problem(node, option, "say where to: `then: {move: Folder}`")
        elif kind not in ACTIONS:
            r.problem(
                node,
                option,
                f"{quoted(node.value)} is not one of none, seen, flag, delete, move: FOLDER"
                + did_you_mean(kind, ACTIONS),
            )
        else:
            return Action(kind)
        return Action()
    m = r.mapping(node, option, ("move",))
    if not isinstance(node, MappingNode) or "move" not in m:
        if isinstance(node, MappingNode) and not m and not node.value:
            r.problem(node, option, "expected none, seen, flag, delete or move: FOLDER")
        return Action()
    target = (r.text(m["move"], f"{option}.move") or "").strip()
    if not target or any(c in target for c in "\r\n\0"):
        r.problem(m["move"], f"{option}.move", "expected the folder to move the mail to")
        return Action()
    if target in folders or (target.upper() == "INBOX" and "INBOX" in folders):
        r.problem(
            m["move"],
            f"{option}.move",
            f"{quoted(target)} is a watched folder of this mailbox: the mail would come back",
        )
    return Action("move", "INBOX" if target.upper() == "INBOX" else target)
