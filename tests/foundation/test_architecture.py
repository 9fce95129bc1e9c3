"""The import-linter contracts in pyproject.toml hold, and they do fail when code crosses a layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fer_site", "emotions", "adaptation", "training")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    """Run import-linter in ``cwd`` (only ``contracts``, by id, when given)."""
    selected = [argument for contract in contracts for argument in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *selected],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """Return a copy of the project's Python packages and its contracts, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.keras", "*.tflite", "*.png", "*.svg"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def append_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_it_keeps_every_contract_of_the_project(project_copy):
    result = lint_imports(project_copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "violation", "contract"),
    [
        ("emotions/pipeline.py", "import adaptation.services", "layers"),
        ("emotions/services.py", "from training import models", "layers"),
        ("fer_site/api/errors.py", "from emotions import decoder", "layers"),
        ("adaptation/engine.py", "import fer_site.live.consumers", "layers"),
        ("emotions/mood.py", "from django.conf import settings", "ml-without-django"),
        ("training/trainer.py", "import django.db", "ml-without-django"),
    ],
)
def test_it_fails_when_code_imports_across_a_layer(project_copy, module, violation, contract):
    assert lint_imports(project_copy, contract).returncode == 0
    append_line(project_copy / module, violation)

    result = lint_imports(project_copy, contract)

    assert result.returncode == 1, result.stdout
    assert "1 broken" in result.stdout
