"""Slice rendering: window/level LUT + label overlay on 512 x 512, and scrolling rate."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from medview.io.loader import load_series
from medview.io.scan import scan
from medview.viewer.mpr import View, plane_mapping
from medview.viewer.render import LutCache, blend_labels, label_colors, render_grey
from medview.viewer.windowing import Window
from tests.benchmarks.common import print_table
from tests.conftest import DEMO_CT

pytestmark = pytest.mark.benchmark


def _median_ms(fn, n: int = 200) -> float:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def test_bench_render() -> None:
    vol = load_series(scan([DEMO_CT]).series[0])
    labels = np.zeros(vol.shape, np.uint8)
    labels[:, 200:300, 150:260] = 1  # a block of "lesion" on every slice
    table = label_colors({1: (255, 64, 0)})
    cache = LutCache()
    w = Window(-600, 1500)
    rows = []
    for view in (View.AXIAL, View.CORONAL, View.SAGITTAL):
        m = plane_mapping(vol.geometry, view)
        n = m.shape[0]

        def frame(i: int, m=m, n=n) -> None:
            plane = m.plane(vol.array, i % n)
            argb = render_grey(plane, w, cache=cache)
            blend_labels(argb, m.plane(labels, i % n), table)

        def numpy_peer(i: int, m=m, n=n) -> None:  # straightforward float window + blend
            plane = m.plane(vol.array, i % n).astype(np.float32)
            g = np.clip((plane - w.low) / w.width * 255, 0, 255).astype(np.uint8)
            rgb = np.stack([g, g, g], -1).astype(np.float32)
            mask = m.plane(labels, i % n) > 0
            rgb[mask] = rgb[mask] * 0.6 + np.array([255, 64, 0]) * 0.4

        ours = _median_ms(frame)
        peer = _median_ms(numpy_peer)
        rows.append(
            [
                view.value,
                "x".join(map(str, m.shape[1:])),
                f"{ours:.2f}",
                f"{1000 / ours:.0f}",
                f"{peer:.2f}",
                f"{peer / ours:.1f}x",
            ]
        )
    print_table(
        "Rendering one slice (W/L LUT + label overlay), demo CT, median of 200",
        rows,
        ["view", "size", "MedView ms", "frames/s", "float numpy ms", "ratio"],
    )
