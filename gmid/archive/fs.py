"""Writing files durably, for the archive and for every other file gmid keeps.

A file is written whole or not at all: a temp file in the same folder, fsynced, then given its
name by a rename (replacing) or a hard link (never replacing), then the folder fsynced
(`write_atomic`). The archive does these steps itself (`write_temp`, `place`, `fsync_dir`), as it
files many documents under one lock and one folder fsync. Every function here works below a
folder it is given; the callers decide the names. Nothing here follows a symlink at a name it
writes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from gmid.errors import ArchiveError

logger = logging.getLogger("gmid.archive.archive")

TMP_DIR = ".gmid-tmp"
# A folder opened to work in: never through a symlink swapped in since it was checked.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Filesystems without hard links (exFAT, some network shares) answer link() with one of these.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def inside(path: str, root: str) -> bool:
    """Tell whether the real path lies in (or is) the real root."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def clean_relative(path: str) -> bool:
    """Tell whether an index path is a plain relative path that stays in the archive."""
    parts = path.split("/")
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def file_sha256(file: BinaryIO, head: int = 0) -> tuple[str, int, bytes]:
    """Hash an open file to its end: (sha256 hex digest, bytes read, its first head bytes)."""
    first = file.read(head) if head else b""
    digest = hashlib.sha256(first)
    size = len(first)
    buffer = bytearray(1 << 18)
    view = memoryview(buffer)
    while n := file.readinto(buffer):
        digest.update(view[:n])
        size += n
    return digest.hexdigest(), size, first


