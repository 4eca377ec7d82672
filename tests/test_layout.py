"""The layout keeps its rules: what modules share is public, and the import contracts hold.

ruff's SLF001 and PLC2701 see `obj._name` and private names imported from other packages;
what they let pass, a private name imported from a module of the same package, is checked
here. The import-linter contracts in pyproject.toml (the TUI only through gmid.control, the
layers inside gmid, connectors without gmid's internals) are checked here too, so the test
command (scripts/test) fails on a broken one.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("gmid", "tui", "connectors")


def _sources() -> list[Path]:
    files = [f for package in PACKAGES for f in sorted((ROOT / package).rglob("*.py"))]
    return [*files, *sorted((ROOT / "bench").glob("*.py"))]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_imports(path: Path) -> list[str]:
    """The private names this file imports from other modules of ours, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            ours = node.level > 0 or module.split(".")[0] in PACKAGES
            if not ours:
                continue
            if any(_private(part) for part in module.split(".")):
                found.append(f"{node.lineno}: from {module} import ...")
            found += [
                f"{node.lineno}: from {module} import {alias.name}"
                for alias in node.names
                if _private(alias.name)
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in PACKAGES
                and any(_private(part) for part in alias.name.split("."))
            ]
    return found


def test_no_module_imports_another_modules_private_name():
    offences = [
        f"{path.relative_to(ROOT)}:{where}"
        for path in _sources()
        for where in _private_imports(path)
    ]
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_the_private_import_check_sees_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from gmid.cli.common import _hidden\nfrom gmid.errors import GmidError\n")
    assert _private_imports(sample) == ["1: from gmid.cli.common import _hidden"]


def test_the_import_contracts_hold():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is missing: scripts/setup test installs it"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_folder_of_the_code_is_a_package(package):
    folders = [
        d
        for d in (ROOT / package).rglob("*")
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
    ]
    assert all((d / "__init__.py").exists() for d in folders)
