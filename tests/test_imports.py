"""Layering rules: no Qt outside medview/ui, no heavy imports when importing medview."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import medview

BLOCK_QT = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'):
            raise ImportError('Qt is blocked outside medview.ui: ' + name)
sys.meta_path.insert(0, Block())
"""


def _non_ui_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(medview.__path__, "medview."):
        if info.name.startswith("medview.ui") or info.name == "medview.app":
            continue
        names.append(info.name)
    return names


def test_every_non_ui_module_imports_without_qt() -> None:
    modules = _non_ui_modules()
    assert "medview.io.loader" in modules and "medview.cli" in modules
    code = (
        BLOCK_QT
        + "import importlib\n"
        + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_qt_block_really_blocks() -> None:
    r = subprocess.run(
        [sys.executable, "-c", BLOCK_QT + "import PySide6"], capture_output=True, text=True
    )
    assert r.returncode != 0 and "blocked" in r.stderr


def test_importing_medview_stays_light() -> None:
    code = (
        "import sys, medview, medview.io.scan, medview.io.loader, medview.io.database, "
        "medview.cli\n"
        "heavy = [m for m in ('torch', 'monai', 'SimpleITK', 'highdicom', 'PySide6') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == ""
