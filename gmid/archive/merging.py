"""Filing what documents say: their read fields on the row, the same invoice kept once, and
the e-invoice XML that came with a PDF kept beside it. Used by Archive.store_many under its
lock where noted (see archive.py); reading itself is in filing.py and understand.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gmid import failpoints
from gmid.archive import reads, rename
from gmid.archive.filing import READ_TIMEOUT, UNKNOWN_COMPANY, better, company_for, known_fields
from gmid.archive.fs import fsync_dir, place, unlink_quietly, write_temp
from gmid.archive.naming import fit
from gmid.archive.rows import IndexedDocument

if TYPE_CHECKING:
    from gmid.archive.archive import Archive, Incoming, Stored

logger = logging.getLogger("gmid.archive.archive")

Prepared = list[tuple["Incoming", str, datetime]]


def read_fields(reading: Any) -> dict[str, Any]:
    """The row's fields from a document's reading (gmid/documents/understand.py), if read."""
    if reading is None:
        return {}
    from gmid.documents.fields import READER_VERSION
    from gmid.documents.understand import stored_value

    fields = {k: stored_value(v) for k, v in reading.fields.items()}
    return fields | {
        "fields_from": dict(reading.origins),
        "problems": reading.problems,
        "text": reading.text,
        "read_version": READER_VERSION,
    }


def ext_of(path: str) -> str:
    """A file name's extension, with its dot ("" without one)."""
    name = path.rsplit("/", 1)[-1]
    return name[name.rfind(".") :] if "." in name.lstrip(".") else ""


def origin(doc: Incoming) -> str:
    """Where what a document's source said came from: a portal's list, else its mail."""
    return "portal" if doc.source == "portal" else "mail"


def read_timeout(archive: Archive) -> float:
    """How long a batch waits for its documents: longer where scanned PDFs are read by OCR."""
    ocr = archive.ocr
    return READ_TIMEOUT if ocr is None else max(READ_TIMEOUT, ocr.timeout + 10)


def rules_of(archive: Archive, company: str) -> tuple:
    """The `extract:` rules of a company of the config, for its PDFs' text."""
    for known in archive.companies:
        if known.name == company:
            return tuple(getattr(known, "extract", ()))
    return ()


def understand_batch(
    archive: Archive, prepared: Prepared, todo: list[int], meanwhile: Callable[[], None]
) -> tuple[dict[int, Any], dict[int, int]]:
    """Read the documents to be written; give each its own date, number, amount and (when
    its source named none) company. Return the readings by position, and the e-invoice XMLs
    that came with a PDF of the same mail: {XML position: PDF position}. meanwhile (the temp
    files' writes and fsyncs) runs in this thread while the documents are read."""
    if not archive.read_documents or not todo:
        meanwhile()
        return {}, {}
    from gmid.documents.understand import stored_value

    items = []
    for i in todo:
        doc = prepared[i][0]
        known = known_fields(doc.date, doc.number, doc.amount)
        rules = rules_of(archive, doc.company)
        items.append((doc.data, doc.media_type, known, origin(doc), rules, archive.ocr))
    read = archive.reader.read_all(items, read_timeout(archive), meanwhile)
    readings = {i: r for i, r in zip(todo, read, strict=True) if r is not None}
    pairs = pair_xml(prepared, readings)
    for i, reading in readings.items():
        doc, sha, received_at = prepared[i]
        company = doc.company
        if company in ("", UNKNOWN_COMPANY):
            found = company_for(reading, archive.companies)
            if found:
                company, reading.origins["company"] = found
        doc = replace(
            doc,
            company=company,
            date=reading.get("date"),
            number=reading.get("number"),
            amount=stored_value(reading.get("amount")),
        )
        prepared[i] = (doc, sha, received_at)
    return readings, pairs


