"""The names documents get at a destination: a template like the archive's, with its placeholders
and three more: {name} (the archive's file name), {path} (its path in the archive), {kind}."""

from __future__ import annotations

import datetime
from pathlib import PurePosixPath

from yaml.nodes import Node

from gmid.archive.naming import FIELDS as ARCHIVE_FIELDS
from gmid.archive.naming import fit, render, sanitize_value, template_problems
from gmid.config.reader import Reader
from gmid.deliver.base import Delivery

FIELDS = (*ARCHIVE_FIELDS, "name", "path", "kind")


def read_template(r: Reader, node: Node | None, option: str, default: str) -> str:
    """Read a destination's name template; its problems go to the reader."""
    template = r.text(node, option, default)
    for message in template_problems(template, FIELDS):
        r.problem(node, option, message.replace("archive.dir", "the destination"))
    return template


def _day(text: str | None) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parts(template: str, item: Delivery) -> list[str]:
    """The path components the template gives a document (each safe on any filesystem)."""
    fields = item.fields
    ext = PurePosixPath(item.name).suffix
    received = datetime.datetime.now(datetime.UTC)
    if fields.get("received_at"):
        received = datetime.datetime.fromisoformat(str(fields["received_at"]))
    values = {
        key: sanitize_value(fields.get(key))
        for key in ("company", "number", "source", "source_name", "kind")
    }
    values |= {
        "date": _day(fields.get("date")) or received.date(),
        "received": received,
        "sha": item.sha256,
        "ext": ext,
        "name": sanitize_value(item.name),
        # Already a clean relative path of the archive; its folders stay folders.
        "path": fields.get("path") or item.name,
    }
    return render(template, values, ext)


def suffixed(name: str, n: int) -> str:
    """The n-th name of a collision chain: "x.pdf", "x (2).pdf", "x (3).pdf"."""
    if n == 1:
        return name
    suffix = PurePosixPath(name).suffix
    stem = name[: -len(suffix)] if suffix else name
    return fit(stem, suffix, f" ({n})")
