"""Text for a scanned PDF, by OCR: Ghostscript draws its pages, Tesseract reads them.

Off unless the config's `ocr:` turns it on (OcrOptions). Both are programs of the system, not
Python packages: `apt install ghostscript tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra`
(one tesseract-ocr-LANG per language of your invoices). Tesseract keeps the blanks between
words (preserve_interword_spaces), so a value stays to the right of its label, as in a PDF's
layout text.

Bounded: at most OcrOptions.pages pages, drawn at OcrOptions.dpi, everything within
OcrOptions.timeout seconds (a process over its time is killed); Ghostscript runs with -dSAFER
(no file access beyond its input and output), in a temporary folder removed afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NEEDS = "apt install ghostscript tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra"


@dataclass(frozen=True)
class OcrOptions:
    """How scanned PDFs are read: Tesseract's languages, and the bounds."""

    languages: str = "deu+fra+eng"  # Tesseract's codes, joined by +
    pages: int = 5
    timeout: float = 120.0  # seconds for the whole document
    dpi: int = 300


def missing_programs() -> list[str]:
    """The programs OCR needs that are not installed."""
    return [name for name in ("gs", "tesseract") if shutil.which(name) is None]


def ocr_text(data: bytes, options: OcrOptions) -> tuple[str, list[str]]:
    """The text Tesseract reads on the PDF's first pages, and the problems met."""
    if missing := missing_programs():
        names = " and ".join(missing)
        return "", [
            f"OCR is on, but {names} {'are' if len(missing) > 1 else 'is'} missing: {NEEDS}"
        ]
    deadline = time.monotonic() + options.timeout
    with tempfile.TemporaryDirectory(prefix="gmid-ocr-") as tmp:
        folder = Path(tmp)
        (folder / "in.pdf").write_bytes(data)
        draw = [
            "gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=pnggray",
            f"-r{options.dpi}", "-dFirstPage=1", f"-dLastPage={options.pages}",
            "-o", str(folder / "page-%03d.png"), str(folder / "in.pdf"),
        ]  # fmt: skip
        if problem := _run(draw, deadline, "Ghostscript"):
            return "", [problem]
        texts = []
        for image in sorted(folder.glob("page-*.png"))[: options.pages]:
            read = [
                "tesseract", str(image), str(image.with_suffix("")), "-l", options.languages,
                "--psm", "6", "-c", "preserve_interword_spaces=1",
            ]  # fmt: skip
            if problem := _run(read, deadline, "Tesseract"):
                return "\n".join(texts), [problem]
            texts.append(image.with_suffix(".txt").read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts), []


def _run(command: list[str], deadline: float, name: str) -> str | None:
    """Run a program until the deadline; its failure in its own words, or None."""
    left = deadline - time.monotonic()
    if left <= 0:
        return f"OCR stopped: over its time ({name} not started)"
    try:
        done = subprocess.run(command, capture_output=True, timeout=left, check=False)
    except subprocess.TimeoutExpired:
        return f"OCR stopped: {name} over its time"
    except OSError as e:
        return f"OCR failed: {name} could not start ({e.strerror})"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"OCR failed: {name} exited with {done.returncode}" + (
            f": {said[-1][:200]}" if said else ""
        )
    return None
