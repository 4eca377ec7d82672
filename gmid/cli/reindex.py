"""The `gmid reindex` command: read the documents filed before gmid read documents."""

from __future__ import annotations

import argparse
import os
import sys

from gmid.cli.common import command, config_path, options


def cmd_reindex(args: argparse.Namespace) -> int:
    from gmid.archive.archive import Archive
    from gmid.archive.index import Index
    from gmid.archive.reindex import Progress, reindex
    from gmid.archive.statelock import StateLocked, lock_state
    from gmid.config.load import load_config
    from gmid.documents.fields import READER_VERSION

    config = load_config(config_path(args))
    index_path = config.state_dir / "index.sqlite"
    try:
        lock = lock_state(config.state_dir)
    except StateLocked as e:
        index = Index(index_path)
        try:
            left = index.unread_count(READER_VERSION)
        finally:
            index.close()
        print(
            f"the daemon (pid {e.pid}) is running: it reads them in the background; "
            f"{left} document{'' if left == 1 else 's'} left to read"
        )
        return 0
    index = Index(index_path)
    try:
        archive = Archive(
            config.archive.dir,
            config.archive.name,
            index,
            config.tz,
            quarantine_dir=config.state_dir / "quarantine",
        )
        archive.companies, archive.ocr = config.companies, config.ocr
        archive.recover()
        tty = sys.stdout.isatty()

        def show(p: Progress) -> None:
            if tty or p.done == p.total or p.done % 100 == 0:
                end = "\r" if tty and p.done < p.total else "\n"
                print(f"read {p.done} of {p.total}, {p.renamed} renamed", end=end, flush=True)

        try:
            done = reindex(archive, progress=show)
        except KeyboardInterrupt:
            print("\nstopped; `gmid reindex` goes on where it stopped")
            return 130
        finally:
            archive.reader.close()
        if done.total == 0:
            print("every document is read")
        if done.missing:
            print(f"{done.missing} file(s) not found: see `gmid verify`")
    finally:
        index.close()
        os.close(lock)
    return 0


def add_reindex_command(sub, common: argparse.ArgumentParser) -> None:
    """Register reindex on the `gmid` parser."""
    p = command(
        sub,
        "reindex",
        "read the documents filed before (date, number, amount, text), resumable",
        "gmid reindex",
        parents=[options(socket=False)],
    )
    p.set_defaults(func=cmd_reindex)
