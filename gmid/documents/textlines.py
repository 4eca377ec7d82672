"""An invoice's text as lines and columns: where a label's value may stand.

pypdf's layout text keeps a page's lines, and its columns as runs of blanks: a value stands to
the right of its label, or under it in the label's column (a table's heading). Hit is a found
value with the line it stands on and why it was taken.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import islice

BELOW = 3  # lines under a label where its value may stand
MAX_LINE = 1000  # characters of a line looked at (a page's layout line has under 400)
MAX_MATCHES = 5  # matches of one pattern on one line looked at
HEADING_END = re.compile(r"\s{2,}|\s*$")  # a label that ends a table's heading cell


@dataclass(frozen=True)
class Hit:
    """A field's value, where it stands (line index) and why it was taken."""

    value: object
    line: int
    why: str
    score: float = 0


def cells_below(lines: list[str], i: int, start: int, end: int) -> list[tuple[int, str]]:
    """The first cell standing in the columns start..end in the next BELOW lines (under a
    heading), as a list of (line index, text); lines blank there (another column's text) are
    passed over."""
    found = []
    for j in range(i + 1, min(len(lines), i + 1 + BELOW)):
        line = lines[j]
        if not line.strip():
            continue
        # Widen to the whole word-run under the heading, so a right- or left-aligned cell counts.
        lo, hi = start, end
        while lo > 0 and line[lo - 1 : lo].strip():
            lo -= 1
        while hi < len(line) and line[hi : hi + 1].strip():
            hi += 1
        if line[lo:hi].strip():
            found.append((j, " " * lo + line[lo:hi]))
            break
        if line[:start].strip() and line[end:].strip():
            break  # a row across the heading's column, blank in it: the column ends here
    return found


class Lines(list):
    """A text's lines, and the same lower-cased (column for column) for the labels."""

    def __init__(self, lines: list[str]):
        # Bounded, so that a hostile text of one endless line costs no quadratic time.
        lines = [line.rstrip()[:MAX_LINE] for line in lines]
        super().__init__(lines)
        self.low = [_lower(line) for line in lines]
        # How many lines with text come before each line (layout text has many blank ones).
        self.rank = []
        count = 0
        for line in lines:
            self.rank.append(count)
            count += bool(line.strip())


def _lower(line: str) -> str:
    low = line.lower()
    if len(low) == len(line):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in line)  # "İ" -> "i̇"


def lines_with(lines: Lines, patterns, low: bool = False) -> list[int]:
    """The indexes of the lines where any of the patterns matches (on the lower-cased lines
    if low), in order.

    Each pattern runs once over the whole text, not once per line: most lines hold nothing.
    """
    text = "\n".join(lines.low if low else lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found = {bisect_right(starts, m.start()) - 1 for p in patterns for m in p.finditer(text)}
    return sorted(found)


def matches(pattern: re.Pattern, line: str) -> list[re.Match]:
    """The first MAX_MATCHES matches of pattern in line."""
    return list(islice(pattern.finditer(line), MAX_MATCHES))
