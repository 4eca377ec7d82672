"""Deliver into a folder (a paperless consume folder, a synced folder) as the archive files.

The document is written to a hidden temp file beside its name (".gmid-<hex>.tmp"), fsynced,
given its name by a hard link that never replaces a file, and the folder fsynced. Below the
configured folder no symlink is followed: folders are opened with O_NOFOLLOW one by one. A name
taken by another file gets " (2)", " (3)"...; a name holding the same bytes already is this
document, delivered before an interruption: not written again.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node

from gmid.archive.fs import DIR_FLAGS, fsync_dir, place, same_content, write_temp
from gmid.config.reader import Reader, is_null
from gmid.deliver import naming
from gmid.deliver.base import Delivery, DeliveryFailed

DEFAULT_NAME = "{name}"
MAX_COLLISIONS = 1000


@dataclass(frozen=True)
class Options:
    """Where the files go and how they are named."""

    dir: Path
    file_name: str = DEFAULT_NAME
    mode: int = 0o640


def read_options(r: Reader, node: Node, option: str) -> Options:
    """Read a folder destination's options: dir, file_name, mode."""
    m = r.mapping(node, option, ("dir", "file_name", "mode"))
    if is_null(m.get("dir")):
        r.problem(node, f"{option}.dir", "needed: the folder to deliver into")
    folder = r.path(m.get("dir"), f"{option}.dir", Path("/nonexistent"))
    file_name = naming.read_template(r, m.get("file_name"), f"{option}.file_name", DEFAULT_NAME)
    mode_text = r.text(m.get("mode"), f"{option}.mode", "0640")
    try:
        mode = int(mode_text, 8)
        if not 0 <= mode <= 0o777:
            raise ValueError
    except ValueError:
        r.problem(m.get("mode"), f"{option}.mode", "expected file permissions in octal, e.g. 0640")
        mode = 0o640
    return Options(dir=folder, file_name=file_name, mode=mode)


def destination(name: str, options: Options) -> FolderDestination:
    """The folder destination of these options."""
    return FolderDestination(name, options)


class FolderDestination:
    """A folder on this machine (or a mounted share)."""

    def __init__(self, name: str, options: Options):
        self.name = name
        self.options = options

    def deliver(self, item: Delivery, deadline: float) -> str:
        """Write the document under its name; return its path."""
        data = item.read()
        *folders, name = naming.parts(self.options.file_name, item)
        try:
            root = os.open(self.options.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            # Never created here: a share that is not mounted must not fill the disk below it.
            raise DeliveryFailed(f"cannot open the folder {self.options.dir}: {e.strerror}") from e
        try:
            dir_fd = _open_folders(root, folders, self.options.dir)
        finally:
            os.close(root)
        try:
            where = self.options.dir.joinpath(*folders)
            placed = _place(dir_fd, where, name, data, item.sha256, self.options.mode)
            fsync_dir(dir_fd)
        except OSError as e:
            raise DeliveryFailed(f"cannot write into {self.options.dir}: {e.strerror}") from e
        finally:
            os.close(dir_fd)
        return str(self.options.dir.joinpath(*folders, placed))

    def close(self) -> None:
        """Nothing to let go of."""


def _open_folders(root: int, folders: list[str], shown: Path) -> int:
    """Open (creating) the folders below root one by one, never through a symlink; an fd."""
    fd = os.dup(root)
    where = shown
    try:
        for folder in folders:
            where = where / folder
            try:
                os.mkdir(folder, 0o750, dir_fd=fd)
                fsync_dir(fd)
            except FileExistsError:
                pass
            child = os.open(folder, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DeliveryFailed(
                f"{where} is a symlink or not a folder; gmid never follows one: move it away"
            ) from None
        raise DeliveryFailed(f"cannot make the folder {where}: {e.strerror}") from e
    return fd


def _place(dir_fd: int, where: Path, name: str, data: bytes, sha: str, mode: int) -> str:
    """Give the bytes a name in the folder (where, open as dir_fd), never replacing a file."""
    tmp = write_temp(where, data, mode, ".gmid-", dir_fd=dir_fd).name
    try:
        for n in range(1, MAX_COLLISIONS):
            candidate = naming.suffixed(name, n)
            if same_content(dir_fd, candidate, sha, len(data)):
                return candidate  # delivered before an interruption
            if place(tmp, dir_fd, candidate, src_dir_fd=dir_fd):
                return candidate
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
    raise DeliveryFailed(f"too many files named like {name!r}", permanent=True)
