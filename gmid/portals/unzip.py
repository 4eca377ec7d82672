"""A download that is a ZIP of documents: its members, each filed as a document of its own.

Some portals hand out a ZIP file where one document is expected (a receipt of grouped orders,
a month's invoices). Every member is told by its bytes, as a download is: PDFs, XML and images
are documents, anything else is left out with a note. An office document (OOXML, ODF) is a
ZIP too: it is refused as the file it is, not filed as its parts. The ZIP comes from the
portal, so it is read under limits, all checked before anything is filed: at most MAX_MEMBERS
members, each member and all of them together no larger than the run's download cap, no member
that compresses better than MAX_RATIO (a zip bomb), no encrypted member, no name that climbs
out of its folder. A ZIP inside is not opened. Member names only name documents (their ids and
original names); nothing is ever written at them.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from gmid.errors import DownloadRejected

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member's header, or the end of an empty ZIP
MAX_MEMBERS = 100
MAX_RATIO = 100  # a member's size over its compressed size, past RATIO_FLOOR
RATIO_FLOOR = 1 << 20  # smaller members are harmless whatever their ratio
MAX_DIRECTORY = 1 << 20  # bytes of the ZIP's table of contents
MAX_NAME = 255  # characters of a member's name
# A member that makes the ZIP a file of another kind (an office document, an e-book, a Java
# archive), whose parts are no documents of their own even where they are XML.
_PACKAGE_MARKS = ("[Content_Types].xml", "mimetype", "META-INF/MANIFEST.MF")
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_LOCATOR_SIZE = 20
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Member:
    """A document found in a ZIP: the member's name, its bytes and what they are."""

    name: str  # as the ZIP has it: for the document's id and original name, never a path
    data: bytes
    media_type: str
    ext: str

    @property
    def basename(self) -> str:
        return PurePosixPath(self.name.replace("\\", "/")).name or self.name


def is_zip(data: bytes) -> bool:
    """Whether the bytes are a ZIP file (its first member's header, or an empty ZIP's end)."""
    return data[:4] in ZIP_MAGIC


def documents_in(data: bytes, cap: int) -> tuple[list[Member], list[str]]:
    """The documents of a ZIP and notes on the members left out; DownloadRejected when the
    ZIP breaks a limit, is damaged, or holds no document."""
    from gmid.portals.web import check_document  # requests: at first use

    with _opened(data) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        _check_limits(infos, cap)
        if any(info.filename in _PACKAGE_MARKS for info in infos):
            raise DownloadRejected(
                "the download is an office document or another packaged file (a ZIP of its "
                "parts), not a PDF, XML or image"
            )
        found: list[Member] = []
        notes: list[str] = []
        for info in infos:
            content = _read(archive, info, cap)
            if is_zip(content):
                notes.append(f"{info.filename}: a ZIP inside the ZIP is not opened")
                continue
            try:
                _kind, media_type, ext = check_document(content, None)
            except DownloadRejected:
                notes.append(f"{info.filename}: not a PDF, XML or image")
                continue
            found.append(Member(info.filename, content, media_type, ext))
    if not found:
        left = f" ({'; '.join(notes[:3])})" if notes else ""
        raise DownloadRejected(f"the download is a ZIP with no PDF, XML or image in it{left}")
    return found, notes


def member_ids(doc_id: str, members: list[Member]) -> list[str]:
    """Each member's document id: the ZIP's id, a slash and the member's name (made distinct
    when a ZIP names two members alike)."""
    ids, seen = [], set()
    for member in members:
        ref, n = f"{doc_id}/{member.name}", 1
        while ref in seen:
            n += 1
            ref = f"{doc_id}/{member.name}~{n}"
        seen.add(ref)
        ids.append(ref)
    return ids


class _opened:
    """zipfile's reader on the bytes, once the ZIP's table of contents is known to be small."""

    def __init__(self, data: bytes):
        _check_directory(data)
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as e:
            raise DownloadRejected(f"the download is a damaged ZIP file ({e})") from None

    def __enter__(self) -> zipfile.ZipFile:
        return self.archive

    def __exit__(self, *exc) -> None:
        self.archive.close()


def _check_directory(data: bytes) -> None:
    """Refuse a ZIP whose end record announces too many members or too large a table of
    contents, before zipfile reads it (it makes an object per entry)."""
    start = data.rfind(_EOCD, max(0, len(data) - _EOCD_SIZE - 0xFFFF))
    if start < 0 or len(data) - start < _EOCD_SIZE:
        raise DownloadRejected("the download is a damaged ZIP file (no end record)")
    if data[max(0, start - _LOCATOR_SIZE) : start - _LOCATOR_SIZE + 4] == _ZIP64_LOCATOR:
        # ZIP64's own table sizes would be taken instead; no invoice ZIP needs them
        raise DownloadRejected("the download is a ZIP64 file (for huge archives): refused")
    entries, size = struct.unpack("<HI", data[start + 10 : start + 16])
    if entries > MAX_MEMBERS or (entries == 0xFFFF and size == 0xFFFFFFFF):
        raise DownloadRejected(f"the download is a ZIP of more than {MAX_MEMBERS} files: refused")
    if size > MAX_DIRECTORY:
        raise DownloadRejected(
            f"the download is a ZIP whose table of contents is over {MAX_DIRECTORY} bytes: refused"
        )


def _check_limits(infos: list[zipfile.ZipInfo], cap: int) -> None:
    """Every limit a member could break, checked on the table of contents before reading."""
    if len(infos) > MAX_MEMBERS:
        raise DownloadRejected(f"the download is a ZIP of more than {MAX_MEMBERS} files: refused")
    total = 0
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise DownloadRejected(f"the download is a ZIP with an encrypted member ({name!r})")
        if not _safe_name(name):
            raise DownloadRejected(
                f"the download is a ZIP with a member named {name[:80]!r}, outside its folder: "
                "refused"
            )
        if info.file_size > cap:
            raise DownloadRejected(
                f"the download is a ZIP whose member {name!r} is over the {cap} byte cap "
                "(runs.max_download)"
            )
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise DownloadRejected(
                f"the download is a ZIP whose member {name!r} unpacks {ratio:.0f} times its "
                "size (a zip bomb?): refused"
            )
        total += info.file_size
    if total > cap:
        raise DownloadRejected(
            f"the download is a ZIP whose members come to more than the {cap} byte cap "
            "(runs.max_download)"
        )


def _safe_name(name: str) -> bool:
    """A member name that stays in its folder: relative, no `..`, no drive, no control
    characters (it is never used as a path; a ZIP that names one so is not trusted)."""
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        return False
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return False
    return ".." not in path.split("/")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A member's bytes, read in chunks no further than its announced size (and the cap)."""
    limit = min(info.file_size, cap)
    chunks, size = [], 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise DownloadRejected(
                        f"the download is a ZIP whose member {info.filename!r} is larger than "
                        "it says: refused"
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as e:
        raise DownloadRejected(f"the download is a damaged ZIP file ({e})") from None
    except NotImplementedError as e:  # a compression method zipfile does not know
        raise DownloadRejected(f"the download is a ZIP gmid cannot read ({e})") from None
    except RuntimeError as e:  # zipfile's words for an encrypted member it met late
        raise DownloadRejected(f"the download is a ZIP with an encrypted member ({e})") from None
    return b"".join(chunks)
