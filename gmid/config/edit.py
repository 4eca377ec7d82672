"""Adding and changing portals and companies for the TUI: files in the config's include folder.

The daemon writes what the user adds into `portals.d/NAME.yaml` (the folder the config's
`include:` reads) and never rewrites the user's own config.yaml. A new file's content is checked
as `load_config` checks an included file, with the rest of the config, before anything is
written. Passwords typed in the TUI go to `<state_dir>/secrets/NAME.password` (0600) and the
YAML only names that file; plain text in the YAML only when the caller insists.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gmid import yamlsyntax
from gmid.archive.fs import fsync_dir
from gmid.config.includes import HEADER, dump, form_descriptions, include_folder, slug, write
from gmid.config.load import (
    INCLUDABLE,
    Config,
    check_companies,
    load_config,
    read_companies,
    session_file,
)
from gmid.config.portals import PORTAL_NAME, PortalConfig, check_portals, read_portals
from gmid.config.reader import Reader
from gmid.errors import ConfigError, GmidError, NotFound, Problem

logger = logging.getLogger(__name__)

SECRET_FILES = {"password": "password", "totp_secret": "totp"}  # option -> file suffix


class ChangeRefused(GmidError):
    """A change that was not written; `problems` are the config problems it would have caused."""

    def __init__(self, message: str, problems: list[Problem] | tuple[()] = ()):
        self.problems = [str(p) for p in problems]
        super().__init__("\n".join([message, *self.problems]))


@dataclass(frozen=True)
class Secret:
    """A secret as the caller gave it: text to store, or a reference (`{env: X}`) to write."""

    text: str | None = None
    ref: dict[str, Any] | None = None


@dataclass
class Change:
    """What a change wrote or deleted, and what the user should know about it."""

    name: str
    file: Path | None  # None: the file was removed, nothing was left in it
    secrets: list[Path] = field(default_factory=list)  # secret files written
    deleted: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.file) if self.file else None,
            "secrets": [str(p) for p in self.secrets],
            "deleted": [str(p) for p in self.deleted],
            "warnings": list(self.warnings),
        }


def secret_path(config: Config, name: str, option: str) -> Path:
    """Where the secret store keeps a portal's password or TOTP secret."""
    return config.state_dir / "secrets" / f"{name}.{SECRET_FILES[option]}"


# -- the changes -------------------------------------------------------------------------------


def add_portal(
    config_path: Path,
    name: str,
    *,
    company: str | None = None,
    connector: str | None = None,
    form: dict[str, Any] | str | None = None,
    options: dict[str, Any] | None = None,
    username: str | None = None,
    secrets: dict[str, Secret] | None = None,
    plain_text: bool = False,
    enabled: bool | None = None,
    schedule: dict[str, Any] | None = None,
) -> Change:
    """Write a new portal into `<include folder>/NAME.yaml`; ChangeRefused if it is not valid.

    `form` is a form description, or the name of one that `form_descriptions` lists.
    """
    config = _disk_config(config_path)
    path = _new_portal_file(config, name)
    entry = _new_entry(config, name, company, connector, form, options, username)
    if enabled is not None:
        entry["enabled"] = enabled
    if schedule:
        entry["schedule"] = schedule
    writes, warnings = _place_secrets(config, entry, secrets or {}, plain_text, path)
    doc = {"portals": [_in_order(entry)]}
    text, found = _check(config, path, doc)
    written = _write_secrets(writes)
    try:
        write(path, text, _mode(doc), replace=False)
    except BaseException:
        for secret in written:
            secret.unlink(missing_ok=True)
        raise
    logger.info("portal %s added in %s", name, path)
    return Change(name, path, secrets=written, warnings=warnings + found)


