"""Accuracy of reading invoices from PDF text alone, field by field, per labelled corpus.

Corpora (each PDF with its truth):
- factur-x: the Factur-X / ZUGFeRD PDFs of tests/documents/corpus/FX (or --einvoices DIR),
  all drawn by the same visualisation, and of tests/documents/facturx-more (or --more DIR),
  from other programs: their text is read as if there were no XML, and compared with what the
  XML says (gmid.documents.read_einvoice);
- invoice2data: tests/documents/labelled, sample invoices with expected values published by
  invoice2data (MIT; see its README), a JSON file beside each PDF.

A field is right when it equals the truth (numbers compared without spaces and a leading "#",
case-insensitively; the seller's name when one contains the other, punctuation and case
aside), wrong when another value was read, missing when none was; a document
whose truth lacks the field does not count for it, nor one whose true IBAN fails its checksum
(the samples' made-up accounts: a reader that checks IBANs rightly skips them).
Exit status 1 if date, number or gross total is right for less than --floor of all documents.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gmid.documents import read_einvoice
from gmid.documents.pdftext import PdfReading, read_pdf
from gmid.documents.textvalues import iban_valid

ROOT = Path(__file__).resolve().parent.parent
EINVOICES = ROOT / "tests" / "documents" / "corpus" / "FX"
MORE = ROOT / "tests" / "documents" / "facturx-more"
LABELLED = ROOT / "tests" / "documents" / "labelled"
FIELDS = ("date", "number", "gross_total", "currency", "seller_vat_id", "iban", "seller_name")
HEADLINE = ("date", "number", "gross_total")

Truth = dict[str, object]


def einvoice_truths(folder: Path) -> Iterator[tuple[str, bytes, Truth]]:
    for path in sorted(folder.glob("*.pdf")):
        data = path.read_bytes()
        inv = read_einvoice(data, path.name, check_schema=False)
        if inv is None:
            continue
        yield (
            path.name,
            data,
            {
                "date": inv.issue_date,
                "number": inv.number,
                "gross_total": inv.gross_total,
                "currency": inv.currency,
                "seller_vat_id": inv.seller_vat_id,
                "iban": inv.iban,
                "seller_name": inv.seller_name,
            },
        )


def labelled_truths(folder: Path) -> Iterator[tuple[str, bytes, Truth]]:
    """invoice2data's expected values: issuer, amount, date, invoice_number, currency, vat..."""
    for path in sorted(folder.glob("*.pdf")):
        expected = json.loads(path.with_suffix(".json").read_text())
        expected = expected[0] if isinstance(expected, list) else expected
        vat = expected.get("vat") or expected.get("static_vat")
        yield (
            path.name,
            path.read_bytes(),
            {
                "date": date.fromisoformat(expected["date"]) if "date" in expected else None,
                "number": expected.get("invoice_number"),
                "gross_total": Decimal(str(expected["amount"])) if "amount" in expected else None,
                "currency": expected.get("currency"),
                "seller_vat_id": str(vat) if isinstance(vat, str) else None,
                "iban": expected.get("iban"),
                "seller_name": expected.get("issuer"),
            },
        )


def same(field: str, read: object, truth: object) -> bool:
    if field == "number":
        norm = lambda v: str(v).replace(" ", "").lstrip("#").casefold()  # noqa: E731
        return norm(read) == norm(truth)
    if field in ("seller_vat_id", "iban"):
        return str(read).replace(" ", "").upper() == str(truth).replace(" ", "").upper()
    if field == "seller_name":  # "Grundbesitz GmbH & Co." is "Grundbesitz GmbH & Co. KG"
        a, b = (re.sub(r"[\W_]+", "", str(v)).casefold() for v in (read, truth))
        return bool(a and b) and (a in b or b in a)
    if field == "gross_total":
        return Decimal(str(read)) == Decimal(str(truth))
    return read == truth


def grade(reading: PdfReading, truth: Truth) -> dict[str, str]:
    """Per field: right, wrong, missing, or "" when the truth has no value."""
    marks = {}
    for field in FIELDS:
        want, got = truth.get(field), getattr(reading, field)
        if want is None or (field == "iban" and not iban_valid(str(want).replace(" ", ""))):
            marks[field] = ""  # no truth, or a sample's made-up IBAN (its checksum is wrong)
        elif got is None:
            marks[field] = "missing"
        else:
            marks[field] = "right" if same(field, got, want) else "wrong"
    return marks


def score(corpus: str, docs, verbose: bool) -> tuple[dict[str, float], dict[str, int]]:
    """Print a corpus's table; return the share right per field and how many counted."""
    rows = []
    for name, data, truth in docs:
        reading = read_pdf(data)
        marks = grade(reading, truth)
        rows.append(marks)
        if verbose:
            for field in FIELDS:
                if marks[field] in ("wrong", "missing"):
                    got = getattr(reading, field)
                    why = reading.why.get(field, "")
                    print(f"  {name}: {field} {marks[field]}: read {got!r} ({why}), "
                          f"truth {truth[field]!r}")  # fmt: skip
    print(f"\n{corpus}: {len(rows)} documents")
    print(f"{'field':<15} {'right':>6} {'wrong':>6} {'missing':>8} {'n':>4} {'right %':>8}")
    shares, counts = {}, {}
    for field in FIELDS:
        marks = [r[field] for r in rows if r[field]]
        n = counts[field] = len(marks)
        right = marks.count("right")
        shares[field] = right / n if n else 1.0
        print(
            f"{field:<15} {right:>6} {marks.count('wrong'):>6} {marks.count('missing'):>8}"
            f" {n:>4} {100 * shares[field]:>7.0f}%"
        )
    return shares, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--einvoices", type=Path, default=EINVOICES, help="folder of Factur-X PDFs")
    ap.add_argument("--more", type=Path, default=MORE, help="folder of other Factur-X PDFs")
    ap.add_argument("--labelled", type=Path, default=LABELLED, help="folder of PDF + JSON")
    ap.add_argument("--floor", type=float, default=0.9)
    ap.add_argument("-v", "--verbose", action="store_true", help="list what was read wrong")
    args = ap.parse_args()
    totals: dict[str, list[tuple[float, int]]] = {f: [] for f in HEADLINE}
    for corpus, docs in (
        ("factur-x, one visualisation (text vs. its XML)", einvoice_truths(args.einvoices)),
        ("factur-x, other programs (text vs. its XML)", einvoice_truths(args.more)),
        ("invoice2data samples", labelled_truths(args.labelled)),
    ):
        shares, counts = score(corpus, docs, args.verbose)
        for f in HEADLINE:
            totals[f].append((shares[f] * counts[f], counts[f]))
    print("\nall corpora together:")
    failed = False
    for f in HEADLINE:
        right, n = (sum(col) for col in zip(*totals[f], strict=True))
        print(f"{f:<15} {right:>6.0f} of {n:<4.0f} {100 * right / n:>7.0f}%")
        failed |= right / n < args.floor
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
