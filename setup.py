"""The wheel carries what MedView ships beside its source: the models (``models/``) and the
demo studies and reference data (``resources/``), as ``medview/_shipped/<name>``, so that an
installed MedView (``pip install medview-*.whl``, ``pipx``) has its models and ``medview
--demo`` works. Everything else is in pyproject.toml; an editable install reads the folders
where they are (medview/core/shipped.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("models", "resources")


class BuildWithShipped(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            shutil.copytree(
                ROOT / name,
                Path(self.build_lib) / "medview" / "_shipped" / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "evaluation"),
                dirs_exist_ok=True,
            )


setup(cmdclass={"build_py": BuildWithShipped})
