"""The folder destination: written as the archive writes, once, never through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gmid.deliver.base import DeliveryFailed
from gmid.deliver.folder import FolderDestination, Options
from tests.deliver.support import delivery, soon


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_document_lands_under_its_template_name_once(tmp_path: Path):
    out = tmp_path / "consume"
    out.mkdir()
    dest = FolderDestination("out", Options(dir=out, file_name="{company}/{date:%Y}/{name}"))
    item = delivery(tmp_path / "archive")
    reference = dest.deliver(item, soon())
    name = "Telekom/2026/2026-03-04 Telekom 4711.pdf"
    assert reference == str(out / name)
    assert files(out) == {name: item.path.read_bytes()}
    assert oct(os.stat(out / name).st_mode & 0o777) == "0o640"
    # Again (a retry after a crash before the outbox heard of it): no second copy.
    assert dest.deliver(item, soon()) == reference
    assert files(out) == {name: item.path.read_bytes()}


def test_another_file_at_the_name_is_kept_and_the_document_gets_the_next_name(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "2026-03-04 Telekom 4711.pdf").write_bytes(b"the user's own file")
    dest = FolderDestination("out", Options(dir=out))
    item = delivery(tmp_path / "archive")
    assert dest.deliver(item, soon()).endswith("2026-03-04 Telekom 4711 (2).pdf")
    assert dest.deliver(item, soon()).endswith("2026-03-04 Telekom 4711 (2).pdf")
    assert files(out) == {
        "2026-03-04 Telekom 4711.pdf": b"the user's own file",
        "2026-03-04 Telekom 4711 (2).pdf": item.path.read_bytes(),
    }


def test_a_symlinked_folder_below_the_destination_is_not_followed(tmp_path: Path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "Telekom").symlink_to(elsewhere)
    dest = FolderDestination("out", Options(dir=out, file_name="{company}/{name}"))
    with pytest.raises(DeliveryFailed, match="symlink"):
        dest.deliver(delivery(tmp_path / "archive"), soon())
    assert list(elsewhere.iterdir()) == []


def test_a_missing_folder_is_not_created_and_the_failure_says_so(tmp_path: Path):
    dest = FolderDestination("out", Options(dir=tmp_path / "not-mounted"))
    with pytest.raises(DeliveryFailed, match="cannot open the folder") as failed:
        dest.deliver(delivery(tmp_path / "archive"), soon())
    assert not failed.value.permanent
    assert not (tmp_path / "not-mounted").exists()


def test_no_temp_file_is_left_behind(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    dest = FolderDestination("out", Options(dir=out))
    for i in range(3):
        dest.deliver(delivery(tmp_path / "archive", f"x/{i}.pdf", b"doc %d" % i), soon())
    assert sorted(os.listdir(out)) == ["0.pdf", "1.pdf", "2.pdf"]
