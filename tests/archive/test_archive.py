"""The archive on real files: names, dedup, durability dance, hostile input, threads."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import threading
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gmid.archive.archive import TMP_DIR, Archive, Incoming
from gmid.archive.index import Index
from gmid.errors import ArchiveError

TEMPLATE = "{company}/{date:%Y}/{date:%Y-%m-%d} {company} {number}{ext}"
BERLIN = ZoneInfo("Europe/Berlin")
RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture
def index(tmp_path):
    idx = Index(tmp_path / "state" / "index.sqlite")
    yield idx
    idx.close()


def make_archive(tmp_path: Path, index: Index, template: str = TEMPLATE) -> Archive:
    """Return an archive under tmp_path/data/archive with its quarantine in the state dir."""
    return Archive(
        tmp_path / "data" / "archive",
        template,
        index,
        BERLIN,
        quarantine_dir=tmp_path / "state" / "quarantine",
    )


@pytest.fixture
def archive(tmp_path, index):
    return make_archive(tmp_path, index)


def pdf(content: str | bytes = "invoice") -> bytes:
    """Return a small fake PDF whose bytes depend on content."""
    body = content.encode() if isinstance(content, str) else content
    return b"%PDF-1.7\n" + body + b"\n%%EOF\n"


def incoming(data: bytes, **fields) -> Incoming:
    values = {
        "media_type": "application/pdf",
        "ext": ".pdf",
        "source": "smtp",
        "source_name": "smtp",
        "company": "Acme",
        "number": "42",
        "received_at": RECEIVED,
        "date": date(2026, 11, 24),
    }
    return Incoming(data=data, **(values | fields))


def user_files(root: Path) -> dict[str, bytes]:
    """Return every file the user sees in the archive, by relative path."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != TMP_DIR]
        for name in filenames:
            path = Path(dirpath, name)
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def all_paths(top: Path) -> set[str]:
    """Return every path under top, symlinks not followed."""
    return {os.path.join(d, n) for d, dirs, files in os.walk(top) for n in (*dirs, *files)} | {
        str(top)
    }


def test_store_writes_exact_bytes_at_the_template_path(archive, index):
    data = pdf("Stadtwerke November")
    stored = archive.store(incoming(data, original_name="Rechnung.pdf"))

    assert stored.created
    assert stored.document.path == "Acme/2026/2026-11-24 Acme 42.pdf"
    assert stored.absolute_path == archive.root / "Acme/2026/2026-11-24 Acme 42.pdf"
    assert stored.absolute_path.read_bytes() == data
    assert user_files(archive.root) == {"Acme/2026/2026-11-24 Acme 42.pdf": data}
    assert stat.S_IMODE(stored.absolute_path.stat().st_mode) == 0o640
    assert stat.S_IMODE(stored.absolute_path.parent.stat().st_mode) == 0o750
    assert stat.S_IMODE((archive.root / "Acme").stat().st_mode) == 0o750
    assert os.listdir(archive.root / TMP_DIR) == []

    row = index.by_sha256(hashlib.sha256(data).hexdigest())
    assert row == stored.document
    assert (row.size, row.company, row.original_name) == (len(data), "Acme", "Rechnung.pdf")
    assert row.received_at == RECEIVED


def test_without_document_date_the_local_received_day_names_the_file(archive):
    # 23:30 UTC on New Year's Eve is already 2027 in Berlin.
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    stored = archive.store(incoming(pdf(), date=None, received_at=late))
    assert stored.document.path == "Acme/2027/2027-01-01 Acme 42.pdf"


def test_received_and_sha_placeholders(tmp_path, index):
    archive = make_archive(tmp_path, index, "{source_name}/{received:%Y-%m-%d %H%M} {sha}{ext}")
    data = pdf()
    stored = archive.store(incoming(data, source_name="INBOX/Rechnungen"))
    sha12 = hashlib.sha256(data).hexdigest()[:12]
    assert stored.document.path == f"INBOX-Rechnungen/2026-11-24 1030 {sha12}.pdf"


def test_same_bytes_are_stored_once(archive, index):
    data = pdf()
    first = archive.store(incoming(data))
    again = archive.store(incoming(data, company="Other", number="7", source="imap"))
    assert first.created and not again.created
    assert again.document == first.document
    assert again.absolute_path == first.absolute_path
    assert list(user_files(archive.root)) == [first.document.path]
    assert index.count() == 1


