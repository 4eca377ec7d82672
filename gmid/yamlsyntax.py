"""A YAML syntax error told in the user's terms: the line, a caret under the spot, and words
about what to change instead of the parser's own ("expected <block end>, but found ...").

Used wherever gmid reads YAML a person wrote: the config and its includes, and the CLI's quick
look for the control socket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

SHOWN = 100  # characters of the faulty line shown around the caret


@dataclass(frozen=True)
class SyntaxProblem:
    """Where a YAML text stops being YAML, and what to do about it."""

    line: int | None  # 1-based
    message: str  # starts with "syntax error: "
    excerpt: str  # the line and a caret under the column, or "" when unknown


# (pattern on the parser's problem, on its context) -> words; {opened} names the line where an
# open bracket began, when that is not the line shown.
_PLAIN: list[tuple[str, str, str]] = [
    (
        r"found character '\\t'",
        "",
        "a tab character; YAML indents with spaces only",
    ),
    (
        r"found unexpected end of stream",
        r"quoted scalar",
        "this quote is never closed",
    ),
    (
        r"expected ',' or '\]'",
        "",
        "a list in [ ]{opened} is not closed (or an item lacks a comma)",
    ),
    (
        r"expected ',' or '\}'",
        "",
        "a mapping in { }{opened} is not closed (or an entry lacks a comma)",
    ),
    (
        r"found '<stream end>'",
        r"flow",
        "a list in [ ] or a mapping in { }{opened} is not closed",
    ),
    (
        r"'<stream end>'|end of stream",
        "",
        "the file ends before this value is complete",
    ),
    (
        r"mapping values are not allowed here",
        "",
        "a colon where no option can start: check the indentation, and quote a value that "
        "contains ': '",
    ),
    (
        r"could not find expected ':'",
        "",
        "a line that is not `option: value`: a colon is missing, or a quote is not closed",
    ),
    (
        r"expected <block end>, but found '-'|did not find expected '-' indicator",
        "",
        "a list item that does not line up with the items above it",
    ),
    (
        r"expected <block end>|did not find expected key",
        "",
        "this line's indentation does not match the lines above it",
    ),
    (
        r"found undefined alias",
        "",
        "an alias *name with no anchor &name defined before it",
    ),
    (
        r"found duplicate anchor",
        "",
        "the same anchor &name is defined twice",
    ),
    (
        r"found unknown escape character",
        "",
        "an unknown backslash escape in a double-quoted value; use single quotes to keep "
        "backslashes as they are",
    ),
    (
        r"found character '@' that cannot start any token|found character '`'",
        "",
        "a value that starts with @ or ` must be quoted",
    ),
    (
        r"expected alphabetic or numeric character",
        r"scanning an (anchor|alias)",
        "a value that starts with & or * must be quoted (they begin anchors and aliases)",
    ),
    (
        r"expected alphabetic or numeric character",
        r"scanning a directive",
        "a line that starts with % must be quoted",
    ),
    (
        r"sequence entries are not allowed here",
        "",
        "a list item (- ) where an option was expected: check the indentation",
    ),
    (
        r"expected the node content",
        r"flow",
        "a value inside [ ] or { } is missing or must be quoted",
    ),
    (
        r"found character '%' that cannot start any token",
        "",
        "a value that starts with % must be quoted",
    ),
]


def describe(error: yaml.YAMLError, text: str | None) -> SyntaxProblem:
    """Tell a PyYAML error in plain words, with the faulty line of `text` and a caret."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return SyntaxProblem(None, f"syntax error: {_cut(str(error))}", "")
    mark = error.problem_mark or error.context_mark
    problem, context = error.problem or "", error.context or ""
    at_end = "end of stream" in problem or (
        text is not None and mark is not None and mark.line >= len(text.splitlines())
    )
    if at_end and error.context_mark is not None:
        mark = error.context_mark  # the end of the file says less than where it began
    context_line = error.context_mark.line + 1 if error.context_mark is not None else None
    words = None
    for pattern, context_pattern, plain in _PLAIN:
        if re.search(pattern, problem) and re.search(context_pattern, context):
            same = context_line is None or (mark is not None and context_line == mark.line + 1)
            words = plain.replace("{opened}", "" if same else f" opened at line {context_line}")
            break
    if words is None:  # the parser's own words, which still name the two places
        words = problem or context
        if problem and context and context_line is not None:
            words += f" ({context} at line {context_line})"
    excerpt = _excerpt(text, mark.line, mark.column) if text is not None and mark else ""
    return SyntaxProblem(mark.line + 1 if mark else None, f"syntax error: {words}", excerpt)


def _excerpt(text: str, line: int, column: int) -> str:
    """The line (tabs and controls shown as one space each) and a caret under `column`."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return ""
    shown = "".join(c if c.isprintable() else " " for c in lines[line])
    if secret := _SECRET.match(shown):  # a config line is shown in logs too: never its secret
        shown = secret.group(1) + "***"
        column = min(column, len(shown))
    start = max(0, min(column - SHOWN // 2, len(shown) - SHOWN))
    shown = shown[start : start + SHOWN]
    number = f"{line + 1} | "
    return f"  {number}{shown.rstrip()}\n  {' ' * (len(number) - 2)}| {' ' * (column - start)}^"


# An option whose value may be a secret written inline (password: hunter2, totp_secret: ...).
_SECRET = re.compile(
    r"(\s*(?:-\s+)?[\"']?\w*(?:pass|secret|token|totp|key|auth)\w*[\"']?\s*:\s*)\S", re.I
)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