def fsync_dir(folder: str | Path | int) -> None:
    """Make the entries of a folder (new names, renames, removals) durable.

    folder is a path, or a folder already open (its fd, which stays open).
    """
    if isinstance(folder, int):
        os.fsync(folder)
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path, mode: int) -> None:
    """Create path (and parents) if missing; folders created here get exactly mode."""
    if path.is_dir():
        return
    make_dir(path.parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # another thread was faster; the is_dir check of the caller's open will tell
    os.chmod(path, mode)  # the umask must not change what we promise
    fsync_dir(path.parent)


def open_own_dir(folder: Path) -> int:
    """Open a folder gmid owns (a temp folder), never through a symlink; return its fd.

    ArchiveError naming the folder if a symlink (or anything but a folder) is at its name:
    what is behind it is not gmid's to write to or to clean.
    """
    try:
        return os.open(folder, DIR_FLAGS)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    try:
        target = os.readlink(folder)
    except OSError:
        raise ArchiveError(
            f"{folder} is not a folder; gmid keeps its unfinished files there: move it away"
        ) from None
    raise ArchiveError(
        f"{folder} is a symlink (to {target}); gmid never follows a symlink to write or remove "
        "its unfinished files: remove the symlink and gmid makes the folder again"
    )


def make_own_dir(folder: Path, mode: int) -> None:
    """Create a folder gmid owns (a temp folder) if missing, with exactly mode.

    Its parents are made as make_dir makes them; a symlink at its own name is refused as
    open_own_dir refuses it, never followed.
    """
    make_dir(folder.parent, mode)
    try:
        os.mkdir(folder, mode)
    except FileExistsError:
        pass
    else:
        fsync_dir(folder.parent)
    fd = open_own_dir(folder)
    try:
        os.fchmod(fd, mode)  # the umask must not change what we promise
    finally:
        os.close(fd)


def write_temp(
    folder: Path, data: bytes, mode: int, prefix: str = "", *, dir_fd: int | None = None
) -> Path:
    """Write data to a new uniquely named file in folder, fsynced, and return its path.

    The file is named prefix, random hex digits, ".tmp"; it gets exactly mode. Unless the
    caller gives the folder open (dir_fd), it is opened as open_own_dir opens it: never
    through a symlink.
    """
    name = f"{prefix}{secrets.token_hex(12)}.tmp"
    path = folder / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    if dir_fd is None:
        own_fd = open_own_dir(folder)
        try:
            fd = os.open(name, flags, mode, dir_fd=own_fd)
        finally:
            os.close(own_fd)
    else:
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        if dir_fd is None:
            unlink_quietly(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(fd)
    return path


TEMP_WRITERS = 4  # threads writing the files of one batch
FILE_MODE = 0o640


def write_temps(folder: Path, data: dict[int, bytes], temps: dict[int, Path]) -> None:
    """Write each data to a fsynced temp file in folder, into temps by key (several threads:
    their fsyncs overlap); raise the first failure, keeping in temps what was written."""
    if len(data) < 2:
        for key, content in data.items():
            temps[key] = write_temp(folder, content, FILE_MODE)
        return
    with ThreadPoolExecutor(TEMP_WRITERS, thread_name_prefix="gmid-fsync") as pool:
        futures = {
            key: pool.submit(write_temp, folder, content, FILE_MODE)
            for key, content in data.items()
        }
    failure = None
    for key, future in futures.items():
        if future.exception() is None:
            temps[key] = future.result()  # kept even when another failed: unlinked later
        elif failure is None:
            failure = future.exception()
    if failure is not None:
        raise failure


def unlink_quietly(path: Path) -> None:
    """Remove a temp file that may already be gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot remove temp file %s: %s", path, exc.strerror)


def remove_temp_files(folder: Path) -> int:
    """Remove the files in a temp folder (left by a crash); return how many.

    Folders in it are left: gmid never makes any there, so they are not its to remove.
    A symlink at the folder's name is refused (see open_own_dir): nothing behind it is removed.
    """
    removed = 0
    dir_fd = open_own_dir(folder)
    try:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.name, dir_fd=dir_fd)
                    removed += 1
    finally:
        os.close(dir_fd)
    return removed


def place(tmp: Path | str, dir_fd: int, name: str, *, src_dir_fd: int | None = None) -> bool:
    """Give the temp file a final name without ever replacing a file; False if name is taken.

    tmp is a path, or with src_dir_fd the name of the temp file in that open folder.
    """
    try:
        # link() fails if the name exists, where rename() would silently replace it.
        os.link(tmp, name, src_dir_fd=src_dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return False
    except FileNotFoundError:
        # No hard links here: rename is still atomic, but would replace a file made between
        # the stat and the rename; the archive's lock keeps its own writers from that.
        os.rename(tmp, name, src_dir_fd=src_dir_fd, dst_dir_fd=dir_fd)
        return True


def write_atomic(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write a file whole or not at all, durably, with exactly mode; its folder must exist.

    The temp file is hidden beside it (".NAME-<hex>.tmp": no glob of the folder such as
    `*.yaml` reads it half-written). With replace, whatever is at path is replaced (a symlink
    there too: it is not followed); without, FileExistsError if anything is at path, which is
    left as it is.
    """
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tmp = write_temp(path.parent, data, mode, prefix=f".{path.name}-", dir_fd=dir_fd)
        try:
            if replace:
                os.replace(tmp, path.name, dst_dir_fd=dir_fd)
            elif not place(tmp, dir_fd, path.name):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
        finally:
            unlink_quietly(tmp)  # after a link; gone already after a rename
        fsync_dir(dir_fd)
    finally:
        os.close(dir_fd)


def same_content(dir_fd: int, name: str, sha: str, size: int) -> bool:
    """Tell whether the regular file name in dir_fd holds exactly the bytes hashing to sha."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd, "rb", buffering=0) as file:
            return file_sha256(file)[0] == sha
    except (FileNotFoundError, PermissionError):
        # Removed since it was found taken (the user's stray file), or not ours to read:
        # not a file to adopt. Raising would fail every later store of this name.
        return False


def looks_stored(name: str | Path, size: int, dir_fd: int | None = None) -> bool | None:
    """Tell whether name is a regular file of size bytes; None if nothing is at name.

    A symlink at name is not followed (it is not the document). The content is not read:
    checking it is `gmid verify`'s work, not that of every duplicate delivery.
    """
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None  # the file, or a folder above it, is gone
    except NotADirectoryError:
        return False  # a file where a folder of the path belongs
    return stat.S_ISREG(info.st_mode) and info.st_size == size
