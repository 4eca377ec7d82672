"""The control method `documents.render`: a document's e-invoice as HTML or text.

The e-invoice is read from the XML kept beside the document, else from the document itself (an
XML file, or a Factur-X / ZUGFeRD PDF). The daemon reads it, not the client: the archive may be
the daemon's user's alone, and the TUI renders nothing itself.

Reading stays inside the archive: the path must be a plain relative one whose real path lies in
the archive, the file is opened without following a symlink, must be a regular file, and is
read only up to the e-invoice reader's own limit.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from gmid.archive.fs import clean_relative, inside
from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services
from gmid.documents import einvoice, render
from gmid.errors import NotFound

FORMATS = ("html", "text")


async def documents_render(s: Services, params: Params, conn: Connection) -> p.Rendering:
    """The e-invoice of document `id` rendered as `format` ("html" or "text", lines of at most
    `width` characters); NotFound when the document has none."""
    check.only(params, ("id", "format", "width"))
    doc_id = check.whole_number(params, "id", 0, 1)
    fmt = check.string(params, "format") or "text"
    if fmt not in FORMATS:
        raise InvalidParams(f"format must be one of {', '.join(FORMATS)}")
    width = check.whole_number(params, "width", 80, 40, 1000)
    assert s.daemon.archive is not None
    root = s.daemon.archive.root
    index = s.index

    def work() -> str:
        doc = index.get(doc_id)
        if doc is None:
            raise NotFound(f"no document {doc_id}")
        invoice = None
        for relative, hint in ((doc.xml_path, "xml"), (doc.path, doc.media_type)):
            if relative:
                data = read_in_archive(root, relative, einvoice.MAX_PDF_BYTES)
                invoice = einvoice.read_einvoice(data, hint) if data is not None else None
            if invoice is not None:
                break
        if invoice is None:
            raise NotFound(f"document {doc_id} has no e-invoice XML")
        return render.to_html(invoice) if fmt == "html" else render.to_text(invoice, width)

    loop = asyncio.get_running_loop()
    content = await loop.run_in_executor(s.daemon.executor, work)
    return p.Rendering(id=doc_id, format=fmt, content=content)


def read_in_archive(root: Path, relative: str, limit: int) -> bytes | None:
    """The bytes of an archived file, or None when it is gone, not a plain file inside the
    archive, or over `limit` bytes."""
    if not clean_relative(relative):
        return None
    real_root = os.path.realpath(root)
    path = Path(real_root, relative)
    if not inside(os.path.realpath(path), real_root):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return file.read(limit + 1)[:limit]
