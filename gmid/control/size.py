"""A number of bytes as people read it, the same in the CLI and the TUI."""

from __future__ import annotations


def human_size(n: int) -> str:
    """A number of bytes in SI units: "812 B", "1.2 kB", "46 kB", "3.4 MB"; at most 3 digits."""
    value, unit = float(n), "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 999.5:
            break
        value, unit = value / 1000, bigger
    if unit == "B":
        return f"{n} B"
    return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
