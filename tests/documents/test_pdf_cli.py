"""`gmid try-extract FILE`: what is read, why, where in the text, and the problems."""

from __future__ import annotations

from pathlib import Path

from gmid.cli.main import main
from tests.documents.pdfmake import make_pdf

HERE = Path(__file__).parent


def squeezed(out: str) -> str:
    """The output with each run of blanks made one (column widths vary with the values)."""
    return "\n".join(" ".join(line.split()) for line in out.splitlines())


def test_a_pdf_shows_each_field_its_evidence_and_the_text_around(capsys):
    assert main(["try-extract", str(HERE / "labelled" / "QualityHosting.pdf")]) == 0
    out = capsys.readouterr().out
    assert 'number 30064443 after "Rechnungsnr." on line 16' in squeezed(out)
    assert "gross_total 34.73 after" in squeezed(out)
    assert "seller_name QualityHosting AG company name on line 1, named 5 times" in squeezed(out)
    assert ">   89 |    Total EUR   34,73" in out
    assert "problems: none" in out


def test_a_facturx_pdf_shows_the_xml_beside_the_text(capsys):
    assert main(["try-extract", str(HERE / "corpus" / "FX" / "EN16931_Einfach.pdf")]) == 0
    out = capsys.readouterr().out
    assert "carries an e-invoice (factur-x.xml, CII)" in out
    assert "from the XML" in out
    assert "gross_total 529.87 529.87" in squeezed(out)


def test_an_xml_shows_its_fields(capsys):
    xml = HERE / "corpus" / "UBL" / "EN16931_Einfach.ubl.xml"
    assert main(["try-extract", str(xml)]) == 0
    out = capsys.readouterr().out
    assert "an e-invoice XML (UBL)" in out
    assert "number 471102" in squeezed(out)


def test_a_scan_says_it_has_no_text(tmp_path, capsys):
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(make_pdf([b"q Q"]))
    assert main(["try-extract", str(scan)]) == 0
    out = capsys.readouterr().out
    assert "  - no text: a scanned PDF (OCR is off" in out


def test_a_company_rule_is_applied_and_an_unknown_company_named(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(
        f"archive:\n  dir: {tmp_path / 'a'}\ncompanies:\n  - name: QualityHosting\n"
        '    senders: ["@qualityhosting.de"]\n'
        '    extract:\n      number: {label: "Kundennr."}\n',
        encoding="utf-8",
    )
    pdf = str(HERE / "labelled" / "QualityHosting.pdf")
    assert main(["try-extract", pdf, "-c", str(config), "--company", "qualityhosting"]) == 0
    out = capsys.readouterr().out
    assert 'number 47774 company rule: label "Kundennr."' in squeezed(out)
    assert main(["try-extract", pdf, "-c", str(config), "--company", "QualityHostin"]) == 1
    err = capsys.readouterr().err
    assert "no company 'QualityHostin' in the config; did you mean 'QualityHosting'?" in err


def test_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["try-extract", str(tmp_path / "nope.pdf")]) == 1
    assert "nope.pdf: cannot read: No such file or directory" in capsys.readouterr().err
