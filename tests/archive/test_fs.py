"""Writing a file whole: the one way gmid writes its files (config, sessions, keys, images)."""

from __future__ import annotations

import os
import stat

import pytest

from gmid.archive.fs import fsync_dir, write_atomic


def test_a_new_file_gets_exactly_its_mode_and_no_temp_file_is_left(tmp_path):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "a.yaml", b"x: 1\n", 0o640, replace=False)
    finally:
        os.umask(old)
    assert (tmp_path / "a.yaml").read_bytes() == b"x: 1\n"
    assert stat.S_IMODE((tmp_path / "a.yaml").stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.yaml"]


def test_without_replace_an_existing_name_is_left_as_it_is(tmp_path):
    (tmp_path / "key").write_bytes(b"first")
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / "key", b"second", 0o600, replace=False)
    assert (tmp_path / "key").read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["key"]


def test_a_symlink_at_the_name_is_never_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not ours")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / "link", b"new", 0o600, replace=False)
    write_atomic(tmp_path / "link", b"new", 0o600, replace=True)
    assert target.read_bytes() == b"not ours"
    assert not (tmp_path / "link").is_symlink()
    assert (tmp_path / "link").read_bytes() == b"new"


def test_replace_swaps_the_content_whole(tmp_path):
    path = tmp_path / "telekom.cookies"
    write_atomic(path, b"old", 0o600, replace=True)
    write_atomic(path, b"new", 0o600, replace=True)
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["telekom.cookies"]


def test_fsync_dir_takes_a_path_or_an_open_folder(tmp_path):
    fsync_dir(tmp_path)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync_dir(fd)
        os.fstat(fd)  # still open: the caller closes it
    finally:
        os.close(fd)
