"""The `deliver:` section: destinations, their filters, and mistakes named by file and line."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from gmid.config.load import load_config
from gmid.config.secretref import SecretRef
from gmid.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(f"state_dir: {tmp_path}/state\n" + textwrap.dedent(text))
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [(p.line, p.option, p.message) for p in info.value.problems]


def test_destinations_with_their_filters_and_options(tmp_path: Path):
    config = load(
        tmp_path,
        """
        deliver:
          - name: nextcloud
            type: webdav
            url: https://cloud.example/remote.php/dav/files/me/Rechnungen
            username: me
            password: {env: NEXTCLOUD_PASSWORD}
            file_name: "{company}/{date:%Y}/{name}"
            when: {companies: [Telekom, Stadtwerke], kinds: invoice}
            concurrency: 4
            retry: 30s
          - name: consume
            type: folder
            dir: ~/paperless/consume
            when: {sources: [portal]}
          - name: books
            type: command
            command: ~/bin/book-it
            timeout: 10m
        """,
    )
    cloud, consume, books = config.deliver
    assert (cloud.name, cloud.type, cloud.concurrency, cloud.retry) == (
        "nextcloud",
        "webdav",
        4,
        timedelta(seconds=30),
    )
    assert cloud.options.url.endswith("/Rechnungen/")
    assert cloud.options.password == SecretRef("env", "NEXTCLOUD_PASSWORD")
    assert cloud.when.matches({"company": "telekom", "kind": "invoice"})
    assert not cloud.when.matches({"company": "Telekom", "kind": "receipt"})
    assert not cloud.when.matches({"company": "Hosting GmbH", "kind": "invoice"})
    assert consume.options.file_name == "{name}"
    assert consume.when.matches({"source": "portal", "source_name": "telekom"})
    assert not consume.when.matches({"source": "smtp", "source_name": "smtp"})
    assert books.timeout == timedelta(minutes=10)
    assert books.when.matches({"company": "anyone"})


def test_mistakes_are_named_with_their_line_and_option(tmp_path: Path):
    found = problems(
        tmp_path,
        """
        deliver:
          - name: cloud
            type: webdav
            url: http://cloud.example/dav/
            colour: blue
          - name: cloud
            type: folder
            file_name: "{company}/{nummer}{ext}"
          - name: mail
            type: carrier-pigeon
          - name: books
            type: command
            concurrency: 0
            when: {company: [x]}
        """,
    )
    assert (6, "deliver[0].url", "plain http to another machine") in [
        (line, option, message[:29]) for line, option, message in found
    ]
    assert (7, "deliver[0].colour") in [(line, option) for line, option, _ in found]
    assert (8, "deliver[1].name") in [(line, option) for line, option, _ in found]  # twice
    assert any(o == "deliver[1].dir" and "needed" in m for _, o, m in found)
    template = [m for _, o, m in found if o == "deliver[1].file_name"]
    assert "{nummer}" in template[0] and "{number}" in template[0]
    assert any(o == "deliver[2].type" and "carrier-pigeon" in m for _, o, m in found)
    assert any(o == "deliver[3].command" for _, o, _ in found)
    assert any(o == "deliver[3].concurrency" for _, o, _ in found)
    assert any(o == "deliver[3].when.company" and "companies" in m for _, o, m in found)


def test_the_example_config_documents_the_deliver_section_and_its_examples_load(tmp_path: Path):
    text = (ROOT / "config.example.yaml").read_text()
    start = text.index("\n# deliver:")
    block = []
    for line in text[start + 1 :].splitlines():
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    section = yaml.safe_load("\n".join(block))
    assert {d["type"] for d in section["deliver"]} >= {"folder", "command", "webdav"}
    config = load(tmp_path, "\n".join(block))
    assert [d.name for d in config.deliver] == [d["name"] for d in section["deliver"]]


def test_no_secret_in_the_config_s_repr(tmp_path: Path):
    config = load(
        tmp_path,
        """
        deliver:
          - name: cloud
            type: webdav
            url: https://cloud.example/dav/
            username: me
            password: hunter2-plain
        """,
    )
    assert "hunter2-plain" not in repr(config.deliver)
