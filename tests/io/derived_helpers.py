"""Shared pieces of the derived-object tests: the demo CT with the shipped chest model's
segments, other systems' objects from ../shared, Dice."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import REPO, missing_outside_ci

OTHER_SYSTEMS = REPO.parent / "shared" / "data" / "other-systems.tar.xz"


def other_systems(out: Path) -> Path:
    """``../shared/data/other-systems.tar.xz`` unpacked into ``out`` (skip on a laptop
    without it, fail in CI)."""
    if not OTHER_SYSTEMS.is_file():
        missing_outside_ci(f"{OTHER_SYSTEMS} (other systems' objects beside the project)")
    with tarfile.open(OTHER_SYSTEMS) as tar:
        tar.extractall(out, filter="data")
    return out / "other-systems"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def save(ds: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def open_object(*folders: Path, kind: str) -> tuple[Any, Any, Any, Any]:
    """Scan ``folders``; the one derived object of ``kind``, its series, the loaded volume and
    what opening it reads."""
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.session.derived import read_derived, series_for

    r = scan([str(f) for f in folders], workers=1)
    objs = [o for o in r.derived if o.kind == kind]
    assert len(objs) == 1, [o.title for o in r.derived]
    series = series_for(objs[0], r.series)
    volume = load_series(series)
    return objs[0], series, volume, read_derived(objs[0], series, volume)
