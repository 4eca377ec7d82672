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
    """The module of a destination type; NotAvailable when this gmid does not have it."""
    if type_ not in TYPES:
        raise NotAvailable(f"unknown destination type {type_!r} (known: {', '.join(TYPES)})")
    try:
        return importlib.import_module(TYPES[type_])
    except ModuleNotFoundError as e:
        if e.name != TYPES[type_]:
            raise  # the module is there but something it needs is not: a real error
        raise NotAvailable(
            f"the destination type {type_!r} is not available in this gmid"
        ) from None
