"""Where the folders MedView ships live: the models (``models``) and the demo studies and
reference data (``resources``). In a checkout (and an editable install) they sit beside the
source; a wheel carries them inside the package, as ``medview/_shipped/<name>`` (setup.py)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the medview package folder


def shipped(name: str) -> Path:
    """The shipped folder ``name`` ("models" or "resources")."""
    inside = PACKAGE / "_shipped" / name
    return inside if inside.is_dir() else PACKAGE.parent / name


def demo_study() -> Path:
    """The bundled demo chest CT (`make run` and ``medview --demo`` open it)."""
    return shipped("resources") / "demo" / "lung2"