def draft_portal(
    config_path: Path,
    name: str,
    *,
    company: str | None = None,
    connector: str | None = None,
    form: dict[str, Any] | str | None = None,
    options: dict[str, Any] | None = None,
    username: str | None = None,
    password: str | None = None,
) -> PortalConfig:
    """A new portal as add_portal would write it and the daemon read it, written nowhere.

    For a test login before the portal is added: ChangeRefused says what add_portal would
    refuse. The password stays in the returned portal's memory (a plain SecretRef) only.
    """
    config = _disk_config(config_path)
    path = _new_portal_file(config, name)
    entry = _new_entry(config, name, company, connector, form, options, username)
    if password is not None:
        entry["password"] = password
    _, _, portals = _read_checked(config, path, {"portals": [_in_order(entry)]})
    return portals[0]


def update_portal(
    config_path: Path,
    name: str,
    *,
    changes: dict[str, Any] | None = None,
    secrets: dict[str, Secret] | None = None,
    plain_text: bool = False,
) -> Change:
    """Change options of a portal that lives in an included file and rewrite that file.

    `changes` sets options (enabled, company, username, schedule); None (or an empty schedule)
    removes the option, so that the default or the global schedule applies.
    """
    config = _disk_config(config_path)
    portal = _editable(config, name)
    path = Path(portal.file)
    doc, kept_comments = _read(path)
    entry = _entry(doc, portal.name)
    for key, value in (changes or {}).items():
        if value is None or (key == "schedule" and not value):
            entry.pop(key, None)
        else:
            entry[key] = value
    before = {key: entry.get(key) for key in SECRET_FILES}
    writes, warnings = _place_secrets(config, entry, secrets or {}, plain_text, path)
    text, found = _check(config, path, doc)
    if kept_comments:
        warnings.append(f"the comments in {path} were not kept (gmid rewrites the file whole)")
    written = _write_secrets(writes)
    write(path, text, _mode(doc), replace=True)
    # a stored secret that the portal no longer names would only be a copy of a password
    dropped = [_stored(config, value) for key, value in before.items() if entry.get(key) != value]
    deleted = _delete(config, [p for p in dropped if p is not None], keep=portal.name)
    logger.info("portal %s changed in %s", portal.name, path)
    return Change(portal.name, path, written, deleted, warnings + found)


def remove_portal(config_path: Path, name: str, *, delete_secrets: bool = False) -> Change:
    """Take a portal out of its included file (the file goes when nothing is left in it).

    The archive and the index keep its documents. With delete_secrets, its files in the secret
    store and its saved session go too.
    """
    config = _disk_config(config_path)
    portal = _editable(config, name)
    path = Path(portal.file)
    doc, kept_comments = _read(path)
    entry = _entry(doc, portal.name)
    doc["portals"].remove(entry)
    warnings = []
    left: Path | None = path
    if not doc["portals"]:
        del doc["portals"]
    if any(doc.get(key) for key in INCLUDABLE):
        text, found = _check(config, path, doc)
        warnings += found
        if kept_comments:
            warnings.append(f"the comments in {path} were not kept (gmid rewrites the file whole)")
        write(path, text, _mode(doc), replace=True)
    else:
        path.unlink()
        fsync_dir(path.parent)
        left = None
    deleted = []
    if delete_secrets:
        referenced = [_stored(config, entry.get(key)) for key in SECRET_FILES]
        candidates = [secret_path(config, portal.name, key) for key in SECRET_FILES]
        candidates += [p for p in referenced if p is not None]
        candidates.append(session_file(config.state_dir, portal.name))
        deleted = _delete(config, candidates, keep=portal.name)
    logger.info("portal %s removed from %s", portal.name, path)
    return Change(portal.name, left, deleted=deleted, warnings=warnings)


def add_company(config_path: Path, name: str, senders: list[str]) -> Change:
    """Write a new company into `<include folder>/company-NAME.yaml`; ChangeRefused if invalid."""
    config = _disk_config(config_path)
    name = name.strip()
    for company in config.companies:
        if company.name.casefold() == name.casefold():
            where = f"{company.file}:{company.line}"
            raise ChangeRefused(f"a company named {company.name!r} exists already ({where})")
    stem = f"company-{slug(name, 'company')}"
    path = _target(config, f"{stem}.yaml")
    doc = {"companies": [{"name": name, "senders": senders}]}
    text, warnings = _check(config, path, doc)
    for n in range(1, 100):
        path = path.with_name(f"{stem}.yaml" if n == 1 else f"{stem}-{n}.yaml")
        try:
            write(path, text, _mode(doc), replace=False)
        except FileExistsError:
            continue
        logger.info("company %s added in %s", name, path)
        return Change(name, path, warnings=warnings)
    raise ChangeRefused(f"{path.parent}: too many files named {stem}-N.yaml; remove some")


