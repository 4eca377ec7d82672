"""The `gmid try-extract FILE` command: what gmid reads in a document, and why.

For a PDF: each field read from its text (with --ocr, a scan's text by OCR), the evidence (the
label and the line), an excerpt of the text around each hit, and the problems; if the PDF
carries an e-invoice, the XML's fields beside the text's. For an e-invoice XML: its fields.
With --company, that company's `extract:` rules from the config are applied first, and the
config's `ocr:`, as the daemon would.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gmid.cli.common import command, config_path, options
from gmid.errors import GmidError, did_you_mean

FIELDS = ("date", "number", "gross_total", "currency", "seller_vat_id", "iban", "seller_name")
XML_FIELDS = {
    "date": "issue_date",
    "number": "number",
    "gross_total": "gross_total",
    "currency": "currency",
    "seller_vat_id": "seller_vat_id",
    "iban": "iban",
    "seller_name": "seller_name",
}
EXCERPT_WIDTH = 100


def _settings(args: argparse.Namespace) -> tuple[tuple, object]:
    """The company's extract: rules (with --company) and the OCR options (with --ocr, or when
    the config turns OCR on, as the daemon would read)."""
    from gmid.documents.ocr import OcrOptions

    ocr = OcrOptions() if args.ocr else None
    if not args.company:
        return (), ocr
    from gmid.config.load import load_config

    config = load_config(config_path(args))
    ocr = config.ocr or ocr
    for company in config.companies:
        if company.name.casefold() == args.company.casefold():
            return company.extract, ocr
    names = [c.name for c in config.companies]
    raise GmidError(f"no company {args.company!r} in the config{did_you_mean(args.company, names)}")


def _squeeze(line: str) -> str:
    """A layout line made readable: long runs of blanks shortened, cut to the width."""
    line = re.sub(r" {4,}", "   ", line.rstrip())
    return line if len(line) <= EXCERPT_WIDTH else line[: EXCERPT_WIDTH - 1] + "…"


def excerpt(lines: list[str], at: int, around: int = 1) -> list[str]:
    """The lines around line index `at`, numbered, the hit marked with >."""
    out = []
    for i in range(max(0, at - around), min(len(lines), at + around + 1)):
        mark = ">" if i == at else " "
        out.append(f"  {mark} {i + 1:>4} | {_squeeze(lines[i])}")
    return out


def _show(value: object) -> str:
    return "-" if value is None else str(value)


def report(name: str, data: bytes, rules: tuple, ocr=None) -> list[str]:
    """What try-extract prints for one document."""
    from gmid.documents import read_einvoice
    from gmid.documents.pdftext import hits_of, read_pdf

    is_pdf = b"%PDF-" in data[:1024]
    inv = read_einvoice(data, name)
    out = [f"{name}: {'PDF' if is_pdf else 'not a PDF'}, {len(data):,} bytes"]
    if not is_pdf:
        if inv is None:
            return [*out, "neither a PDF nor an e-invoice XML: nothing to read"]
        out.append(f"an e-invoice XML ({inv.syntax}); its fields are exact:")
        out += [f"  {f:<14} {_show(getattr(inv, x))}" for f, x in XML_FIELDS.items()]
        return out + [f"  problem: {p}" for p in inv.problems]
    reading = read_pdf(data, rules, ocr=ocr)
    if inv is not None:
        out.append(
            f"carries an e-invoice ({inv.source}, {inv.syntax}): the XML's fields are exact and "
            "win over the text's; both are shown"
        )
    out.append(
        f"text: {len(reading.text):,} characters"
        + (f", {len(rules)} company rule{'s' if len(rules) > 1 else ''}" if rules else "")
    )
    out.append("")
    texts = [_show(getattr(reading, f)) for f in FIELDS]
    xmls = [_show(getattr(inv, XML_FIELDS[f])).replace("\n", " ") for f in FIELDS] if inv else []
    w = min(40, max(len(v) for v in ["from the text", "from the XML", *texts, *xmls]) + 1)
    head = f"{'field':<14} {'from the text':<{w}}"
    out.append(head + (f" {'from the XML':<{w}}" if inv is not None else "") + " why")
    for n, field in enumerate(FIELDS):
        row = f"{field:<14} {texts[n]:<{w}}" + (f" {xmls[n]:<{w}}" if xmls else "")
        out.append(f"{row} {reading.why.get(field, '')}".rstrip())
    lines = reading.text.splitlines()
    hits = hits_of(reading.text, rules, []) if reading.text.strip() else {}
    shown = [(field, hit) for field, hit in hits.items() if 0 <= hit.line < len(lines)]
    if shown:
        out += ["", "where in the text:"]
    for field, hit in shown:
        out.append(f"  {field}:")
        out += excerpt(lines, hit.line)
    problems = list(reading.problems) + [f"e-invoice: {p}" for p in (inv.problems if inv else ())]
    out += ["", "problems:" if problems else "problems: none"]
    out += [f"  - {p}" for p in problems]
    return out


def cmd_try_extract(args: argparse.Namespace) -> int:
    from gmid.documents.pdftext import MAX_PDF_BYTES

    path = Path(args.file).expanduser()
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PDF_BYTES + 1)
    except OSError as e:
        raise GmidError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > MAX_PDF_BYTES:
        raise GmidError(f"{path}: larger than {MAX_PDF_BYTES // (1024 * 1024)} MB, not read")
    rules, ocr = _settings(args)
    for line in report(path.name, data, rules, ocr):
        print(line)
    if args.text:
        from gmid.documents.pdftext import read_pdf

        print("\ntext:")
        print(read_pdf(data, rules, ocr=ocr).text)
    return 0


def add_extract_command(sub, common: argparse.ArgumentParser) -> None:
    """Register try-extract on the `gmid` parser."""
    p = command(
        sub,
        "try-extract",
        "show what gmid reads in a PDF invoice (or e-invoice) and why",
        "gmid try-extract invoice.pdf --company Stadtwerke",
        parents=[options(socket=False)],
    )
    p.add_argument("file", metavar="FILE", help="a PDF or e-invoice XML")
    p.add_argument("--company", metavar="NAME", help="apply this company's extract: rules")
    p.add_argument("--text", action="store_true", help="also print the whole text read")
    p.add_argument(
        "--ocr", action="store_true", help="read a scanned PDF by OCR (Ghostscript, Tesseract)"
    )
    p.set_defaults(func=cmd_try_extract)
