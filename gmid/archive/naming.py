"""Archive file names: the template, its placeholders, and names safe on any filesystem."""

from __future__ import annotations

import datetime
import difflib
import re
import string
import unicodedata

from gmid.errors import ArchiveError, quoted

MAX_COMPONENT_BYTES = 200
FIELDS = ("company", "date", "received", "number", "source", "source_name", "sha", "ext")

_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)]
)
_FORBIDDEN = str.maketrans(dict.fromkeys('<>:"|?*\\', "_"))
_SPACES = re.compile(r" {2,}")


def _clean(text: str) -> str:
    """Return text in NFC with whitespace turned into spaces and control characters removed."""
    text = unicodedata.normalize("NFC", text)
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
    )


def sanitize_value(value: str | None) -> str:
    """Return a template value that cannot add a path separator or a control character."""
    return _clean((value or "").replace("/", "-").replace("\\", "-"))


def fit(stem: str, ext: str = "", extra: str = "") -> str:
    """Return stem + extra + ext as one safe name of at most MAX_COMPONENT_BYTES of UTF-8."""
    stem = _SPACES.sub(" ", stem).strip(" .")
    if stem.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        stem = "_" + stem  # Windows (and Samba shares) refuse CON, NUL, COM1...
    budget = MAX_COMPONENT_BYTES - len((extra + ext).encode())
    # Cut on a character boundary: a partial UTF-8 sequence at the end is dropped.
    stem = stem.encode()[:budget].decode("utf-8", "ignore").rstrip(" .")
    return (stem or "_") + extra + ext


def sanitize_component(name: str, ext: str = "") -> str:
    """Return one path component safe on any filesystem, keeping ext if name ends with it."""
    name = _SPACES.sub(" ", _clean(name).translate(_FORBIDDEN))
    if ext and name.endswith(ext):
        return fit(name[: -len(ext)], ext)
    return fit(name)


def render(template: str, values: dict, ext: str) -> list[str]:
    """Format template with sanitised values and return its sanitised path components."""
    parts = template.format_map(values).split("/")
    return [sanitize_component(p) for p in parts[:-1]] + [sanitize_component(parts[-1], ext)]


def _spec_problem(field: str, spec: str, conversion: str | None) -> str | None:
    """What is wrong with a placeholder's format spec, if anything."""
    if conversion not in (None, "s") or "{" in spec:
        return f"{{{field}}} may have a format spec only, like {{date:%Y}}"
    too_wide = [n for n in re.findall(r"\d+", spec) if int(n) > MAX_COMPONENT_BYTES]
    if too_wide:
        # "{sha:>1500000000}" would build a 1.5 GB name before it is cut to size.
        return (
            f"{{{field}:{quoted(spec)[1:-1]}}}: a width of {quoted(too_wide[0])[1:-1]} is more "
            f"than a file name holds (at most {MAX_COMPONENT_BYTES})"
        )
    return None


def template_problems(template: str, fields: tuple[str, ...] = FIELDS) -> list[str]:
    """Return what is wrong with a file-name template (nothing if it is usable).

    `fields` are the placeholders it may use: the archive's, or a destination's.
    """
    if not template.strip():
        return ["the template is empty"]
    problems = []
    if template.startswith(("/", "~")):
        problems.append("must be relative to archive.dir, not an absolute path")
    if ".." in re.split(r"[/\\]", template):
        problems.append("must not contain '..'; files stay inside archive.dir")
    if template.endswith("/"):
        problems.append("must end with a file name, not '/'")
    try:
        used = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)]
    except ValueError as e:
        return [*problems, f"{e} (write {{{{ and }}}} for literal braces)"]
    known = ", ".join(fields)
    for field, spec, conversion in used:
        if field is None:
            continue
        if field not in fields:
            # Only plain names: "{company.__class__}" or "{date[0]}" would reach into objects.
            close = difflib.get_close_matches(field, fields, n=1)
            hint = f"; did you mean {{{close[0]}}}?" if close else ""
            problems.append(f"unknown placeholder {{{field}}}{hint} (known: {known})")
        elif problem := _spec_problem(field, spec or "", conversion):
            problems.append(problem)
    if problems:
        return problems
    when = datetime.datetime(2024, 1, 31, 12, 0, tzinfo=datetime.UTC)
    sample = dict.fromkeys(fields, "x") | {"date": when.date(), "received": when, "ext": ".pdf"}
    try:
        render(template, sample, ".pdf")
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        problems.append(f"cannot be filled in: {e}")
    return problems


def check_template(template: str) -> None:
    """Raise ArchiveError unless template is a usable relative file-name template."""
    problems = template_problems(template)
    if problems:
        raise ArchiveError(f"archive template {quoted(template)}: {'; '.join(problems)}")


def printable(text: str) -> str:
    """A name from outside as it may be stored and shown: NFC, runs of white space as one
    space, no control or format character (a backspace, a bidi override that would turn what a
    terminal shows around)."""
    return _SPACES.sub(" ", _clean(text)).strip()
