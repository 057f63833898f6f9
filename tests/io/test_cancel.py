"""Cancel and progress in the compute functions a GUI will run off its thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from medview.core.errors import CancelledError
from medview.core.tasks import CancelToken
from medview.io.loader import load_series
from medview.io.scan import index_inputs, scan
from tests.conftest import DEMO_CT, write_ct


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_mid_index_stops_promptly(tmp_path: Path, workers: int) -> None:
    for i in range(4):
        write_ct(tmp_path / f"s{i}", n=60, rows=8, cols=8, seed=f"c{i}")
    cancel = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int, message: str = "") -> None:
        seen.append(done)
        if done >= 40:
            cancel.cancel()

    batches = []
    t0 = time.perf_counter()
    with pytest.raises(CancelledError):
        for b in index_inputs(
            [tmp_path],
            extract_dir=str(tmp_path),
            cancel=cancel,
            progress=progress,
            batch_size=20,
            workers=workers,
        ):
            batches.append(b)
    assert time.perf_counter() - t0 < 5
    assert batches and all(b.total == 240 for b in batches)
    assert sum(len(b.records) for b in batches) < 240  # stopped before the end
    assert seen == sorted(seen)  # progress only moves forward


def test_progress_reaches_total_and_batches_stream(tmp_path: Path) -> None:
    write_ct(tmp_path / "s", n=50, rows=8, cols=8)
    counts = [
        len(b.records) for b in index_inputs([tmp_path], extract_dir=str(tmp_path), batch_size=16)
    ]
    assert sum(counts) == 50 and len(counts) >= 3


def test_cancel_during_compressed_load_leaves_the_pool_usable() -> None:
    series = scan([DEMO_CT]).series[0]
    cancel = CancelToken()
    progress_seen: list[int] = []

    def progress(done: int, total: int, message: str = "") -> None:
        progress_seen.append(done)
        if done >= 5:
            cancel.cancel()

    t0 = time.perf_counter()
    with pytest.raises(CancelledError):
        load_series(series, cancel=cancel, progress=progress)
    assert time.perf_counter() - t0 < 5 and progress_seen[-1] < 61
    vol = load_series(series)  # nothing stuck: the next load works
    assert vol.shape == (61, 512, 512)
