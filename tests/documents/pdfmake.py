"""Small text PDFs for the tests, written by hand: one page per list of lines, Helvetica."""

from __future__ import annotations

import zlib

from gmid.demo.pdf import assemble


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


Line = str | list[tuple[int, str]]


def content(lines: list[Line]) -> bytes:
    """A page's content stream: each line 14 points under the last; a line is a text, or its
    cells as (x, text), x in points from the left edge."""
    ops = [b"BT /F1 10 Tf"]
    y = 800
    for line in lines:
        for x, text in [(40, line)] if isinstance(line, str) else line:
            ops.append(b"1 0 0 1 %d %d Tm (%s) Tj" % (x, y, _escape(text)))
        y -= 14
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(pages: list[bytes], *, flate: bool = False) -> bytes:
    """A PDF whose pages have the given content streams (raw, or deflated with flate)."""
    n = len(pages)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
        + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, stream in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        body = zlib.compress(stream, 9) if flate else stream
        extra = b" /Filter /FlateDecode" if flate else b""
        objects.append(b"<< /Length %d%s >>\nstream\n" % (len(body), extra) + body + b"\nendstream")
    return assemble(objects)


def text_pdf(*pages: list[Line]) -> bytes:
    return make_pdf([content(lines) for lines in pages])
