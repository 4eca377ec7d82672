"""A captcha's image in the terminal: textual-image where installed, else half blocks via Pillow.

Both are optional (`pip install gmid[images]`). Without an image decoder the prompt shows the
image's path, which any image viewer opens.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

Pixel = tuple[int, int, int]


def half_blocks(pixels: list[list[Pixel]]) -> Text:
    """Two pixel rows per line of text: "▀" in the upper pixel's colour on the lower one's."""
    text = Text()
    for y in range(0, len(pixels), 2):
        upper = pixels[y]
        lower = pixels[y + 1] if y + 1 < len(pixels) else None
        for x, top in enumerate(upper):
            bottom = lower[x] if lower is not None else None
            text.append(
                "▀",
                Style(
                    color=Color.from_rgb(*top),
                    bgcolor=Color.from_rgb(*bottom) if bottom else None,
                ),
            )
        if y + 2 < len(pixels):
            text.append("\n")
    return text


def decode(path: Path, max_width: int = 62, max_height: int = 24) -> list[list[Pixel]] | None:
    """The image's pixels scaled to fit, or None when Pillow is missing or cannot read it."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((max_width, max_height))
            width, height = image.size
            data = list(image.getdata())
    except (OSError, ValueError):
        return None
    return [data[row * width : (row + 1) * width] for row in range(height)]


def image_widget(path: str | None) -> Widget | None:
    """A widget showing the image, or None when no decoder can read it here."""
    if not path or not Path(path).is_file():
        return None
    # Only when main() imported it before the app started: it asks the terminal what it can do.
    module = sys.modules.get("textual_image.widget")
    if module is not None:
        try:
            return module.Image(path, classes="captcha")
        except Exception:  # a format it cannot read: fall back to the half blocks
            pass
    pixels = decode(Path(path))
    if pixels is None:
        return None
    return Static(half_blocks(pixels), classes="captcha")