def test_empty_number_leaves_no_stray_space(archive):
    stored = archive.store(incoming(pdf(), company="Stadtwerke", number=None))
    assert stored.document.path == "Stadtwerke/2026/2026-11-24 Stadtwerke.pdf"
    stored = archive.store(incoming(pdf("b"), company="Stadtwerke", number="  "))
    assert stored.document.path == "Stadtwerke/2026/2026-11-24 Stadtwerke (2).pdf"


def test_collisions_get_a_counter(archive):
    paths = [archive.store(incoming(pdf(str(n)))).document.path for n in range(3)]
    assert paths == [
        "Acme/2026/2026-11-24 Acme 42.pdf",
        "Acme/2026/2026-11-24 Acme 42 (2).pdf",
        "Acme/2026/2026-11-24 Acme 42 (3).pdf",
    ]


def test_a_users_own_file_is_never_replaced(archive):
    mine = archive.root / "Acme/2026/2026-11-24 Acme 42.pdf"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my notes")
    stored = archive.store(incoming(pdf()))
    assert mine.read_bytes() == b"my notes"
    assert stored.document.path == "Acme/2026/2026-11-24 Acme 42 (2).pdf"


HOSTILE = [
    "../../etc",
    "/abs",
    "a/b",
    "CON",
    "x\x00y",
    "Z" * 300,
    "   ",
    "..",
    ".gmid-tmp",
    "\\\\srv\\x",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["company", "number"])
def test_hostile_names_stay_inside_with_readable_names(tmp_path, index, field, value):
    archive = make_archive(tmp_path, index)
    before = all_paths(tmp_path)
    stored = archive.store(incoming(pdf(), **{field: value}))

    created = all_paths(tmp_path) - before
    root = str(archive.root)
    state = str(tmp_path / "state")
    # Only the archive (and SQLite's own files in the state dir) changed.
    assert all(p.startswith(root + os.sep) or p.startswith(state + os.sep) for p in created)
    assert stored.absolute_path.resolve().is_relative_to(archive.root)
    assert stored.absolute_path.read_bytes() == pdf()
    for part in stored.document.path.split("/"):
        assert part and part not in (".", "..") and not part.startswith((".", " "))
        assert not part.endswith((".", " ")) and "  " not in part
        assert len(part.encode()) <= 200
        assert not any(unicodedata.category(c) == "Cc" for c in part)
        assert not set(part) & set('<>:"|?*\\')
        assert part.split(".")[0].upper() not in ("CON", "NUL", "AUX", "PRN")
    assert stored.document.path.endswith(".pdf")


def test_hostile_examples_read_well(archive):
    def path(**fields):
        return archive.store(incoming(pdf(repr(fields)), **fields)).document.path

    assert path(company="../../etc") == "-..-etc/2026/2026-11-24 ..-..-etc 42.pdf"
    assert path(company="a/b") == "a-b/2026/2026-11-24 a-b 42.pdf"
    assert path(company="CON") == "_CON/2026/2026-11-24 CON 42.pdf"
    assert path(company="x\x00y") == "xy/2026/2026-11-24 xy 42.pdf"
    assert path(company="   ") == "_/2026/2026-11-24 42.pdf"
    long = path(company="Ä" * 300)
    assert long.split("/")[0] == "Ä" * 100  # 200 bytes, cut between characters
    assert long.endswith("ÄÄ.pdf") and len(long.split("/")[-1].encode()) <= 200


def test_symlink_leading_outside_is_refused(tmp_path, archive, index):
    outside = tmp_path / "outside"
    outside.mkdir()
    (archive.root / "Evil").symlink_to(outside)

    with pytest.raises(ArchiveError, match="outside the archive"):
        archive.store(incoming(pdf(), company="Evil"))
    assert list(outside.iterdir()) == []
    assert os.listdir(archive.root / TMP_DIR) == []
    assert index.count() == 0


def test_symlink_within_the_archive_is_followed(archive):
    (archive.root / "Real").mkdir()
    (archive.root / "Alias").symlink_to(archive.root / "Real")
    stored = archive.store(incoming(pdf(), company="Alias"))
    assert stored.document.path == "Alias/2026/2026-11-24 Alias 42.pdf"
    assert (archive.root / "Real/2026/2026-11-24 Alias 42.pdf").read_bytes() == pdf()


def test_symlink_at_the_file_name_is_not_written_through(tmp_path, archive):
    target = tmp_path / "victim.txt"
    target.write_bytes(b"keep me")
    folder = archive.root / "Acme/2026"
    folder.mkdir(parents=True)
    (folder / "2026-11-24 Acme 42.pdf").symlink_to(target)
    stored = archive.store(incoming(pdf()))
    assert target.read_bytes() == b"keep me"
    assert stored.document.path == "Acme/2026/2026-11-24 Acme 42 (2).pdf"