def pair_xml(prepared: Prepared, readings: dict[int, Any]) -> dict[int, int]:
    """The e-invoice XMLs that came with a PDF in the same mail: {XML position: PDF position}.

    A mail with one PDF that is no e-invoice itself and one e-invoice XML whose number is the
    PDF's (or the PDF's number is unknown): the XML's fields become the PDF's, best known.
    """
    from gmid.documents.understand import merge

    pairs = {}
    mails: dict[tuple, list[int]] = {}
    for i in readings:
        doc = prepared[i][0]
        if doc.message_id:
            mails.setdefault((doc.source_name, doc.message_id), []).append(i)
    for positions in mails.values():
        pdfs = [
            i
            for i in positions
            if prepared[i][0].media_type == "application/pdf"
            and "einvoice" not in readings[i].origins.values()
        ]
        xmls = [i for i in positions if readings[i].xml and readings[i].get("number")]
        if len(pdfs) != 1 or len(xmls) != 1:
            continue
        pdf, xml = pdfs[0], xmls[0]
        if readings[pdf].get("number") in (None, readings[xml].get("number")):
            readings[pdf] = merge(readings[pdf], readings[xml])
            pairs[xml] = pdf
    return pairs


def merge_into(
    archive: Archive,
    same: IndexedDocument,
    doc: Incoming,
    sha: str,
    received_at: datetime,
    reading: Any,
) -> Stored:
    """Record doc as another way the filed invoice `same` came; take what it knows better
    (renaming the file once if its name changes); keep its e-invoice XML beside it when the
    filed one has none. Called under the archive's lock."""
    from gmid.archive.archive import Stored
    from gmid.documents.understand import einvoice_xml

    archive.add_source(same, doc, sha, received_at)
    fields_from = archive.index.fields_from(same.id)
    changes = better(reading, same, fields_from)
    einvoice = "einvoice" in reading.origins.values()
    if changes:
        changes["fields_from"] = fields_from | {k: reading.origins[k] for k in changes}
        if einvoice:
            changes["problems"] = reading.problems
        if reading.text:
            old = archive.index.text(same.id) or ""
            changes["text"] = f"{old}\n{reading.text}" if old else reading.text
        same = rename_for(archive, same, changes)
    if einvoice and not same.xml_path and not same.media_type.endswith("xml"):
        xml = einvoice_xml(doc.data, doc.media_type)
        if xml is not None:
            same = keep_beside(archive, same, xml)
    return Stored(same, False, archive.root / same.path)


def rename_for(archive: Archive, doc: IndexedDocument, changes: dict[str, Any]):
    """Store changes of a filed document; where its company, date or number changed, under
    the name the template now gives it (moved once: rename.py). Called under the lock."""
    if not {"company", "date", "number"} & set(changes):
        return archive.index.update(doc.id, **changes)
    from gmid.archive.archive import Incoming

    named = Incoming(
        data=b"",
        media_type=doc.media_type,
        ext=ext_of(doc.path),
        source=doc.source,
        source_name=doc.source_name,
        company=changes.get("company", doc.company),
        date=changes.get("date", doc.date),
        number=changes.get("number", doc.number),
    )
    parts = archive.path_for(named, doc.sha256, doc.received_at)
    return rename.rename(archive, doc, parts, named.ext, changes)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def keep_beside(archive: Archive, pdf: IndexedDocument, xml: bytes) -> IndexedDocument:
    """Keep an e-invoice XML beside the PDF it belongs to, as "<the PDF's name>.xml".

    Called under the archive's lock. The name is noted in the index first (rename.py's
    `renames`), so that a crash between the link and the row leaves no file the index does
    not know: recover() adopts it.
    """
    folders, _, name = pdf.path.rpartition("/")
    ext = ext_of(name)
    stem = name[: -len(ext)] if ext else name
    tmp = write_temp(archive.tmp_dir, xml, 0o640)
    dir_fd = archive.open_folder(folders.split("/") if folders else [])
    try:
        for n in range(1, 100):
            candidate = fit(stem, ".xml", "" if n == 1 else f" ({n})")
            relative = f"{folders}/{candidate}" if folders else candidate
            if archive.index.by_path(relative) is None and not _exists(dir_fd, candidate):
                break
        else:
            return pdf
        with archive.index.transaction() as db:
            db.execute(
                "INSERT INTO renames (document_id, field, old_path, new_path) "
                "VALUES (?, 'xml_path', '', ?)",
                (pdf.id, relative),
            )
        if place(tmp, dir_fd, candidate):
            fsync_dir(dir_fd)
            failpoints.hit("beside-placed")
            pdf = archive.index.update(pdf.id, xml_path=relative)
            logger.info("kept the e-invoice XML %s beside %s", relative, pdf.path)
        with archive.index.transaction() as db:
            db.execute("DELETE FROM renames WHERE document_id = ?", (pdf.id,))
    finally:
        os.close(dir_fd)
        unlink_quietly(tmp)
    return pdf


