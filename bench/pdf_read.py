"""Reading one PDF: gmid's read_pdf against bare pypdf text extraction of the same file.

For every PDF of tests/documents/labelled and tests/documents/corpus/FX (or the folders given):

- ours: read_pdf(data): pypdf's layout text within gmid's bounds, then the six fields;
- bare: PdfReader(data) and extract_text() of every page (pypdf's default, plain mode);
- bare layout: the same with extraction_mode="layout", what read_pdf reads (for reference).

Figures are the median over --rounds of each file, in ms, and ours / bare; the last line is the
median of the per-file ratios (target: at most 1.3), then the same against the layout text
alone, which shows what the fields add to the extraction.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import timed

from gmid.documents.pdftext import read_pdf

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = [
    ROOT / "tests" / "documents" / "labelled",
    ROOT / "tests" / "documents" / "corpus" / "FX",
]


def bare(data: bytes, mode: str = "plain") -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text(extraction_mode=mode) for page in reader.pages)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=Path, default=FOLDERS)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    files = [p for folder in args.folders for p in sorted(folder.glob("*.pdf"))]
    print(f"{'file':<44} {'KB':>5} {'ours':>8} {'bare':>8} {'layout':>8} {'ratio':>6}  (ms)")
    ratios, layout_ratios, ours_all, bare_all = [], [], [], []
    for path in files:
        data = path.read_bytes()
        # Interleaved per file, so a slow moment of the machine hits both sides alike.
        ours = timed(lambda d=data: read_pdf(d), args.rounds)
        plain = timed(lambda d=data: bare(d), args.rounds)
        layout = timed(lambda d=data: bare(d, "layout"), args.rounds)
        ratios.append(ours / plain)
        layout_ratios.append(ours / layout)
        ours_all.append(ours)
        bare_all.append(plain)
        print(
            f"{path.name[:44]:<44} {len(data) / 1024:>5.0f} {ours * 1e3:>8.1f} "
            f"{plain * 1e3:>8.1f} {layout * 1e3:>8.1f} {ours / plain:>6.2f}"
        )
    print()
    print(
        f"{'median of ' + str(len(files)) + ' files':<44} {'':>5} "
        f"{statistics.median(ours_all) * 1e3:>8.1f} {statistics.median(bare_all) * 1e3:>8.1f} "
        f"{'':>8} {statistics.median(ratios):>6.2f}"
    )
    print(
        f"ours / bare pypdf layout text (the same extraction), median of the files: "
        f"{statistics.median(layout_ratios):.2f}"
    )


if __name__ == "__main__":
    main()
