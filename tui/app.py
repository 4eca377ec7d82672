"""The Textual dashboard (`gmid-tui`); it talks to the daemon only through gmid.control."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of `gmid-tui`."""
    print("gmid-tui: the terminal dashboard is not built yet; use `gmid status`.", file=sys.stderr)
    return 1
