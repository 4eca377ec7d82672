"""The config's included files as gmid writes them: where they go, whole or not at all.

`include_folder` says where the config's `include:` reads a new file from; `write` puts a file
there atomically; `form_descriptions` lists the descriptions a new portal can start from.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import unicodedata
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

import connectors
from gmid.archive.fs import write_atomic
from gmid.config.load import Config

logger = logging.getLogger(__name__)

DEFAULT_FOLDER = "portals.d"
HEADER = "# written by gmid; edit freely, then `gmid reload`\n"


def include_folder(config: Config, file: str) -> tuple[Path, str | None]:
    """Return the folder the config's include takes `file` from, and why not when it does not.

    Without a usable include the folder is `portals.d` beside the config, and the reason says
    what to add to the config so that gmid reads it.
    """
    default = config.path.parent / DEFAULT_FOLDER
    add = f"add `include: {DEFAULT_FOLDER}/*.yaml` to {config.path} so that gmid reads it"
    if config.include is None:
        return default, f"the config has no include: {add}"
    pattern = os.path.expanduser(os.path.expandvars(config.include))
    if not os.path.isabs(pattern):
        pattern = os.path.join(config.path.parent, pattern)
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    rest = [part for part in parts[fixed:] if part != "**"]  # "**" also matches no folder
    if "$" not in pattern and len(rest) == 1 and fnmatchcase(file, rest[0]):
        return Path(*parts[:fixed]), None
    return default, f"the config's include ({config.include}) does not take it: {add}"


def slug(text: str, default: str = "portal") -> str:
    """Return a file-name-safe lower-case form of a name or domain."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:56].strip("-") or default


def form_descriptions(config: Config) -> list[dict[str, Any]]:
    """The form descriptions to pick from: `<config dir>/forms/*.yaml`, then gmid's own.

    Each is a YAML mapping with `form:` (what goes under a portal's `form:`), `description:`
    and optionally `company:`. A description of the config's folder hides gmid's of that name.
    """
    found: dict[str, dict[str, Any]] = {}
    folders = [(config.path.parent / "forms", "config"), (_builtin_forms(), "gmid")]
    for folder, source in folders:
        for path in sorted(folder.glob("*.yaml")):
            if path.stem in found:
                continue
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
                logger.warning("form description %s cannot be read: %s", path, e)
                continue
            if not isinstance(data, dict) or not isinstance(data.get("form"), dict):
                logger.warning("form description %s: expected a mapping with `form:`", path)
                continue
            found[path.stem] = {
                "name": path.stem,
                "description": str(data.get("description") or path.stem),
                "company": data.get("company"),
                "source": source,
                "file": str(path),
                # over the socket as JSON: a date YAML found in it travels as its text
                "form": json.loads(json.dumps(data["form"], default=str)),
            }
    return list(found.values())


def _builtin_forms() -> Path:
    return Path(connectors.__file__).parent / "forms"


class _Dumper(yaml.SafeDumper):
    """Indents lists inside mappings, as people write them by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def dump(doc: dict[str, Any]) -> str:
    """Return the text of a file gmid writes: its header comment, then the YAML."""
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def write(path: Path, text: str, mode: int, *, replace: bool) -> None:
    """Write a file whole (see gmid/archive/fs.py: write_atomic), creating its folder.

    Without `replace`, FileExistsError if the file exists (made in the meantime, perhaps).
    The temp file is hidden and not *.yaml: an include glob never reads a half-written file.
    """
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode, replace=replace)
