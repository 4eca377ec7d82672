"""A browser's cookies.txt export as a client reads it to send it to the daemon.

The daemon opens no path a client names: the CLI and the TUI read the file themselves, with a
size cap and an encoding check before anything is sent, and `portal.session.import` takes its
text. What the cookies are and which of them a portal keeps is gmid/portals/cookiestxt.py.
"""

from __future__ import annotations

from pathlib import Path

from gmid.errors import GmidError

# The file travels to the daemon in one control-socket request line (at most 1 MiB of JSON,
# where a tab takes two bytes): half of that leaves room. A browser exports a few KB per site.
MAX_BYTES = 512 * 1024


class CookieFileError(GmidError, ValueError):
    """The cookies cannot be used; the message says why, never with a cookie's value."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


def decode(data: bytes, name: str = "the file") -> str:
    """The text of a cookies file: UTF-8 (a BOM is dropped), at most MAX_BYTES."""
    if len(data) > MAX_BYTES:
        raise CookieFileError(
            f"{name} is larger than {MAX_BYTES // 1024} KB: not a cookies.txt export of a site "
            "(export only the portal's site's cookies)"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CookieFileError(f"{name} is UTF-16 text; save it as UTF-8 (or plain ASCII)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CookieFileError(
            f"{name} is not UTF-8 text (line {line}, byte {e.start}): "
            "not a cookies.txt export, or saved in another encoding"
        ) from None
    return text.removeprefix("\ufeff")


def read_file(path: str | Path) -> str:
    """Read a cookies file for an import, refusing a huge or binary one before it is sent."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise CookieFileError(f"{path} is a folder, not a cookies.txt file") from None
    except OSError as e:
        raise CookieFileError(f"{path}: {e.strerror or e}") from None
    return decode(data, str(path))
