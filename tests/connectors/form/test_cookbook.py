"""The cookbook of docs/form-connector.md cannot rot: every description in it is loaded as a
config, with the real reader, and its table of surveyed portals agrees with its examples."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from connectors.form.spec import read_spec
from gmid.config.load import load_config
from tests.conftest import ROOT, make_daemon_dir

DOC = ROOT / "docs" / "form-connector.md"
_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)


def blocks(section: str | None = None) -> list[str]:
    """The yaml blocks of the document, or of one `## ` section of it."""
    text = DOC.read_text()
    if section is not None:
        start = text.index(f"\n## {section}")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else None]
    return _BLOCK.findall(text)


def cookbook_table() -> dict[str, str]:
    """The table of surveyed portals: portal -> its "described?" cell."""
    text = DOC.read_text()
    text = text[text.index("\n## Cookbook") :]
    rows = re.findall(r"^\| (\w+) \|[^|\n]*\|[^|\n]*\| ([^|\n]*) \|", text, re.M)
    return {name: described for name, described in rows if name != "portal"}


COOKBOOK = blocks("Cookbook: the shapes of real portals")


def test_the_cookbook_has_its_descriptions():
    assert len(COOKBOOK) >= 9


@pytest.mark.parametrize("block", COOKBOOK, ids=lambda b: re.findall(r"name: (\S+)", b)[0])
def test_each_cookbook_description_loads_as_a_config(block):
    d = make_daemon_dir(extra=block)
    try:
        portals = load_config(d.config).portals  # a ConfigError names file, line and option
    finally:
        shutil.rmtree(d.dir, ignore_errors=True)
    names = re.findall(r"^  - name: (\S+)", block, re.M)
    assert [p.name for p in portals] == names
    for options in yaml.safe_load(block)["portals"]:
        spec, problems = read_spec(options["form"])
        assert problems == [] and spec is not None


def test_the_table_counts_what_the_examples_show():
    table = cookbook_table()
    described = sorted(name for name, cell in table.items() if cell.startswith("yes"))
    assert len(table) == 25
    assert len(described) >= 15
    shown = {name for block in COOKBOOK for name in re.findall(r"^  - name: (\S+)", block, re.M)}
    # each portal said to be describable has its description, under its own name
    assert {"abeille" if n == "abeilleassurances" else n for n in described} <= shown
    assert f"**{len(described)} of the 25 can be described without Python**" in DOC.read_text()


def _descriptions(data) -> list[dict]:
    """The whole descriptions in a parsed block: bare, under `form:`, or in `portals:`."""
    if not isinstance(data, dict):
        return []
    if "start" in data and "documents" in data:
        return [data]
    if isinstance(data.get("form"), dict):
        return _descriptions(data["form"])
    found = []
    for portal in data.get("portals") or []:
        found += _descriptions(portal)
    return found


def test_the_whole_descriptions_elsewhere_in_the_reference_are_valid():
    checked = 0
    for block in blocks():
        if block in COOKBOOK or "..." in block:
            continue  # the cookbook's are loaded above; an elision marks a fragment
        try:
            data = yaml.safe_load(block)
        except yaml.YAMLError:
            continue  # a fragment of a larger description (indented options)
        for options in _descriptions(data):
            assert read_spec(options)[1] == [], block
            checked += 1
    assert checked >= 2
