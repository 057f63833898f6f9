"""The configured linters pass (ruff, mypy over all of medview) and modules stay small."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_ruff_clean() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "medview", "tests", "resources", "models"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_modules_stay_small() -> None:
    """No module over 500 lines, and the main window stays composition (under 450): a job
    that grows goes into a module of its own (docs/ARCHITECTURE.md says where)."""
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in (REPO / "medview").rglob("*.py")
    }
    assert sizes["medview/ui/main_window.py"] < 450
    assert {p: n for p, n in sizes.items() if n > 500} == {}
