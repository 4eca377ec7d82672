"""Folder names as the server knows them: its namespace, its separator, the folders it has.

The config names folders as a user sees them in a mail program: "Archive", "Rechnungen/2026".
Servers differ: Cyrus and Courier keep every folder below INBOX ("INBOX.Archive") with "." as
the separator, Dovecot and most others keep them at the top with "/" or ".". The server's
NAMESPACE (or, without it, LIST) tells its personal prefix and separator; a name without the
prefix gets it, and "/" becomes the server's separator. A folder that does not exist is refused
with the closest one the server has.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from aioimaplib import IMAP4

from gmid.errors import GmidError
from gmid.mail.imap.wire import mailbox_arg, parse_list, parse_namespace

SUGGEST_CUTOFF = 0.75  # how alike a name must be to an existing one to be suggested
LISTED_IN_MESSAGE = 8  # folders named in a message when none is alike


class FolderMissing(GmidError):
    """A folder of the config does not exist on the server; the message says which might."""


@dataclass(frozen=True)
class Namespace:
    """The personal namespace: the prefix of the user's folders and the hierarchy separator."""

    prefix: str = ""
    separator: str | None = "/"

    def server_name(self, name: str) -> str:
        """The server's name of a folder as the config names it (decoded, not yet on the wire)."""
        wire = self.separated(name)
        if wire == "INBOX" or not self.prefix or wire.startswith(self.prefix):
            return wire
        return self.prefix + wire

    def separated(self, name: str) -> str:
        """The name with the server's separator for "/", and without a prefix added."""
        if name.upper() == "INBOX":
            return "INBOX"
        sep = self.separator
        wire = name.replace("/", sep) if sep and sep != "/" else name
        if sep and wire.upper().startswith("INBOX" + sep):
            wire = "INBOX" + wire[5:]  # INBOX is INBOX in any case, and so is the prefix
        return wire

    def user_name(self, server_name: str) -> str:
        """A server's folder name as the config may write it: without prefix, "/" as separator."""
        name = server_name
        if self.prefix and name.startswith(self.prefix) and name != self.prefix:
            name = name[len(self.prefix) :]
        sep = self.separator
        return name.replace(sep, "/") if sep and sep != "/" else name


@dataclass(frozen=True)
class ServerNames:
    """The server's names of the config's folders: those checked to exist, else as mapped.

    A name not checked is an action owed from before the config changed: mapped all the same.
    """

    namespace: Namespace = Namespace()
    checked: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.checked.get(name) or self.namespace.server_name(name)


async def namespace(client: IMAP4) -> Namespace:
    """The server's personal namespace, from NAMESPACE, or from LIST when it has none."""
    if "NAMESPACE" in client.protocol.capabilities:
        response = await client.namespace()
        personal = parse_namespace(response.lines) if response.result == "OK" else None
        if personal:
            prefix, separator = personal[0]
            return Namespace(prefix, separator)
    response = await client.list('""', '""')  # the separator alone (RFC 3501 6.3.8)
    listed = parse_list(response.lines) if response.result == "OK" else []
    return Namespace("", listed[0].separator if listed else "/")


async def _listed(client: IMAP4, pattern: str) -> list[str] | None:
    """The names of the selectable folders LIST finds; None when the server refused the LIST."""
    response = await client.list('""', pattern)
    if response.result != "OK":
        return None
    return [f.name for f in parse_list(response.lines) if f.selectable]


async def server_folder(client: IMAP4, ns: Namespace, name: str, *, what: str, create: bool) -> str:
    """The server's name for a folder of the config, checked to exist.

    The name with the personal prefix comes first; the name as written (with the server's
    separator) is taken where only that exists: a folder outside the personal namespace, or one
    a message here suggested. A missing folder is refused (FolderMissing) when the server has
    one alike, which the user most likely meant; otherwise it is refused too, unless create: a
    `move:` target that nothing on the server resembles is made by the first move. what names
    it in the message ("folder 'Archiv'"). Where the server refuses LIST, SELECT will tell.
    """
    candidates = list(dict.fromkeys([ns.server_name(name), ns.separated(name)]))
    wanted = candidates[0]
    if wanted == "INBOX":
        return wanted
    for candidate in candidates:
        if candidate in (await _listed(client, mailbox_arg(candidate)) or []):
            return candidate
    existing = await _listed(client, '"*"')
    if existing is None:
        return wanted
    # a name with a wildcard in it, which LIST took as a pattern
    found = next((c for c in candidates if c in existing), None)
    if found is not None:
        return found
    close = closest(ns, name, existing)
    if close is None and create:
        return wanted
    where = f" (as {wanted})" if wanted != name else ""
    if close is not None:
        hint = f"; did you mean {close}?"
    else:
        shown = sorted(existing)[:LISTED_IN_MESSAGE]
        more = ", ..." if len(existing) > len(shown) else ""
        hint = f"; the server has {', '.join(shown)}{more}" if shown else ""
    raise FolderMissing(f"{what} does not exist on the server{where}{hint}")


def closest(ns: Namespace, name: str, existing: list[str]) -> str | None:
    """The existing folder whose name is most like name, compared as the config writes them."""
    by_user_name: dict[str, str] = {}
    for server_name in sorted(existing):
        by_user_name.setdefault(ns.user_name(server_name).casefold(), server_name)
    wanted = ns.user_name(ns.server_name(name)).casefold()
    close = difflib.get_close_matches(wanted, list(by_user_name), n=1, cutoff=SUGGEST_CUTOFF)
    return by_user_name[close[0]] if close else None
