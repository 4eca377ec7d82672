"""YAML syntax errors told in plain words, whatever the mistake."""

from __future__ import annotations

import random
import re

import pytest
import yaml

from gmid import yamlsyntax
from tests.conftest import ROOT


def test_any_broken_config_gets_a_line_and_plain_words():
    """Hundreds of one-character slips in the example config: each error names a line of the
    file, shows it with a caret when the line exists, and never fails itself."""
    text = (ROOT / "config.example.yaml").read_text()
    lines = text.splitlines()
    # where a slip matters: the start of a line that is not a comment
    spots = [m.start() for m in re.finditer(r"^(?![ ]*#)[ ]*\S", text, re.M)]
    rng = random.Random(13)
    broken = 0
    for _ in range(400):
        at = rng.choice(spots) + rng.randrange(12)
        slip = rng.choice(["[", "{", '"', "'", "\t", ": ", "- ", "*x", "&", "\\", "%", "@"])
        mutated = text[:at] + slip + text[at + rng.randrange(2) :]
        try:
            yaml.compose(mutated, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            broken += 1
            found = yamlsyntax.describe(e, mutated)
            assert found.message.startswith("syntax error: ")
            jargon = ("<block", "<stream", "scanning", "node content", "while parsing", "token")
            assert not any(word in found.message for word in jargon), found.message
            assert found.line is not None and 1 <= found.line <= len(lines) + 2
            if found.excerpt:
                number, _, _ = found.excerpt.splitlines()[0].partition(" | ")
                assert int(number) == found.line
                assert found.excerpt.splitlines()[1].endswith("^")
    assert broken > 100


@pytest.mark.parametrize("key", ["password", "totp_secret", "api_token", "Passwort", "authkey"])
def test_the_excerpt_hides_a_secret_value(key):
    text = f"a:\n  {key}: 'hunter2\n"
    with pytest.raises(yaml.YAMLError) as info:
        yaml.compose(text, Loader=yaml.SafeLoader)
    found = yamlsyntax.describe(info.value, text)
    assert "hunter2" not in found.excerpt and f"{key}: ***" in found.excerpt
