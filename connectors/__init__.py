"""The connectors: one module per kind of portal, found by name.

A built-in connector is the module (or package) `connectors.NAME` defining a Connector subclass
whose `name` is NAME (`form` -> connectors.form.FormConnector). Connectors from other packages
declare an entry point in the group `gmid.connectors` (`name = "package.module:Class"`). Built-ins
win.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import pkgutil
import re

from connectors.base import Connector

ENTRY_POINT_GROUP = "gmid.connectors"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_NOT_CONNECTORS = {"base"}


def builtin_names() -> list[str]:
    """Return the names of the connectors shipped in this package."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if _NAME.fullmatch(info.name) and info.name not in _NOT_CONNECTORS
    )


def available() -> list[str]:
    """Return the name of every connector that can be loaded: built-ins and entry points."""
    names = set(builtin_names())
    names.update(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def load_connector(name: str) -> type[Connector]:
    """Return the connector class called `name`; KeyError (with the known names) if none is."""
    if _NAME.fullmatch(name) and name in builtin_names():
        return _builtin(name)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            cls = ep.load()
        except Exception as e:  # a broken plugin is reported like an unknown name, with why
            raise KeyError(f"connector {name!r} ({ep.value}) cannot be loaded: {e}") from e
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise KeyError(f"connector {name!r} ({ep.value}) is not a Connector class")
        return cls
    known = available()
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise KeyError(f"unknown connector {name!r}{hint} (known: {', '.join(known) or 'none'})")


def _builtin(name: str) -> type[Connector]:
    """Return the Connector subclass that a built-in module defines under `name`."""
    module = importlib.import_module(f"{__name__}.{name}")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Connector)
            and (value.__module__ + ".").startswith(module.__name__ + ".")
            and getattr(value, "name", None) == name
        ):
            return value
    raise KeyError(f"connector module {module.__name__} defines no Connector named {name!r}")
