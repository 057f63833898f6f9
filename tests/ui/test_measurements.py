"""Measuring with the mouse, on a generated series with known spacing and pixel values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage

from medview.io.database import StudyDatabase
from medview.ui.main_window import MainWindow
from medview.viewer.annotations import Kind, evaluate
from medview.viewer.mpr import View
from tests.conftest import write_ct
from tests.ui.conftest import wait_for_volume


@pytest.fixture
def series_dir(tmp_path: Path) -> Path:
    values = np.full((6, 60, 80), 40, np.int16)
    values[3, 20:40, 30:60] = 200  # a 20 x 30 pixel block of 200 HU on slice 3
    write_ct(
        tmp_path / "s",
        n=6,
        rows=60,
        cols=80,
        values=values,
        spacing=(0.5, 0.8, 2.0),
        origin=(0, 0, 0),
    )
    return tmp_path / "s"


def _open(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(folder)])
    wait_for_volume(qtbot, window)
    window.tools.set_layout("1x1")
    window.controller.go_to(View.AXIAL, 3)


def _drag(qtbot, view, a: tuple[float, float], b: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    pa, pb = view.to_widget(*a).toPoint(), view.to_widget(*b).toPoint()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=pa)
    qtbot.mouseMove(view, pb)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=pb)


def test_ruler_and_roi_with_the_mouse(qtbot, window, series_dir: Path) -> None:
    _open(qtbot, window, series_dir)
    axial = window.viewer.views[View.AXIAL]
    state = window.controller.state
    qtbot.keyClick(window, Qt.Key.Key_M)  # ruler
    _drag(qtbot, axial, (10, 10), (40, 50))
    ruler = window.controller.measurements.items[-1]
    assert ruler.kind is Kind.RULER
    # 30 rows x 0.8 mm and 40 columns x 0.5 mm, within the mouse's pixel rounding
    assert evaluate(ruler, state.volume)["length_mm"] == pytest.approx(np.hypot(24, 20), abs=1.0)
    qtbot.keyClick(window, Qt.Key.Key_G)  # rectangle ROI over the 200 HU block
    _drag(qtbot, axial, (22, 32), (37, 57))
    roi = evaluate(window.controller.measurements.items[-1], state.volume)
    assert roi["mean"] == pytest.approx(200) and roi["sd"] == pytest.approx(0)
    assert roi["min"] == roi["max"] == 200
    assert roi["area_mm2"] == pytest.approx(15 * 0.8 * 25 * 0.5, rel=0.15)
    texts = [window.measure_list.item(i).text() for i in range(window.measure_list.count())]
    assert len(texts) == 2 and "mm" in texts[0] and "mean 200.0 HU" in texts[1]


def test_undo_redo_delete_by_keys(qtbot, window, series_dir: Path) -> None:
    _open(qtbot, window, series_dir)
    axial = window.viewer.views[View.AXIAL]
    qtbot.keyClick(window, Qt.Key.Key_M)
    _drag(qtbot, axial, (10, 10), (20, 10))
    _drag(qtbot, axial, (30, 10), (40, 10))
    ms = window.controller.measurements
    assert len(ms.items) == 2
    qtbot.keyClick(window, Qt.Key.Key_Delete)  # the newest is selected
    assert len(ms.items) == 1
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(ms.items) == 2
    qtbot.keyClick(
        window,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert len(ms.items) == 1


def test_measurements_persist_across_reopen(qtbot, tmp_path: Path, series_dir: Path) -> None:
    def make() -> MainWindow:
        w = MainWindow(
            StudyDatabase(tmp_path / "db.sqlite"),
            QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
        )
        qtbot.addWidget(w)
        w.resize(900, 700)
        w.show()
        return w

    w1 = make()
    _open(qtbot, w1, series_dir)
    qtbot.keyClick(w1, Qt.Key.Key_E)  # ellipse
    _drag(qtbot, w1.viewer.views[View.AXIAL], (22, 32), (37, 57))
    saved = w1.controller.measurements.items
    w1.close()
    w1.db.close()
    w2 = make()
    _open(qtbot, w2, series_dir)
    assert w2.controller.measurements.items == saved
    assert w2.measure_list.count() == 1 and "ellipse" in w2.measure_list.item(0).text()
    w2.close()
    w2.db.close()


def test_save_view_png(qtbot, window, series_dir: Path, tmp_path: Path) -> None:
    _open(qtbot, window, series_dir)
    out = tmp_path / "view.png"
    assert window.report.save_view(str(out), annotations=False)
    image = QImage(str(out))
    assert not image.isNull() and image.width() > 100


def test_label_text_is_edited_and_kept(qtbot, window, series_dir: Path) -> None:
    _open(qtbot, window, series_dir)
    qtbot.keyClick(window, Qt.Key.Key_W)  # arrow
    _drag(qtbot, window.viewer.views[View.AXIAL], (10, 10), (25, 35))
    arrow = window.controller.measurements.items[-1]
    window.controller.set_text(arrow.id, "nodule")
    assert "nodule" in window.measure_list.item(0).text()
    qtbot.waitUntil(lambda: not window.keeper.running, timeout=10000)  # kept in a worker
    assert window.db.load_measurements(window.current_series.key)[0]["text"] == "nodule"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.measurements.items[-1].text == ""
