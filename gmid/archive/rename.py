"""Renaming a filed document once its better-known fields give it another name, crash-safe.

The steps, each durable before the next: the rename is written down in the index (`renames`);
the file gets its new name as a hard link (never replacing a file), the folder fsynced; the
row names the new path (with the new fields); the old name is removed, its folder fsynced; the
note is deleted. A crash anywhere leaves the note, and recover() finishes or undoes the rename
from what it finds: never a file under a name the index does not know, never one lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from gmid import failpoints
from gmid.archive import reads
from gmid.archive.fs import fsync_dir
from gmid.archive.naming import fit
from gmid.archive.rows import IndexedDocument

if TYPE_CHECKING:
    from gmid.archive.archive import Archive

logger = logging.getLogger("gmid.archive.archive")

MAX_TRIES = 1000


def _split(path: str) -> tuple[list[str], str]:
    *folders, name = path.split("/")
    return folders, name


def _free_name(archive: Archive, parts: list[str], ext: str, dir_fd: int, own: str) -> str | None:
    """The first name of parts' collision chain that no file and no row has; None if it is
    the document's own path already."""
    folders, name = parts[:-1], parts[-1]
    stem = name[: -len(ext)] if ext and name.endswith(ext) else name
    suffix = ext if ext and name.endswith(ext) else ""
    for n in range(1, MAX_TRIES):
        candidate = name if n == 1 else fit(stem, suffix, f" ({n})")
        relative = "/".join([*folders, candidate])
        if relative == own:
            return None
        if archive.index.by_path(relative) is not None:
            continue
        try:
            os.stat(candidate, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return candidate
    return None


def _link(old_fd: int, old: str, new_fd: int, new: str) -> None:
    """Give a file a second name, never replacing one (a rename where links are refused)."""
    try:
        os.link(old, new, src_dir_fd=old_fd, dst_dir_fd=new_fd, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:
        os.stat(old, dir_fd=old_fd, follow_symlinks=False)  # the old one must be there
        with contextlib.suppress(FileNotFoundError):
            os.stat(new, dir_fd=new_fd, follow_symlinks=False)
            raise FileExistsError(new) from None
        os.rename(old, new, src_dir_fd=old_fd, dst_dir_fd=new_fd)


def rename(
    archive: Archive, doc: IndexedDocument, parts: list[str], ext: str, changes: dict[str, Any]
) -> IndexedDocument:
    """Move doc (and its XML beside it) to the name parts give and store changes with it.

    Called under the archive's lock. Where the new name is the old one, only the fields change.
    """
    folders, _ = _split(doc.path)
    old_fd = archive.open_folder(folders)
    new_fd = archive.open_folder(parts[:-1])
    try:
        name = _free_name(archive, parts, ext, new_fd, doc.path)
        if name is None:
            return archive.index.update(doc.id, **changes)
        moves = [("path", doc.path, "/".join([*parts[:-1], name]))]
        if doc.xml_path:
            stem = name[: -len(ext)] if ext and name.endswith(ext) else name
            moves.append(("xml_path", doc.xml_path, "/".join([*parts[:-1], stem + ".xml"])))
        with archive.index.transaction() as db:
            for field, old, new in moves:
                db.execute(
                    "INSERT INTO renames (document_id, field, old_path, new_path) "
                    "VALUES (?, ?, ?, ?)",
                    (doc.id, field, old, new),
                )
        failpoints.hit("rename-noted")
        xml_fd = archive.open_folder(_split(doc.xml_path)[0]) if doc.xml_path else None
        try:
            for field, old, new in moves:
                _link(old_fd if field == "path" else xml_fd, _split(old)[1], new_fd, _split(new)[1])
            fsync_dir(new_fd)
            failpoints.hit("rename-linked")
            with archive.index.transaction() as db:
                updated = reads.update(db, doc.id, changes | {f: new for f, _, new in moves})
            failpoints.hit("rename-indexed")
            for field, old, _ in moves:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(_split(old)[1], dir_fd=old_fd if field == "path" else xml_fd)
            fsync_dir(old_fd)
            if xml_fd is not None:
                fsync_dir(xml_fd)
        finally:
            if xml_fd is not None:
                os.close(xml_fd)
        with archive.index.transaction() as db:
            db.execute("DELETE FROM renames WHERE document_id = ?", (doc.id,))
        logger.info("renamed %s to %s, as its document says", doc.path, updated.path)
        return updated
    finally:
        os.close(old_fd)
        os.close(new_fd)


def _same(a, b) -> bool:
    """Whether two names are one file (False when either is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _undo_swap(archive: Archive, doc_id: int, new: str) -> None:
    """Remove the PDF a swap linked before its row named it (its row commits with the note's
    removal, so a note left means the row still names the XML)."""
    doc = archive.index.get(doc_id)
    pdf = archive.root / new
    if doc is not None and doc.path != new and pdf.is_file() and not pdf.is_symlink():
        pdf.unlink()
        fsync_dir(pdf.parent)


def recover(archive: Archive) -> int:
    """Finish or undo the renames a crash interrupted; return how many."""
    notes = archive.index.query(
        "SELECT id, document_id, field, old_path, new_path FROM renames ORDER BY id"
    )
    for note_id, doc_id, field, old, new in notes:
        if field == "swap":  # a PDF taking an XML's place (merging.pdf_for_xml)
            _undo_swap(archive, doc_id, new)
            with archive.index.transaction() as db:
                db.execute("DELETE FROM renames WHERE id = ?", (note_id,))
            continue
        rows = archive.index.query(f"SELECT {field} FROM documents WHERE id = ?", (doc_id,))
        current = rows[0][0] if rows else None
        if not old:  # an XML being kept beside (merging.keep_beside)
            if current != new and (archive.root / new).exists():
                archive.index.update(doc_id, **{field: new})
            with archive.index.transaction() as db:
                db.execute("DELETE FROM renames WHERE id = ?", (note_id,))
            continue
        old_file, new_file = archive.root / old, archive.root / new
        if current == old and new_file.exists() and not old_file.exists():
            archive.index.update(doc_id, **{field: new})  # moved by a rename(): keep it there
        elif current == old and new_file.exists() and _same(old_file, new_file):
            new_file.unlink()  # linked, the row not changed yet: undone
            fsync_dir(new_file.parent)
        elif current == new and old_file.exists() and _same(old_file, new_file):
            old_file.unlink()  # the row names the new name: the old one goes
            fsync_dir(old_file.parent)
        with archive.index.transaction() as db:
            db.execute("DELETE FROM renames WHERE id = ?", (note_id,))
    if notes:
        logger.info("finished %d rename(s) interrupted by a crash", len(notes))
    return len(notes)
