"""Imports point one way: monitoring -> chat -> compliance -> clinics -> neonpro.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter reads
every import of the five layers and the simulated provider, those inside
functions included. The second
test breaks a copy of the tree on purpose, so a contract that stopped checking
anything would be noticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("neonpro", "clinics", "compliance", "chat", "monitoring", "simulated_provider")

LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(no_cache=True))")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    # A process of its own: import-linter finds the packages through the import
    # system, which in this process already holds the real ones.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=cwd, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=240, check=False)


def _copy_tree(target: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "data", "*.mo"))


def test_it_keeps_every_layer_contract():
    result = _lint(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "upward_import"), [
    ("compliance/services.py", "from chat.pipeline import sessions as _chat_sessions"),
    ("clinics/models.py", "from compliance import audit as _audit"),
    ("neonpro/errors.py", "from clinics import people as _people"),
    ("chat/errors.py", "from monitoring import health as _health"),
    ("chat/api.py", "import simulated_provider as _simulator"),
])
def test_it_fails_on_an_import_that_points_back_up(tmp_path, module, upward_import):
    _copy_tree(tmp_path)
    path = tmp_path / module
    # Deferred into a function, as import loops used to be dodged: still an arrow.
    path.write_text(path.read_text() + f"\n\ndef _upward():\n    {upward_import}\n")

    result = _lint(tmp_path)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
