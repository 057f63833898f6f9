"""The floors check themselves: `lint-imports` (contracts in pyproject.toml) passes on the
package, and fails, naming the import, when a lower floor reaches up (a copy of the package
with one deliberately wrong import)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(exe), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_floors_hold() -> None:
    r = _lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_a_wrong_import_is_caught(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "medview", tmp_path / "medview", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    # the geometry core reaching up into the window, and torch outside the engine
    with open(tmp_path / "medview" / "core" / "geometry.py", "a") as f:
        f.write("\nfrom medview.ui import main_window  # noqa\n")
    with open(tmp_path / "medview" / "io" / "loader.py", "a") as f:
        f.write("\nimport torch  # noqa\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "medview.core.geometry -> medview.ui.main_window" in r.stdout
    assert "medview.io is not allowed to import torch" in r.stdout
