"""What `documents.render` reads for `gmid show --html/--text` stays inside the archive: no
symlink followed, no path out of it, no FIFO that blocks, nothing over the limit."""

from __future__ import annotations

import os

from gmid.daemon.rpc.show import read_in_archive


def test_only_plain_files_inside_the_archive_are_read(tmp_path):
    archive, outside = tmp_path / "archive", tmp_path / "outside.xml"
    (archive / "Telekom").mkdir(parents=True)
    (archive / "Telekom" / "a.xml").write_bytes(b"<Invoice/>")
    outside.write_bytes(b"<secret/>")
    (archive / "Telekom" / "link.xml").symlink_to(outside)
    (archive / "escape").symlink_to(tmp_path)
    os.mkfifo(archive / "Telekom" / "fifo.xml")
    (archive / "Telekom" / "big.xml").write_bytes(b"x" * 101)

    assert read_in_archive(archive, "Telekom/a.xml", 100) == b"<Invoice/>"
    assert read_in_archive(archive, "Telekom/link.xml", 100) is None
    assert read_in_archive(archive, "escape/outside.xml", 100) is None
    assert read_in_archive(archive, "../outside.xml", 100) is None
    assert read_in_archive(archive, str(outside), 100) is None
    assert read_in_archive(archive, "Telekom/fifo.xml", 100) is None
    assert read_in_archive(archive, "Telekom/big.xml", 100) is None
    assert read_in_archive(archive, "Telekom/gone.xml", 100) is None
