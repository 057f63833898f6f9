"""Series loading speed and memory: MedView vs SimpleITK vs a pydicom loop vs raw reads.

Run with ``make bench`` (``pytest -s -m benchmark tests/benchmarks``). Prints tables; asserts
only that the methods agree on the data (timings are machine-dependent).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.common import median_time, peak_rss_above_baseline, print_table
from tests.benchmarks.methods import METHODS
from tests.conftest import DEMO_CT, write_ct

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def ct300(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 300-slice 512 x 512 int16 CT series, explicit VR little endian."""
    folder = tmp_path_factory.mktemp("bench") / "ct300"
    rng = np.random.default_rng(1)
    base = rng.integers(-1000, 1500, size=(512, 512), dtype=np.int16)
    values = np.stack([np.roll(base, z, axis=0) for z in range(300)])
    write_ct(
        folder, n=300, rows=512, cols=512, values=values, spacing=(0.7, 0.7, 1.0), seed="bench300"
    )
    return folder


def _table(title: str, folder: Path, methods: list[str], repeats: int) -> dict[str, float]:
    # warm page cache, and check every array method gives the same voxels
    ref = np.asarray(METHODS["MedView"](str(folder)))
    for name in methods:
        out = METHODS[name](str(folder))
        if isinstance(out, np.ndarray):
            assert np.array_equal(np.asarray(out, dtype=np.float64), ref.astype(np.float64)), name
    times = {
        name: median_time(lambda n=name: METHODS[n](str(folder)), repeats=repeats)
        for name in methods
    }
    mib = ref.nbytes / 1024**2
    rows = []
    for name in methods:
        rss = peak_rss_above_baseline(name, folder)
        rows.append(
            [
                name,
                f"{times[name] * 1000:.0f}",
                f"{times['MedView'] / times[name]:.2f}",
                f"{times[name] / times['MedView']:.2f}x",
                f"{rss:.0f}",
                f"{rss / mib:.2f}",
            ]
        )
    size = sum(os.path.getsize(p) for p in folder.glob("*.dcm")) / 1024**2
    print_table(
        f"{title}: {ref.shape} {ref.dtype} = {mib:.0f} MiB volume, {size:.0f} MiB files,"
        f" warm cache, median of {repeats}, {os.cpu_count()} CPUs",
        rows,
        [
            "method",
            "median ms",
            "MedView/it",
            "it/MedView (speed-up)",
            "peak RSS MiB",
            "RSS/volume",
        ],
    )
    return times


def test_bench_uncompressed_300_slices(ct300: Path) -> None:
    times = _table("Uncompressed CT 300 x 512 x 512", ct300, list(METHODS), repeats=5)
    assert times["MedView"] > 0


def test_bench_demo_ct_jpeg_ls(tmp_path: Path) -> None:
    folder = tmp_path / "lung2"
    shutil.copytree(DEMO_CT, folder)
    from medview.io.isolation import default_decoder

    default_decoder().warm_up()  # the application starts its decoder pool at launch
    times = _table(
        "Demo CT lung2 61 x 512 x 512, JPEG-LS lossless",
        folder,
        ["MedView", "SimpleITK ImageSeriesReader", "pydicom loop"],
        repeats=5,
    )
    assert times["MedView"] > 0
