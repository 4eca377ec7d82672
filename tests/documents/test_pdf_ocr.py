"""Scanned PDFs: detected without OCR; read by Ghostscript and Tesseract when `ocr:` is on."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gmid.cli.main import main
from gmid.config.load import load_config
from gmid.documents.ocr import OcrOptions
from gmid.documents.pdftext import NO_TEXT, read_pdf
from gmid.errors import ConfigError
from tests.documents.pdfmake import text_pdf
from tests.support.needs import unavailable

INVOICE = [
    "Muster GmbH, Hauptstr. 1, 80333 Muenchen",
    "",
    [(40, "Rechnungsnummer:"), (200, "R-2025-0042")],
    [(40, "Rechnungsdatum:"), (200, "03.04.2025")],
    "",
    [(40, "Gesamtbetrag brutto"), (300, "1.014,00 EUR")],
    "USt-IdNr. DE123456789",
]


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    """The invoice as a scan would give it: its page an image, no text in it."""
    if shutil.which("gs") is None or shutil.which("tesseract") is None:
        unavailable("OCR needs Ghostscript and Tesseract (apt install ghostscript tesseract-ocr)")
    folder = tmp_path_factory.mktemp("scan")
    (folder / "text.pdf").write_bytes(text_pdf(INVOICE))
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfimage8", "-r150",
         "-o", str(folder / "scan.pdf"), str(folder / "text.pdf")],
        check=True, timeout=60,
    )  # fmt: skip
    return folder / "scan.pdf"


def test_a_scan_is_detected_and_left_alone_when_ocr_is_off(scan):
    r = read_pdf(scan.read_bytes())
    assert r.problems == (NO_TEXT,)
    assert r.number is None


def test_a_scan_is_read_by_ocr_when_it_is_on(scan):
    r = read_pdf(scan.read_bytes(), ocr=OcrOptions(languages="deu+eng"))
    assert (r.number, r.date, r.gross_total, r.seller_vat_id) == (
        "R-2025-0042",
        date(2025, 4, 3),
        Decimal("1014.00"),
        "DE123456789",
    )
    assert r.problems == ("text read by OCR (deu+eng): check the fields",)


def test_ocr_is_bounded_in_time(scan):
    r = read_pdf(scan.read_bytes(), ocr=OcrOptions(timeout=0))
    assert r.problems[0] == "OCR stopped: over its time (Ghostscript not started)"
    assert r.number is None


def test_a_pdf_with_text_is_not_ocrd():
    r = read_pdf(text_pdf(INVOICE), ocr=OcrOptions(timeout=0))  # would fail if it ran
    assert r.number == "R-2025-0042" and r.problems == ()


def test_missing_programs_are_named_with_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither gs nor tesseract on it
    r = read_pdf(text_pdf([""]), ocr=OcrOptions())
    assert r.problems[0] == (
        "OCR is on, but gs and tesseract are missing: "
        "apt install ghostscript tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra"
    )


def test_an_unknown_language_is_tesseracts_own_error(scan):
    r = read_pdf(scan.read_bytes(), ocr=OcrOptions(languages="xyz"))
    assert r.problems[0].startswith("OCR failed: Tesseract exited with 1")


def test_try_extract_with_ocr(scan, capsys):
    assert main(["try-extract", str(scan), "--ocr"]) == 0
    out = capsys.readouterr().out
    assert "R-2025-0042" in out
    assert "  - text read by OCR (deu+fra+eng): check the fields" in out


def _config(tmp_path: Path, ocr: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"archive:\n  dir: {tmp_path / 'a'}\nocr:\n{ocr}", encoding="utf-8")
    return path


def test_ocr_is_off_unless_enabled_in_the_config(tmp_path):
    assert load_config(_config(tmp_path, "  languages: deu\n")).ocr is None
    on = load_config(_config(tmp_path, "  enabled: true\n  languages: deu\n  timeout: 30s\n"))
    assert on.ocr == OcrOptions(languages="deu", pages=5, timeout=30.0)


def test_bad_ocr_options_are_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, "  enabled: yes please\n  languages: Deutsch\n"))
    assert [(p.line, p.option) for p in err.value.problems] == [
        (4, "ocr.enabled"),
        (5, "ocr.languages"),
    ]
