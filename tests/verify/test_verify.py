"""`gmid verify`: the archive folder checked against the index, with a real daemon."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.cli.test_cli import gmid
from tests.conftest import Daemon
from tests.support.mails import invoice_mail, make_pdf, no_attachment_mail

SENDER = "rechnung@stadtwerke.example"


def _verify(daemon: Daemon, *args: str):
    return gmid("verify", "-c", str(daemon.config), *args)


def _verify_json(daemon: Daemon, *args: str) -> tuple[int, dict]:
    result = _verify(daemon, "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _deliver(daemon: Daemon, n: int, tag: str = "v") -> list[bytes]:
    pdfs = [make_pdf(f"verify {tag} {i}") for i in range(n)]
    for i, pdf in enumerate(pdfs):
        raw = invoice_mail(sender=SENDER, subject=f"R {tag} {i}", pdfs=[(f"R{i}.pdf", pdf)])
        assert daemon.send(raw, sender=SENDER)[0] == 250
    return pdfs


def _rows(daemon: Daemon) -> dict[str, tuple[str, str]]:
    """path -> (sha256, source) of every index row, read as verify does (read-only)."""
    db = sqlite3.connect(f"file:{daemon.state / 'index.sqlite'}?mode=ro", uri=True)
    try:
        return {
            p: (s, src) for p, s, src in db.execute("SELECT path, sha256, source FROM documents")
        }
    finally:
        db.close()


def _damage(daemon: Daemon) -> dict[str, str]:
    """Break the archive in every way verify knows; return kind -> the path it must report."""
    files = [p.relative_to(daemon.archive).as_posix() for p in daemon.archived_files()]
    gone, flipped, moved = files[0], files[1], files[2]
    (daemon.archive / gone).unlink()
    data = bytearray((daemon.archive / flipped).read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the hash tells
    (daemon.archive / flipped).write_bytes(bytes(data))
    (daemon.archive / moved).rename(daemon.archive / "Stadtwerke" / "renamed by hand.pdf")
    (daemon.archive / "Stadtwerke" / "stray.pdf").write_bytes(make_pdf("a stray invoice"))
    (daemon.archive / "notes.txt").write_text("not a document\n")
    os.symlink("/etc/hostname", daemon.archive / "Stadtwerke" / "elsewhere.pdf")
    temp = daemon.archive / ".gmid-tmp" / "0123456789abcdef01234567.tmp"
    temp.write_bytes(b"%PDF-1.4 half written")
    old = time.time() - 3600  # while the daemon runs, only an old temp file is a stale one
    os.utime(temp, (old, old))
    (daemon.archive / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return {
        "missing": gone,
        "changed": flipped,
        "moved": "Stadtwerke/renamed by hand.pdf",
        "unknown": "Stadtwerke/stray.pdf",
        "symlink": "Stadtwerke/elsewhere.pdf",
        "temp": ".gmid-tmp/0123456789abcdef01234567.tmp",
    }


def test_a_clean_archive_verifies_ok_while_the_daemon_runs(daemon):
    _deliver(daemon, 3)
    assert daemon.send(no_attachment_mail(), sender="x@example.org")[0] == 250  # kept as .eml
    result = _verify(daemon)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"daemon running, pid {daemon.proc.pid}" in result.stdout
    assert "OK: the index matches the folder: 4 index rows, 4 files (4 hashed" in result.stdout
    quick = _verify(daemon, "--quick")
    assert quick.returncode == 0 and "sizes only (--quick)" in quick.stdout


def test_each_kind_of_damage_is_reported_with_its_path(daemon):
    _deliver(daemon, 4)
    expected = _damage(daemon)
    result = _verify(daemon)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    for label, kind in (
        ("MISSING", "missing"),
        ("CHANGED", "changed"),
        ("MOVED", "moved"),
        ("UNKNOWN", "unknown"),
        ("SYMLINK", "symlink"),
        ("TEMP", "temp"),
    ):
        assert f"{label:<8} {expected[kind]}\n" in out, (kind, out)
    assert "UNKNOWN  notes.txt\n" in out and "not a document" in out
    assert "Restore the original from a backup" in out  # the changed file
    assert "restore it from a backup" in out  # the missing one
    assert "/etc/hostname (outside the archive: refused)" in out
    assert ".DS_Store" not in out  # OS metadata is not a problem
    assert "7 problems (1 changed, 1 missing, 1 moved, 1 symlink, 2 unknown, 1 temp)" in out


def test_quick_compares_sizes_only(daemon):
    _deliver(daemon, 2)
    same_size, longer = daemon.archived_files()
    data = bytearray(same_size.read_bytes())
    data[-20] ^= 0x01
    same_size.write_bytes(bytes(data))
    code, report = _verify_json(daemon, "--quick")
    assert code == 0 and report["quick"] and report["checked"]["hashed"] == 0
    longer.write_bytes(longer.read_bytes() + b"\n")
    code, report = _verify_json(daemon, "--quick")
    [problem] = report["problems"]
    assert code == 1 and problem["kind"] == "changed" and problem["found_sha256"] is None
    assert problem["found_size"] == problem["size"] + 1
    code, report = _verify_json(daemon)  # hashing finds both
    assert code == 1 and [p["kind"] for p in report["problems"]] == ["changed", "changed"]


def test_json_output_shape(daemon):
    _deliver(daemon, 4)
    expected = _damage(daemon)
    code, report = _verify_json(daemon)
    assert code == 1
    assert set(report) == {
        "ok",
        "archive",
        "index",
        "daemon_pid",
        "quick",
        "checked",
        "counts",
        "problems",
        "repaired",
        "in_flight",
        "ignored",
    }
    assert report["ok"] is False and report["daemon_pid"] == str(daemon.proc.pid)
    assert report["archive"] == os.path.realpath(daemon.archive)
    assert report["checked"]["rows"] == 4 and report["checked"]["files"] == 6
    assert report["counts"] == {
        "changed": 1,
        "missing": 1,
        "moved": 1,
        "symlink": 1,
        "unknown": 2,
        "temp": 1,
    }
    by_kind = {}
    for problem in report["problems"]:
        assert {"kind", "path", "message"} <= set(problem)
        by_kind.setdefault(problem["kind"], []).append(problem)
    for kind, path in expected.items():
        assert path in [p["path"] for p in by_kind[kind]], kind
    [changed] = by_kind["changed"]
    on_disk = (daemon.archive / changed["path"]).read_bytes()
    assert changed["found_sha256"] == hashlib.sha256(on_disk).hexdigest() != changed["sha256"]
    [moved] = by_kind["moved"]
    assert moved["from"] in _rows(daemon)
    stray = next(p for p in by_kind["unknown"] if p["path"] == expected["unknown"])
    assert stray["adoptable"] and stray["media_type"] == "application/pdf"
    assert stray["sha256"] == hashlib.sha256(make_pdf("a stray invoice")).hexdigest()
    [link] = by_kind["symlink"]
    assert link["outside"] and link["target"] == "/etc/hostname"
    assert report["ignored"] == [".DS_Store"] and report["repaired"] == []


def test_repair_is_refused_while_the_daemon_runs(daemon):
    _deliver(daemon, 4)
    _damage(daemon)
    before = _rows(daemon)
    result = _verify(daemon, "--repair")
    assert result.returncode == 2
    assert f"the daemon (pid {daemon.proc.pid}) is running" in result.stderr
    assert "--repair needs it stopped" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert _rows(daemon) == before
    assert any((daemon.archive / ".gmid-tmp").iterdir())
    assert daemon.status().pid == daemon.proc.pid  # and the daemon did not notice


def test_repair_fixes_what_is_safe_and_reports_the_rest(daemon):
    _deliver(daemon, 4)
    expected = _damage(daemon)
    assert daemon.stop() == 0
    code, report = _verify_json(daemon, "--repair")
    assert code == 1  # the missing and the changed file, the symlink, notes.txt remain
    repaired = {(r["kind"], r["path"], r["action"]) for r in report["repaired"]}
    assert repaired == {
        ("temp", expected["temp"], "removed"),
        ("moved", expected["moved"], "moved"),
        ("unknown", expected["unknown"], "adopted"),
    }
    assert not any((daemon.archive / ".gmid-tmp").iterdir())
    rows = _rows(daemon)
    assert rows[expected["unknown"]] == (
        hashlib.sha256(make_pdf("a stray invoice")).hexdigest(),
        "archive",
    )
    assert expected["moved"] in rows
    assert expected["missing"] in rows  # never dropped
    assert expected["changed"] in rows

    result = _verify(daemon)
    assert result.returncode == 1
    assert "4 problems (1 changed, 1 missing, 1 symlink, 1 unknown)" in result.stdout
    assert "daemon stopped" in result.stdout
    code, again = _verify_json(daemon, "--repair")
    assert code == 1 and again["repaired"] == []
    remaining = {(p["kind"], p["path"]) for p in again["problems"]}
    assert remaining == {
        ("changed", expected["changed"]),
        ("missing", expected["missing"]),
        ("symlink", expected["symlink"]),
        ("unknown", "notes.txt"),
    }
    # The lock is released: the daemon starts, and lists the adopted document.
    daemon.start()
    adopted = daemon.documents(source="archive").documents
    assert [(d.path, d.company, d.media_type) for d in adopted] == [
        (expected["unknown"], "Stadtwerke", "application/pdf")
    ]


def test_a_file_being_filed_is_not_unknown(daemon):
    """The daemon links the final name before it commits the row: verify must not object."""
    _deliver(daemon, 1)
    # The state between link and commit, as archive.Archive.store leaves it for a moment.
    final = daemon.archive / "Stadtwerke" / "in flight.pdf"
    final.write_bytes(make_pdf("being filed"))
    os.link(final, daemon.archive / ".gmid-tmp" / "fedcba9876543210fedcba98.tmp")
    code, report = _verify_json(daemon)
    assert code == 0, report["problems"]
    assert report["in_flight"] == ["Stadtwerke/in flight.pdf"]


def test_verify_during_deliveries_sees_no_problem(daemon):
    stop = threading.Event()
    answers: list[int] = []

    def deliver():
        for i in range(5000):
            if stop.is_set():
                return
            pdf = make_pdf(f"concurrent {i}")
            raw = invoice_mail(sender=SENDER, subject=f"C {i}", pdfs=[(f"C{i}.pdf", pdf)])
            answers.append(daemon.send(raw, sender=SENDER)[0])

    sender = threading.Thread(target=deliver)
    sender.start()
    try:
        for _ in range(4):
            code, report = _verify_json(daemon)
            assert code == 0, report["problems"]
    finally:
        stop.set()
        sender.join(60)
    assert answers and set(answers) == {250}
    code, report = _verify_json(daemon)
    assert code == 0 and report["checked"]["rows"] == report["checked"]["files"] == len(answers)


def test_a_stray_file_removed_again_does_not_block_later_deliveries(daemon):
    """A user's file at the name the next document gets, reported, then deleted by the user."""
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()  # the config's time zone
    stray = daemon.archive / "Stadtwerke" / f"{today:%Y}" / f"{today:%Y-%m-%d} Stadtwerke.pdf"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(make_pdf("the user's own copy"))
    _deliver(daemon, 1, "before")  # goes around the stray file, to "... Stadtwerke (2).pdf"
    code, report = _verify_json(daemon)
    assert code == 1 and [p["path"] for p in report["problems"]] == [
        stray.relative_to(daemon.archive).as_posix()
    ]
    stray.unlink()
    _deliver(daemon, 2, "after")  # was 451 for every later mail of that name, until a restart
    code, report = _verify_json(daemon)
    assert code == 0, report["problems"]
    assert report["checked"]["rows"] == report["checked"]["files"] == 3