def test_a_file_where_a_folder_belongs_is_a_clear_error(archive):
    (archive.root / "Acme").write_bytes(b"not a folder")
    with pytest.raises(ArchiveError, match="cannot write to the archive"):
        archive.store(incoming(pdf()))
    assert os.listdir(archive.root / TMP_DIR) == []


def test_recover_removes_only_leftover_temp_files(archive):
    kept = archive.store(incoming(pdf()))
    (archive.root / "notes.txt").write_text("mine")
    (archive.root / TMP_DIR / "0a1b2c.tmp").write_bytes(b"half a pdf")
    (archive.root / TMP_DIR / "3d4e5f.tmp").write_bytes(b"")
    (archive.quarantine_dir / TMP_DIR / "777.tmp").write_bytes(b"half a mail")

    assert archive.recover() == 3
    assert os.listdir(archive.root / TMP_DIR) == []
    assert os.listdir(archive.quarantine_dir / TMP_DIR) == []
    assert user_files(archive.root) == {kept.document.path: pdf(), "notes.txt": b"mine"}
    assert archive.recover() == 0


def swap_for_symlink(folder: Path, target: Path) -> None:
    """Replace the (empty) folder by a symlink to target, as a hostile user could."""
    folder.rmdir()
    folder.symlink_to(target)


@pytest.mark.parametrize("which", ["archive", "quarantine"])
def test_a_symlinked_temp_folder_is_never_cleaned_at_start_up(tmp_path, index, archive, which):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_bytes(b"keep me")
    tmp = (archive.root if which == "archive" else archive.quarantine_dir) / TMP_DIR
    swap_for_symlink(tmp, victim)

    with pytest.raises(ArchiveError, match=f"{re.escape(str(tmp))} is a symlink"):
        archive.recover()
    with pytest.raises(ArchiveError, match=f"{re.escape(str(tmp))} is a symlink"):
        make_archive(tmp_path, index)  # the next start-up refuses it too
    assert os.listdir(victim) == ["precious.txt"]
    assert tmp.is_symlink()


def test_a_document_is_never_written_through_a_symlinked_temp_folder(tmp_path, archive, index):
    victim = tmp_path / "victim"
    victim.mkdir()
    swap_for_symlink(archive.root / TMP_DIR, victim)

    with pytest.raises(ArchiveError, match="is a symlink"):
        archive.store(incoming(pdf()))
    with pytest.raises(ArchiveError, match="is a symlink"):
        archive.store_many([incoming(pdf("a")), incoming(pdf("b"))])
    assert os.listdir(victim) == []
    assert user_files(archive.root) == {}
    assert index.count() == 0


def test_a_mail_is_never_quarantined_through_a_symlinked_temp_folder(tmp_path, archive, index):
    victim = tmp_path / "victim"
    victim.mkdir()
    swap_for_symlink(archive.quarantine_dir / TMP_DIR, victim)

    with pytest.raises(ArchiveError, match="is a symlink"):
        archive.quarantine(b"Subject: x\r\n\r\nbody", "why", source="smtp", source_name="smtp")
    assert os.listdir(victim) == []
    assert index.quarantine_count() == 0


def test_an_orphan_file_from_a_crash_is_adopted(archive, index):
    data = pdf()
    orphan = archive.root / "Acme/2026/2026-11-24 Acme 42.pdf"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(data)
    inode = orphan.stat().st_ino

    stored = archive.store(incoming(data))
    assert stored.created
    assert stored.document.path == "Acme/2026/2026-11-24 Acme 42.pdf"
    assert orphan.stat().st_ino == inode  # indexed in place, not written again
    assert list(user_files(archive.root)) == [stored.document.path]
    assert index.by_sha256(hashlib.sha256(data).hexdigest()) == stored.document


def test_quarantine_keeps_the_raw_mail_privately(archive, index):
    raw = b"From: a@example.com\r\nSubject: broken\r\n\r\n\x00\xff garbage"
    path = archive.quarantine(raw, "MIME structure unreadable", source="smtp", source_name="smtp")

    assert path.parent == archive.quarantine_dir
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{12}\.eml", path.name)
    assert path.name.endswith(hashlib.sha256(raw).hexdigest()[:12] + ".eml")
    assert path.read_bytes() == raw
    note = path.with_name(path.name.removesuffix(".eml") + ".reason.txt")
    text = note.read_text()
    assert "MIME structure unreadable" in text and "source: smtp" in text and "time: " in text
    for p in (path, note):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive.quarantine_dir.stat().st_mode) == 0o700
    assert os.listdir(archive.quarantine_dir / TMP_DIR) == []
    assert index.quarantine_count() == 1

    # The same mail twice in the same second still gets its own files.
    second = archive.quarantine(raw, "again", source="imap", source_name="INBOX")
    assert second != path and second.read_bytes() == raw
    assert index.quarantine_count() == 2