# -- helpers -----------------------------------------------------------------------------------


def _named_form(config: Config, name: str) -> dict[str, Any]:
    for description in form_descriptions(config):
        if description["name"] == name:
            return description["form"]
    known = ", ".join(d["name"] for d in form_descriptions(config)) or "none"
    raise ChangeRefused(f"no form description named {name!r} (known: {known})")


ENTRY_ORDER = (
    "name",
    "company",
    "connector",
    "enabled",
    "username",
    *SECRET_FILES,
    "schedule",
    "form",
    "options",
)


def _new_entry(
    config: Config,
    name: str,
    company: str | None,
    connector: str | None,
    form: dict[str, Any] | str | None,
    options: dict[str, Any] | None,
    username: str | None,
) -> dict[str, Any]:
    """A new portal's entry: its connector, or form description (or the name of one)."""
    if isinstance(form, str):
        form = _named_form(config, form)
    entry: dict[str, Any] = {"name": name}
    if company is not None:
        entry["company"] = company
    if form is None or connector not in (None, "form"):
        entry["connector"] = connector or "form"
    if username is not None:
        entry["username"] = username
    if form is not None:
        entry["form"] = form
    if options is not None:
        entry["options"] = options
    return entry


def _in_order(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with its options in the order a reader expects them (name first...)."""
    return {key: entry[key] for key in ENTRY_ORDER if key in entry}


def _new_portal_file(config: Config, name: str) -> Path:
    """Where a new portal's file goes; ChangeRefused if the name is unusable or taken."""
    if not PORTAL_NAME.fullmatch(name):
        raise ChangeRefused(f"{name!r}: use letters, digits, '.', '_' and '-' (it names files)")
    if (taken := _find(config, name)) is not None:
        raise ChangeRefused(f"a portal named {taken.name!r} exists already ({_where(taken)})")
    path = _target(config, f"{name}.yaml")
    if path.exists():
        raise ChangeRefused(f"{path} exists already: remove it or choose another name")
    return path


def _disk_config(path: Path) -> Config:
    """The config as it is on disk now (the running one may be older); it must be valid."""
    try:
        return load_config(path)
    except ConfigError as e:
        raise ChangeRefused(
            "the config on disk has problems; fix them first (nothing was written):", e.problems
        ) from None


def _find(config: Config, name: str) -> PortalConfig | None:
    return next((p for p in config.portals if p.name.casefold() == name.casefold()), None)


def _where(portal: PortalConfig) -> str:
    return f"{portal.file}:{portal.line}"


def _editable(config: Config, name: str) -> PortalConfig:
    """The portal, if it lives in an included file; NotFound, or ChangeRefused for config.yaml."""
    portal = _find(config, name)
    if portal is None:
        known = ", ".join(p.name for p in config.portals) or "none configured"
        raise NotFound(f"no portal named {name!r} (known: {known})")
    if portal.file == str(config.path):
        raise ChangeRefused(
            f"portal {portal.name!r} is defined in {portal.file} (line {portal.line}): "
            "change it there (gmid does not rewrite your config file)"
        )
    return portal


def _target(config: Config, file: str) -> Path:
    """Where a new file goes; ChangeRefused when the config would not read it there."""
    folder, why_not = include_folder(config, file)
    if why_not is not None:
        raise ChangeRefused(f"{folder / file} would not be read: {why_not}")
    return folder / file


def _place_secrets(
    config: Config, entry: dict[str, Any], given: dict[str, Secret], plain_text: bool, path: Path
) -> tuple[list[tuple[Path, str]], list[str]]:
    """Put secrets into a portal entry: references as given, texts as files of the secret
    store (or, with plain_text, as text); return the secret files to write and warnings."""
    writes, warnings = [], []
    for option, secret in given.items():
        if secret.ref is not None:
            entry[option] = secret.ref
        elif plain_text:
            entry[option] = secret.text
            warnings.append(
                f"the {option.replace('_', ' ')} is written in plain text into {path}: "
                "anyone who can read that file can read it, and gmid warns about it at every start"
            )
        else:
            file = secret_path(config, entry["name"], option)
            entry[option] = {"file": str(file)}
            writes.append((file, secret.text or ""))
    return writes, warnings


def _check(config: Config, path: Path, doc: dict[str, Any]) -> tuple[str, list[str]]:
    """Return the file's text and warnings, checked as `load_config` checks an included file.

    ChangeRefused lists the problems as FILE:LINE: OPTION: MESSAGE, lines of the text that
    would have been written.
    """
    text, warnings, _ = _read_checked(config, path, doc)
    return text, warnings


def _read_checked(
    config: Config, path: Path, doc: dict[str, Any]
) -> tuple[str, list[str], list[PortalConfig]]:
    """`_check`, and the file's portals as the daemon would read them."""
    text = dump(doc)
    problems: list[Problem] = []
    warnings: list[str] = []
    r = Reader(path, problems, warnings)
    top = r.mapping(yaml.compose(text, Loader=yaml.SafeLoader), "", INCLUDABLE)
    others = [(c, "companies") for c in config.companies if c.file != str(path)]
    check_companies(problems, others + read_companies(r, top.get("companies")))
    portals = [p for p in config.portals if p.file != str(path)]
    read = read_portals(r, top.get("portals"), config.schedule)
    check_portals(problems, portals + read)
    if problems:
        raise ChangeRefused(f"nothing was written: {path} would have these problems", problems)
    return text, warnings, read


def _mode(doc: dict[str, Any]) -> int:
    """0600 for a file with a plain-text secret in it, else 0640 (the group may read configs)."""
    plain = any(
        isinstance(portal.get(option), str)
        for portal in doc.get("portals") or []
        if isinstance(portal, dict)
        for option in SECRET_FILES
    )
    return 0o600 if plain else 0o640


def _read(path: Path) -> tuple[dict[str, Any], bool]:
    """An included file as data, and whether it has comments of its own (not kept)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ChangeRefused(f"{path} cannot be read: {e}") from None
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        found = yamlsyntax.describe(e, text)
        where = f"{path}:{found.line}" if found.line else str(path)
        raise ChangeRefused(f"{where}: {found.message}") from None
    if not isinstance(doc, dict):
        raise ChangeRefused(f"{path}: expected a mapping with `portals:` or `companies:`")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    return doc, any(line != HEADER.strip() for line in comments)


def _entry(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in doc.get("portals") or []:
        if isinstance(entry, dict) and str(entry.get("name", "")).casefold() == name.casefold():
            return entry
    raise NotFound(f"no portal named {name!r} in the file")


def _stored(config: Config, value: Any) -> Path | None:
    """The secret-store file a `{file: ...}` reference names, if it is one of ours."""
    if not (isinstance(value, dict) and isinstance(value.get("file"), str)):
        return None
    path = Path(os.path.abspath(os.path.expanduser(value["file"])))
    return path if path.parent == config.state_dir / "secrets" else None


def _delete(config: Config, paths: list[Path], *, keep: str) -> list[Path]:
    """Delete files that no other portal of the config names; return those deleted."""
    used = {
        Path(ref.value)
        for p in config.portals
        if p.name.casefold() != keep.casefold()
        for ref in (p.password, p.totp_secret)
        if ref is not None and ref.kind == "file"
    }
    deleted = []
    for path in dict.fromkeys(paths):
        if path in used:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted.append(path)
    return deleted


def _write_secrets(writes: list[tuple[Path, str]]) -> list[Path]:
    """Write secret files (folder 0700, files 0600), each whole or not at all."""
    done = []
    for path, text in writes:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)  # mkdir's mode is cut by the umask, and only for new ones
        # "echo pw > file" style: one final newline, which reading removes again
        write(path, text + "\n", 0o600, replace=True)
        done.append(path)
    return done
