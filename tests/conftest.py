"""Shared fixtures: isolated data folder, demo studies, DICOM factories, external tools."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path
from typing import NoReturn

import numpy as np
import pydicom
import pytest

# UI tests render offscreen however pytest is started (make test also sets this)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "resources" / "demo"
DEMO_CT = DEMO / "lung2"
DEMO_MR = DEMO / "colin27"
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_data_dir() -> Path:
    import data_store  # the pydicom-data package

    return Path(data_store.__file__).parent / "data"


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it on a laptop, fail in CI
    (``.ci/run`` sets ``MEDVIEW_REQUIRE_TOOLS=1`` after installing the tools)."""
    # tools installed with pip (dcmqi) sit beside the interpreter, on PATH or not
    path = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    if path:
        return path
    missing_outside_ci(f"{name} not installed")


REALDATA = REPO.parent / "shared" / "realdata"


def extract_realdata(names: tuple[str, ...], out: Path) -> Path:
    """Unpack real scanner collections from ../shared/realdata into ``out`` (skip on a
    laptop without them, fail in CI)."""
    import tarfile

    for name in names:
        packed = REALDATA / f"{name}.tar.xz"
        if not packed.is_file():
            missing_outside_ci(f"{packed} (real scanner data beside the project)")
        with tarfile.open(packed) as tar:
            tar.extractall(out, filter="data")
    return out


def missing_outside_ci(what: str) -> NoReturn:
    """Something a test needs is absent: skip on a laptop, fail in CI (``.ci/run`` sets
    ``MEDVIEW_REQUIRE_TOOLS=1`` after installing tools and fetching data)."""
    if os.environ.get("MEDVIEW_REQUIRE_TOOLS") == "1" or os.environ.get("CI"):
        pytest.fail(f"required in CI: {what}")
    pytest.skip(what)


@pytest.fixture(autouse=True)
def medview_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("medview-home")
    monkeypatch.setenv("MEDVIEW_HOME", str(home))
    return home


def _service_threads() -> set[threading.Thread]:
    """Threads of MedView's process-wide warm decoder pool: a service kept for the app's life,
    not a leak (shut down at exit)."""
    from medview.io import isolation

    pool = isolation._default._pool if isolation._default is not None else None
    thread = getattr(pool, "_executor_manager_thread", None) if pool is not None else None
    return {thread} if thread is not None else set()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    allowed = _service_threads()
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before
        and t.is_alive()
        and not t.daemon
        and t not in allowed
        and "QueueFeederThread" not in t.name
    ]
    for t in leaked:
        t.join(timeout=5)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


def ct_volume(n: int = 8, rows: int = 32, cols: int = 32, seed: int = 0) -> np.ndarray:
    """A small synthetic CT in HU: a bright sphere in soft tissue with noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:n, 0:rows, 0:cols]
    r = np.sqrt(((z - n / 2) * 3) ** 2 + (y - rows / 2) ** 2 + (x - cols / 2) ** 2)
    vol = np.where(r < min(rows, cols) / 3, 300, 40) + rng.normal(0, 10, (n, rows, cols))
    vol[:, :, :2] = -1000
    return vol.astype(np.int16)


def write_ct(
    folder: Path,
    n: int = 8,
    rows: int = 32,
    cols: int = 32,
    *,
    spacing=(0.7, 0.7, 2.5),
    origin=(-10.0, -20.0, 30.0),
    direction=None,
    seed: str = "test",
    series_number: int = 1,
    transfer_syntax: str = "explicit",
    patient_name: str = "Test^Patient",
    patient_id: str = "TEST01",
    values: np.ndarray | None = None,
) -> list[Path]:
    from medview.core.geometry import Geometry
    from medview.export.series_writer import SeriesInfo, write_series

    vals = ct_volume(n, rows, cols) if values is None else values
    g = Geometry(
        shape=vals.shape,
        origin=origin,
        spacing=spacing,
        direction=np.eye(3) if direction is None else direction,
    )
    info = SeriesInfo(
        seed=seed,
        modality="CT",
        patient_name=patient_name,
        patient_id=patient_id,
        series_description="synthetic",
        body_part="CHEST",
        series_number=series_number,
    )
    return [
        Path(p)
        for p in write_series(
            vals, g, folder, info, transfer_syntax=transfer_syntax, rescale_intercept=-1024
        )
    ]


def edit(path: Path, **values) -> None:
    """Rewrite DICOM attributes of a generated test file (never used on source data)."""
    ds = pydicom.dcmread(path)
    for k, v in values.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    ds.save_as(path)


@pytest.fixture
def ct_series(tmp_path: Path) -> list[Path]:
    return write_ct(tmp_path / "ct")
