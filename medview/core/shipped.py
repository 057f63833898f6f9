"""Where the folders MedView ships live: the models (``models``) and the demo studies and
reference data (``resources``). In a checkout (and an editable install) they sit beside the
source; a wheel carries them inside the package, as ``medview/_shipped/<name>`` (setup.py), and so
does the desktop bundle built from it (packaging/)."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the medview package folder


def shipped(name: str) -> Path:
    """The shipped folder ``name`` ("models" or "resources")."""
    inside = PACKAGE / "_shipped" / name
    return inside if inside.is_dir() else PACKAGE.parent / name


def demo_study() -> Path:
    """The bundled demo chest CT (`make run` and ``medview --demo`` open it)."""
    return shipped("resources") / "demo" / "lung2"


def frozen() -> bool:
    """Whether this is the desktop bundle (PyInstaller), not a Python installation."""
    return bool(getattr(sys, "frozen", False))


def command() -> list[str]:
    """The start of a command line that runs this installation's ``medview`` in another
    process: the bundle's own program, else this Python with ``-m medview.cli``."""
    return [sys.executable] if frozen() else [sys.executable, "-m", "medview.cli"]