def test_concurrent_stores_keep_each_content_once(archive, index):
    contents = [pdf(f"document {n}" * 1000) for n in range(50)]
    results: list = []
    errors: list = []

    def work(worker):
        try:
            for i in range(25):
                n = (worker * 7 + i * 3) % 50
                # Few companies and one number: names collide as well as contents.
                doc = incoming(contents[n], company=f"Co{n % 3}")
                results.append((n, archive.store(doc)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(results) == 200
    stored_contents = {n for n, _ in results}
    on_disk = user_files(archive.root)
    assert sorted(on_disk.values()) == sorted(contents[n] for n in stored_contents)
    assert index.count() == len(stored_contents) == len(on_disk)
    assert sum(s.created for _, s in results) == len(stored_contents)
    for n, s in results:
        assert on_disk[s.document.path] == contents[n]
    assert os.listdir(archive.root / TMP_DIR) == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{company}/{customer}{ext}", "unknown placeholder {customer}"),
        ("{company.__class__}{ext}", "unknown placeholder"),
        ("{date[0]}{ext}", "unknown placeholder"),
        ("{}{ext}", "unknown placeholder"),
        ("/srv/{company}{ext}", "must be relative"),
        ("{company!r}{ext}", "format spec only"),
        ("{date:%Y{ext}", "archive template"),
        ("{company:%Y}{ext}", "archive template"),
        ("  ", "is empty"),
    ],
)
def test_bad_templates_are_refused_up_front(tmp_path, index, template, message):
    with pytest.raises(ArchiveError, match=re.escape(message)):
        make_archive(tmp_path, index, template)


def test_bad_extension_is_refused(archive):
    with pytest.raises(ArchiveError, match="extension"):
        archive.store(incoming(pdf(), ext="/../x"))
    assert user_files(archive.root) == {}


def test_filesystem_without_hard_links(archive, monkeypatch):
    # exFAT and some network shares refuse link(); the archive falls back to rename.
    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    first = archive.store(incoming(pdf("1")))
    second = archive.store(incoming(pdf("2")))
    assert second.document.path == "Acme/2026/2026-11-24 Acme 42 (2).pdf"
    assert user_files(archive.root) == {
        first.document.path: pdf("1"),
        second.document.path: pdf("2"),
    }
    assert os.listdir(archive.root / TMP_DIR) == []
    path = archive.quarantine(b"raw mail", "test", source="smtp", source_name="smtp")
    assert path.read_bytes() == b"raw mail"
    assert path.with_name(path.stem + ".reason.txt").exists()