def beside_pdf(archive: Archive, pdf: IndexedDocument, xml: Incoming, received: datetime):
    """The XML that came as an attachment beside pdf: kept beside it, recorded as a source."""
    pdf = keep_beside(archive, pdf, xml.data)
    archive.add_source(pdf, xml, hashlib.sha256(xml.data).hexdigest(), received)
    from gmid.archive.archive import Stored

    return Stored(pdf, False, archive.root / pdf.path)


def pdf_for_xml(
    archive: Archive,
    xml: IndexedDocument,
    tmp: Path,
    doc: Incoming,
    sha: str,
    received_at: datetime,
    reading: Any,
) -> Stored | None:
    """File the PDF of an invoice filed before as XML only: the PDF becomes the document's
    file (named as the XML, with its own extension), the XML stays where it is, beside it
    (`xml_path`); the fields stay the XML's, the PDF is recorded as one more source. None
    (the PDF is filed as a document of its own) where no name is free or taken meanwhile.

    Called under the archive's lock, with tmp written and fsynced. The swap is noted in the
    index first (`renames`, field "swap"), the PDF linked and its folder fsynced, then the
    row, the source and the note's removal are one transaction: recover() removes a PDF
    linked by a swap that never reached its row (its sender gets no answer and sends again).
    """
    from gmid.archive.archive import Stored

    folders, _, name = xml.path.rpartition("/")
    ext = ext_of(name)
    stem = name[: -len(ext)] if ext else name
    dir_fd = archive.open_folder(folders.split("/") if folders else [])
    try:
        for n in range(1, 100):
            candidate = fit(stem, doc.ext or ".pdf", "" if n == 1 else f" ({n})")
            relative = f"{folders}/{candidate}" if folders else candidate
            if archive.index.by_path(relative) is None and not _exists(dir_fd, candidate):
                break
        else:
            return None
        with archive.index.transaction() as db:
            db.execute(
                "INSERT INTO renames (document_id, field, old_path, new_path) "
                "VALUES (?, 'swap', ?, ?)",
                (xml.id, xml.path, relative),
            )
        failpoints.hit("swap-noted")
        if not place(tmp, dir_fd, candidate):  # taken since, not by gmid: left as it is
            with archive.index.transaction() as db:
                db.execute("DELETE FROM renames WHERE document_id = ?", (xml.id,))
            return None
        fsync_dir(dir_fd)
        failpoints.hit("swap-linked")
        changes = _swap_changes(archive, xml, doc, sha, reading) | {"path": relative}
        with archive.index.transaction() as db:
            updated = reads.update(db, xml.id, changes)
            reads.add_source(db, xml.id, **source_of(doc, sha, received_at))
            db.execute("DELETE FROM renames WHERE document_id = ?", (xml.id,))
        failpoints.hit("swap-indexed")
    finally:
        os.close(dir_fd)
    logger.info("filed %s as the PDF of %s, kept beside it", relative, xml.path)
    return Stored(updated, False, archive.root / relative)


def _swap_changes(
    archive: Archive, xml: IndexedDocument, doc: Incoming, sha: str, reading: Any
) -> dict[str, Any]:
    """The row of an XML-only document once its PDF is its file: what the PDF knows better
    (not its name's fields: the file is named as the XML), its text added to the XML's."""
    fields_from = archive.index.fields_from(xml.id)
    changes = {
        k: v
        for k, v in better(reading, xml, fields_from).items()
        if k not in ("company", "date", "number")
    }
    if changes:
        changes["fields_from"] = fields_from | {k: reading.origins[k] for k in changes}
    if reading.text:
        old = archive.index.text(xml.id) or ""
        changes["text"] = f"{old}\n{reading.text}" if old else reading.text
    return changes | {
        "xml_path": xml.path,
        "sha256": sha,
        "size": len(doc.data),
        "media_type": doc.media_type,
        "original_name": doc.original_name,
    }


def source_of(doc: Incoming, sha: str, received: datetime) -> dict[str, Any]:
    """A document's way of coming, as the index records it (reads.add_source)."""
    return {
        "source": doc.source,
        "source_name": doc.source_name,
        "ref": doc.source_ref,
        "message_id": doc.message_id,
        "sha256": sha,
        "original_name": doc.original_name,
        "received_at": received,
    }
