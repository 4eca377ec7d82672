"""Secret references: each kind resolves, failures name the reference and never the secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from yaml.nodes import Node

from gmid.config.reader import Reader
from gmid.config.secretref import SecretRef, parse_secret
from gmid.errors import Problem, SecretError

SECRET = "s3cr3t-Pa55word"


def resolve_error(ref: SecretRef, **kwargs: float) -> str:
    """Resolve a reference that must fail; return the message, checked to be free of SECRET."""
    with pytest.raises(SecretError) as info:
        ref.resolve(**kwargs)
    message = str(info.value)
    assert SECRET not in message
    return message


# --- resolving ----------------------------------------------------------------------------------


def test_command_output_without_its_trailing_newline() -> None:
    assert SecretRef("command", f"printf '{SECRET}\\n'").resolve() == SECRET
    assert SecretRef("command", "printf ' spaced  '").resolve() == " spaced  "


def test_failing_command_shows_stderr_but_not_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMID_TEST_SECRET", SECRET)
    command = 'printf "%s\\n" "$GMID_TEST_SECRET"; echo "pass: store locked" >&2; exit 1'
    message = resolve_error(SecretRef("command", command))
    assert message == f"command `{command}` exited 1: pass: store locked"


def test_command_that_does_not_exist() -> None:
    message = resolve_error(SecretRef("command", "gmid-no-such-command-xyz"))
    assert message.startswith("command `gmid-no-such-command-xyz` exited 127: ")
    assert "not found" in message


def test_command_that_hangs_times_out_with_its_children() -> None:
    started = time.monotonic()
    message = resolve_error(SecretRef("command", "sleep 10; echo late"), timeout=0.3)
    assert message == "command `sleep 10; echo late` did not finish within 0.3 s"
    assert time.monotonic() - started < 5


def test_command_printing_nothing_is_an_error() -> None:
    assert resolve_error(SecretRef("command", "true")) == "command `true` is empty"


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMID_TEST_SECRET", SECRET)
    assert SecretRef("env", "GMID_TEST_SECRET").resolve() == SECRET
    monkeypatch.delenv("GMID_TEST_SECRET")
    assert resolve_error(SecretRef("env", "GMID_TEST_SECRET")) == "env GMID_TEST_SECRET is not set"


def test_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n", encoding="utf-8")
    assert SecretRef("file", str(path)).resolve() == SECRET
    message = resolve_error(SecretRef("file", str(tmp_path / "missing")))
    assert message == f"file {tmp_path}/missing: cannot read: No such file or directory"


def test_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop-password").write_text(SECRET, encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert SecretRef("credential", "shop-password").resolve() == SECRET
    message = resolve_error(SecretRef("credential", "other"))
    assert message == f"credential other: cannot read {tmp_path}/other: No such file or directory"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    message = resolve_error(SecretRef("credential", "shop-password"))
    assert "$CREDENTIALS_DIRECTORY is not set" in message
    assert "LoadCredential=" in message


def test_plain() -> None:
    assert SecretRef("plain", SECRET).resolve() == SECRET


def test_repr_and_str_never_show_a_plain_secret() -> None:
    ref = SecretRef("plain", SECRET)
    assert repr(ref) == "SecretRef(plain, ***)"
    for shown in (repr(ref), str(ref), f"{ref}", repr([ref]), repr({"password": ref})):
        assert SECRET not in shown
    assert repr(SecretRef("env", "GMID_X")) == "SecretRef(env, 'GMID_X')"
    assert str(SecretRef("command", "pass show x")) == "command `pass show x`"


# --- parsing from YAML --------------------------------------------------------------------------


def parse(tmp_path: Path, yaml_value: str) -> tuple[SecretRef | None, list[Problem], list[str]]:
    """Parse `password: <yaml_value>` from a real file, as a config section would."""
    path = tmp_path / "config.yaml"
    path.write_text(f"portal:\n  password: {yaml_value}\n", encoding="utf-8")
    problems: list[Problem] = []
    warnings: list[str] = []
    reader = Reader(path, problems, warnings)
    root = reader.load()
    portal = reader.mapping(root, "", ("portal",))["portal"]
    node: Node = reader.mapping(portal, "portal", ("password",))["password"]
    return parse_secret(reader, node, "portal.password"), problems, warnings


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ('{command: "pass show shop"}', SecretRef("command", "pass show shop")),
        ("{env: GMID_SHOP}", SecretRef("env", "GMID_SHOP")),
        ("{credential: shop-password}", SecretRef("credential", "shop-password")),
    ],
)
def test_parse_references(tmp_path: Path, yaml_value: str, expected: SecretRef) -> None:
    assert parse(tmp_path, yaml_value) == (expected, [], [])


def test_parse_file_is_relative_to_the_config(tmp_path: Path) -> None:
    ref, problems, _ = parse(tmp_path, "{file: secrets/shop.pw}")
    assert (ref, problems) == (SecretRef("file", str(tmp_path / "secrets/shop.pw")), [])


def test_plain_string_is_accepted_with_a_warning(tmp_path: Path) -> None:
    ref, problems, warnings = parse(tmp_path, SECRET)
    assert (ref, problems) == (SecretRef("plain", SECRET), [])
    [warning] = warnings
    assert warning.startswith(f"{tmp_path}/config.yaml:2: portal.password: plain-text secret")
    assert "{env: ...}" in warning
    assert SECRET not in warning


@pytest.mark.parametrize(
    ("yaml_value", "message"),
    [
        ("{}", "give exactly one of {command: ...}"),
        ("{env: A, file: b}", "(got env, file)"),
        ("{comand: pass show x}", "unknown option; did you mean 'command'?"),
        ("{env: 1-BAD}", "'1-BAD' is not a valid environment variable name"),
        ("{credential: ../etc/shadow}", "is not a credential name"),
        ("{env: }", "expected a non-empty value"),
        ("[a, b]", "expected a secret: {command: ...}"),
    ],
)
def test_bad_references_are_problems(tmp_path: Path, yaml_value: str, message: str) -> None:
    ref, problems, _ = parse(tmp_path, yaml_value)
    assert ref is None
    [problem] = problems
    assert (problem.line, problem.file) == (2, str(tmp_path / "config.yaml"))
    assert problem.option.startswith("portal.password")
    assert message in problem.message
