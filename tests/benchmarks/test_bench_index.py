"""Header indexing throughput: MedView's index vs a plain pydicom header loop, 10,000 files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.io.isolation import default_decoder
from medview.io.scan import scan
from tests.benchmarks.common import median_time, print_table
from tests.conftest import write_ct

pytestmark = pytest.mark.benchmark
N_SERIES, N_SLICES = 100, 100


@pytest.fixture(scope="module")
def folder10k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("index10k")
    values = np.zeros((N_SLICES, 16, 16), np.int16)
    for i in range(N_SERIES):
        write_ct(
            root / f"s{i:03d}",
            n=N_SLICES,
            rows=16,
            cols=16,
            values=values,
            seed=f"idx{i}",
            patient_id=f"P{i % 20:03d}",
        )
    return root


def pydicom_header_loop(root: Path) -> int:
    n = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            ds = pydicom.dcmread(os.path.join(dirpath, name), stop_before_pixels=True)
            n += bool(ds.SeriesInstanceUID)
    return n


def test_bench_index_10k(folder10k: Path) -> None:
    n = sum(1 for _ in folder10k.rglob("*.dcm"))
    assert n == N_SERIES * N_SLICES
    result = scan([folder10k])
    assert len(result.records) == n and len(result.series) == N_SERIES
    rows = []
    single = median_time(lambda: scan([folder10k], workers=1), repeats=3)
    default_decoder().warm_up()
    pooled = median_time(lambda: scan([folder10k]), repeats=3)
    peer = median_time(lambda: pydicom_header_loop(folder10k), repeats=3)
    for name, t in [
        ("MedView scan, one process", single),
        ("MedView scan, worker pool (default)", pooled),
        ("pydicom dcmread(stop_before_pixels) loop", peer),
    ]:
        rows.append([name, f"{t:.2f}", f"{n / t:.0f}", f"{peer / t:.2f}x"])
    print_table(
        f"Header indexing, {n} files in {N_SERIES} series, warm cache, median of 3, "
        f"{os.cpu_count()} CPUs",
        rows,
        ["method", "seconds", "files/s", "vs pydicom"],
    )
