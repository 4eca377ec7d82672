"""What a document's bytes are (PDF, XML or an image), whatever its name or sender says.

Mail ingest, portal downloads and `gmid verify` judge a document alike, by these functions.
"""

from __future__ import annotations

import re
from typing import NamedTuple

HEAD_BYTES = 1024  # a type shows in the first bytes; sniff reads no further


class Media(NamedTuple):
    """A sniffed type as gmid files it."""

    kind: str  # pdf | xml | image: what `ingest.types` and a portal's types name
    media_type: str
    ext: str  # the extension gmid gives the file, with its dot


MEDIA = {  # what sniff() returns -> how gmid files it
    "pdf": Media("pdf", "application/pdf", ".pdf"),
    "xml": Media("xml", "application/xml", ".xml"),
    "png": Media("image", "image/png", ".png"),
    "jpeg": Media("image", "image/jpeg", ".jpg"),
    "gif": Media("image", "image/gif", ".gif"),
    "tiff": Media("image", "image/tiff", ".tif"),
    "webp": Media("image", "image/webp", ".webp"),
}
_XML_ROOT = re.compile(rb"<(?!html|svg|!doctype)[a-z_]")  # on lower-cased bytes


def sniff(data: bytes) -> str | None:
    """The type the bytes themselves show: a key of MEDIA, or None."""
    head = data[:HEAD_BYTES]
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        head = head.decode("utf-16", "replace").encode("utf-8", "replace")
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(b"<?xml"):
        return "xml"
    return "xml" if _XML_ROOT.match(head) else None


def kind_of(sniffed: str | None) -> str | None:
    """The kind (pdf, xml, image) of what sniff() returned, or None."""
    return MEDIA[sniffed].kind if sniffed else None
