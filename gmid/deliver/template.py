"""Titles, subjects and bodies made from a document's fields: "{company} {number}"."""

from __future__ import annotations

import string
from collections.abc import Mapping

FIELDS = (
    "company",
    "date",
    "number",
    "amount",
    "currency",
    "kind",
    "source",
    "source_name",
    "title",
    "received_at",
    "name",
    "path",
)


def template_error(template: str) -> str | None:
    """Why a template cannot be used, or None; its fields are FIELDS in braces."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        return f"not a template: {e}"
    for name in names:
        if name not in FIELDS:
            return f"unknown field {{{name}}} (known: {', '.join(FIELDS)})"
    return None


def fill(template: str, fields: Mapping[str, str | None], name: str) -> str:
    """The template with the fields put in (a missing one is empty), spaces collapsed on each
    line; `name` is the document's file name, the field {name}."""
    values = {field: fields.get(field) or "" for field in FIELDS}
    values["name"] = name
    values["path"] = fields.get("path") or name
    try:
        text = template.format_map(values)
    except (ValueError, KeyError, IndexError, AttributeError):
        return ""
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