def restored(caplog) -> list[str]:
    """The archive's "restored PATH" log lines."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("restored ")]


@pytest.mark.parametrize("deleted", ["file", "folders"])
def test_a_deleted_file_is_restored_when_the_same_bytes_come_again(archive, index, caplog, deleted):
    data = pdf("restore me")
    first = archive.store(incoming(data))
    if deleted == "file":
        first.absolute_path.unlink()
    else:
        shutil.rmtree(archive.root / "Acme")  # the company folder, with the year below it
    caplog.set_level(logging.INFO, logger="gmid.archive.archive")

    # Other metadata, as a portal or a re-sent mail brings: the indexed path is what counts.
    again = archive.store(
        incoming(data, company="Other", number="7", source="imap", source_name="INBOX")
    )
    assert not again.created and again.restored
    assert again.document == first.document == index.by_path(first.document.path)
    assert again.absolute_path == first.absolute_path
    assert first.absolute_path.read_bytes() == data
    assert stat.S_IMODE(first.absolute_path.stat().st_mode) == 0o640
    assert stat.S_IMODE(first.absolute_path.parent.stat().st_mode) == 0o750
    assert user_files(archive.root) == {first.document.path: data}
    assert index.count() == 1
    assert os.listdir(archive.root / TMP_DIR) == []
    assert restored(caplog) == [f"restored {first.document.path} ({len(data)} bytes) from INBOX"]

    third = archive.store(incoming(data))  # present now: nothing written
    assert not third.created and not third.restored
    assert len(restored(caplog)) == 1


@pytest.mark.parametrize("occupant", ["another size", "same size", "symlink", "folder"])
def test_whatever_the_user_put_at_an_indexed_name_is_never_replaced(
    tmp_path, archive, caplog, occupant
):
    data = pdf("the original")
    first = archive.store(incoming(data))
    path = first.absolute_path
    path.unlink()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    if occupant == "another size":
        path.write_bytes(b"my annotated copy")
    elif occupant == "same size":
        path.write_bytes(data.replace(b"original", b"ORIGINAL"))  # verify's to find
    elif occupant == "symlink":
        path.symlink_to(victim)
    else:
        path.mkdir()
    before = all_paths(tmp_path)
    caplog.set_level(logging.INFO, logger="gmid.archive.archive")

    again = archive.store(incoming(data))
    assert not again.created and not again.restored
    assert again.document == first.document
    assert all_paths(tmp_path) == before
    assert victim.read_bytes() == b"keep me"
    if occupant == "another size":
        assert path.read_bytes() == b"my annotated copy"
    assert restored(caplog) == []
    warned = f"not restored {first.document.path}: something else is at its name"
    assert (warned in caplog.text) == (occupant != "same size")
    assert os.listdir(archive.root / TMP_DIR) == []


def test_a_name_taken_while_a_restore_waits_is_left_to_its_owner(archive, caplog, monkeypatch):
    """The user's file appears after store() found the name free, before the link."""
    data = pdf("the original")
    first = archive.store(incoming(data))
    first.absolute_path.unlink()
    real_gone = Archive._gone  # noqa: SLF001 (the race needs the step between check and link)

    def gone_then_taken(self, row):
        result = real_gone(self, row)
        (self.root / row.path).write_bytes(b"the user's, just now")
        return result

    monkeypatch.setattr(Archive, "_gone", gone_then_taken)
    again = archive.store(incoming(data))
    assert not again.created and not again.restored
    assert first.absolute_path.read_bytes() == b"the user's, just now"
    assert "not restored " in caplog.text
    assert os.listdir(archive.root / TMP_DIR) == []


def test_a_failed_restore_is_an_error_and_changes_nothing(archive, index, monkeypatch):
    data = pdf("restore me")
    first = archive.store(incoming(data))
    first.absolute_path.unlink()

    def broken_link(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "link", broken_link)
        with pytest.raises(ArchiveError, match="No space left"):
            archive.store(incoming(data))
    assert not first.absolute_path.exists()
    assert os.listdir(archive.root / TMP_DIR) == []
    assert index.by_path(first.document.path) == first.document
    again = archive.store(incoming(data))  # the mail retried: now it works
    assert again.restored and first.absolute_path.read_bytes() == data


def test_a_restore_without_hard_links(archive, monkeypatch):
    data = pdf("restore me")
    first = archive.store(incoming(data))
    first.absolute_path.unlink()

    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    again = archive.store(incoming(data))
    assert again.restored and first.absolute_path.read_bytes() == data
    assert user_files(archive.root) == {first.document.path: data}
    assert os.listdir(archive.root / TMP_DIR) == []


def test_concurrent_stores_restore_a_file_once(archive, index, caplog):
    data = pdf("wanted by all" * 5000)
    first = archive.store(incoming(data))
    first.absolute_path.unlink()
    caplog.set_level(logging.INFO, logger="gmid.archive.archive")
    start = threading.Barrier(8)
    results: list = []
    errors: list = []

    def work():
        try:
            start.wait()
            results.append(archive.store(incoming(data)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8
    assert not any(s.created for s in results)
    assert sum(s.restored for s in results) == 1
    assert len(restored(caplog)) == 1 and "not restored" not in caplog.text
    assert {s.document for s in results} == {first.document}
    assert user_files(archive.root) == {first.document.path: data}
    assert index.count() == 1
    assert os.listdir(archive.root / TMP_DIR) == []


def test_the_daemon_refuses_to_start_on_a_symlinked_temp_folder(daemon, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.tmp").write_bytes(b"keep me")
    assert daemon.stop() == 0
    tmp = daemon.state / "quarantine" / TMP_DIR
    swap_for_symlink(tmp, victim)

    with pytest.raises(RuntimeError, match=f"{re.escape(str(tmp))} is a symlink"):
        daemon.start()
    assert "Traceback" not in daemon.log_text()
    assert os.listdir(victim) == ["precious.tmp"]
    tmp.unlink()  # the link removed, the daemon starts again and makes the folder
    daemon.start()
    assert (daemon.state / "quarantine" / TMP_DIR).is_dir()
