"""The README's config example loads, so what a new user copies from it works."""

from __future__ import annotations

import re

from gmid.config.load import load_config
from tests.conftest import ROOT


def test_every_yaml_block_of_the_readme_is_a_valid_config(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme-{i}.yaml"
        path.write_text(f"state_dir: {tmp_path}/state\n{block}")
        config = load_config(path)  # raises ConfigError, naming the line, if it drifted
        assert not config.warnings
