"""GUI start-up and drop-to-first-image times (offscreen)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.common import REPO, print_table
from tests.conftest import write_ct

pytestmark = pytest.mark.benchmark

STARTUP = """
import json, sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
from medview.app import create_window
w = create_window()
w.show()
QApplication.instance().processEvents()
t1 = time.perf_counter()
heavy = [m for m in ("torch", "monai", "SimpleITK") if m in sys.modules]
print(json.dumps({"seconds": t1 - t0, "heavy": heavy}))
w.close()
"""


def test_bench_startup(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MEDVIEW_HOME=str(tmp_path))
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", STARTUP],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert all(not r["heavy"] for r in runs)
    med = statistics.median(r["seconds"] for r in runs)
    print_table(
        "Launch to window shown (fresh interpreter, offscreen), median of 3",
        [["MedView", f"{med:.2f}", ", ".join(runs[0]["heavy"]) or "none"]],
        ["app", "seconds", "heavy modules imported"],
    )


def test_bench_drop_to_first_image(qtbot, tmp_path: Path) -> None:
    from PySide6.QtCore import QSettings

    from medview.io.database import StudyDatabase
    from medview.io.isolation import default_decoder
    from medview.ui.main_window import MainWindow
    from medview.viewer.mpr import View

    rng = np.random.default_rng(3)
    base = rng.integers(-1000, 1500, size=(512, 512), dtype=np.int16)
    write_ct(
        tmp_path / "ct300",
        n=300,
        rows=512,
        cols=512,
        spacing=(0.7, 0.7, 1.0),
        values=np.stack([np.roll(base, z, 0) for z in range(300)]),
        seed="drop300",
    )
    default_decoder().warm_up()
    times = []
    for i in range(3):
        db = StudyDatabase(tmp_path / f"db{i}.sqlite")
        w = MainWindow(db, QSettings(str(tmp_path / f"s{i}.ini"), QSettings.Format.IniFormat))
        qtbot.addWidget(w)
        w.show()
        t0 = time.perf_counter()
        w.import_paths([str(tmp_path / "ct300")])
        qtbot.waitUntil(lambda w=w: w.controller.state is not None, timeout=30000)
        w.viewer.views[View.AXIAL].repaint()
        times.append(time.perf_counter() - t0)
        qtbot.waitUntil(lambda w=w: not w.runner.running, timeout=30000)
        w.close()
        db.close()
    print_table(
        "Drop of a 300-slice 512 x 512 CT folder to first image painted, median of 3",
        [["MedView", f"{statistics.median(times):.2f}"]],
        ["app", "seconds"],
    )

    # scrolling: wheel event + synchronous repaint of the 1x3 views, through all 300 slices
    from tests.ui.conftest import scroll

    db = StudyDatabase(tmp_path / "scroll.sqlite")
    w = MainWindow(db, QSettings(str(tmp_path / "scroll.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1600, 900)
    w.show()
    w.import_paths([str(tmp_path / "ct300")])
    qtbot.waitUntil(lambda: w.controller.state is not None and not w.runner.running, timeout=30000)
    axial = w.viewer.views[View.AXIAL]
    w.controller.go_to(View.AXIAL, 0)
    frame_times = []
    for _ in range(299):
        t = time.perf_counter()
        scroll(axial)
        for v in w.viewer.visible_views():
            v.repaint()
        frame_times.append(time.perf_counter() - t)
    assert w.controller.state.slice_index(View.AXIAL) == 299
    med = statistics.median(frame_times) * 1000
    worst = max(frame_times) * 1000
    print_table(
        "Scrolling the 300-slice CT, 1x3 layout, all three views repainted per step "
        "(1600 x 900 window, offscreen)",
        [["MedView", f"{med:.1f}", f"{1000 / med:.0f}", f"{worst:.1f}"]],
        ["app", "median ms/step", "steps/s", "worst ms"],
    )
    w.close()
    db.close()
