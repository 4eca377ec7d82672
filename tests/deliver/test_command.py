"""The command destination: fields on stdin, the file in $GMID_FILE, exit 0 is success."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gmid.deliver.base import DeliveryFailed
from gmid.deliver.command import CommandDestination, Options
from tests.deliver.support import delivery, soon


def test_the_command_gets_the_fields_and_the_file(tmp_path: Path):
    out = tmp_path / "got"
    command = f'cat > {out}.json && cp "$GMID_FILE" {out}.pdf && echo "booked as B-17"'
    item = delivery(tmp_path / "archive")
    reference = CommandDestination("books", Options(command)).deliver(item, soon())
    assert reference == "booked as B-17"
    fields = json.loads((tmp_path / "got.json").read_text())
    assert fields["company"] == "Telekom"
    assert fields["number"] == "4711"
    assert fields["name"] == "2026-03-04 Telekom 4711.pdf"
    assert fields["key"] == item.key
    assert (tmp_path / "got.pdf").read_bytes() == item.path.read_bytes()


def test_a_failure_gives_the_last_line_of_stderr_and_is_retried(tmp_path: Path):
    command = "echo starting >&2; echo 'server said: quota exceeded' >&2; exit 3"
    with pytest.raises(DeliveryFailed) as failed:
        CommandDestination("c", Options(command)).deliver(delivery(tmp_path), soon())
    assert str(failed.value) == "server said: quota exceeded"
    assert not failed.value.permanent


def test_exit_65_refuses_the_document_for_good(tmp_path: Path):
    with pytest.raises(DeliveryFailed) as failed:
        CommandDestination("c", Options("exit 65")).deliver(delivery(tmp_path), soon())
    assert failed.value.permanent
    assert str(failed.value) == "exited 65"


def test_a_command_past_its_deadline_is_killed_with_its_children(tmp_path: Path):
    marker = tmp_path / "late"
    command = f"(sleep 3; touch {marker}) & sleep 30"
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="did not finish in time"):
        CommandDestination("c", Options(command)).deliver(delivery(tmp_path), soon(0.5))
    assert time.monotonic() - started < 5
    time.sleep(3.5)
    assert not marker.exists()


def test_a_flood_on_stderr_is_read_bounded_and_the_reason_is_short(tmp_path: Path):
    flood = "head -c 20000000 /dev/zero | tr '\\0' 'x' >&2"
    command = f"{flood}; echo >&2; echo final words >&2; exit 1"
    with pytest.raises(DeliveryFailed) as failed:
        CommandDestination("c", Options(command)).deliver(delivery(tmp_path), soon())
    assert str(failed.value) == "final words"
