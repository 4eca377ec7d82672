"""The destination types by their `type:` name, each module imported only when it is used."""

from __future__ import annotations

import importlib
from types import ModuleType

from gmid.errors import GmidError

TYPES = {
    "folder": "gmid.deliver.folder",
    "command": "gmid.deliver.command",
    "webdav": "gmid.deliver.webdav",
    "paperless": "gmid.deliver.paperless",
    "email": "gmid.deliver.email",
}


class NotAvailable(GmidError):
    """A destination type this installation of gmid does not have."""


def module(type_: str) -> ModuleType:
    """The module of a destination type; NotAvailable for a type gmid does not know."""
    if type_ not in TYPES:
        raise NotAvailable(f"unknown destination type {type_!r} (known: {', '.join(TYPES)})")
    return importlib.import_module(TYPES[type_])