def test_sending_a_deleted_document_again_restores_it(daemon):
    pdf = make_pdf("deleted by hand, sent again")
    raw = invoice_mail(sender=SENDER, subject="R again", pdfs=[("R.pdf", pdf)])
    _deliver(daemon, 2, "kept")
    assert daemon.send(raw, sender=SENDER)[0] == 250
    [path] = [p for p in daemon.archived_files() if p.read_bytes() == pdf]
    rel = path.relative_to(daemon.archive).as_posix()
    path.unlink()
    result = _verify(daemon)
    assert result.returncode == 1 and f"MISSING  {rel}\n" in result.stdout
    assert "restore it from a backup, or send the same document again" in result.stdout

    code, text = daemon.send(raw, sender=SENDER)  # the same mail once more
    assert (code, text) == (250, "2.0.0 OK: already archived")  # filed before: no new row
    assert path.read_bytes() == pdf
    assert f"restored {rel} ({len(pdf)} bytes) from smtp" in daemon.log_text()
    assert not any((daemon.archive / ".gmid-tmp").iterdir())
    code, report = _verify_json(daemon)
    assert code == 0, report["problems"]
    assert report["checked"]["rows"] == report["checked"]["files"] == 3


def test_without_an_index_verify_says_so(daemon_dir):
    result = _verify(daemon_dir)
    assert result.returncode == 2
    assert "no index at" in result.stderr and "Traceback" not in result.stderr


def test_symlinked_temp_folders_are_reported_and_not_followed(daemon, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.tmp").write_bytes(b"keep me")
    for folder in (daemon.archive / ".gmid-tmp", daemon.state / "quarantine" / ".gmid-tmp"):
        folder.rmdir()
        folder.symlink_to(victim)
    code, report = _verify_json(daemon)
    assert code == 1
    links = {p["path"] for p in report["problems"] if p["kind"] == "symlink"}
    assert links == {".gmid-tmp", str(daemon.state / "quarantine" / ".gmid-tmp")}
    assert os.listdir(victim) == ["precious.tmp"]
