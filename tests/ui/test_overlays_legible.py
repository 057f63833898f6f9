"""The text on the image stays legible at any viewport size: the scale bar's label fits and
touches no corner text, orientation letters stay clear of the crosshair, measurement labels
stay inside the viewport."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QFont, QFontMetrics

from medview.ui.slice_view import SliceView
from medview.viewer.mpr import View
from tests.conftest import write_ct
from tests.ui.conftest import wait_for_volume

SIZES = [(140, 140), (220, 160), (300, 500), (520, 300), (900, 700)]


@pytest.fixture
def loaded(qtbot, window, tmp_path: Path):  # type: ignore[no-untyped-def]
    write_ct(tmp_path / "ct", n=40, rows=128, cols=128)
    window.import_paths([str(tmp_path / "ct")])
    wait_for_volume(qtbot, window)
    return window


def _inside(box: QRectF, w: int, h: int) -> bool:
    return box.left() >= 0 and box.top() >= 0 and box.right() <= w and box.bottom() <= h


@pytest.mark.parametrize("view", [View.AXIAL, View.CORONAL, View.SAGITTAL])
@pytest.mark.parametrize(("w", "h"), SIZES)
def test_overlays_fit_and_do_not_collide(qtbot, loaded, view: View, w: int, h: int) -> None:  # type: ignore[no-untyped-def]
    sv = SliceView(loaded.controller, view)
    qtbot.addWidget(sv)
    sv.resize(w, h)
    sv.grab()  # paints every overlay at this size
    small = QFontMetrics(QFont("Sans", 9))
    corners = sv.corner_rects(small, "A\nB\nC", "D\nE\nF", "Im 1/40  -10.0 mm\nthk 2.5 mm", "W\nZ")
    bar, label, mm = sv.scale_bar(QFontMetrics(QFont("Sans", 8)), corners["bottom_left"])
    assert mm > 0 and bar.width() > 0
    assert _inside(label, w, h), (label, w, h)
    for name, box in corners.items():
        assert not label.intersects(box), name
        assert not (box.top() <= bar.top() <= box.bottom() and bar.right() >= box.left()), name
    # a long description beside the patient lines: the two top texts never reach the
    # orientation letter between them, with the crosshair anywhere
    state = loaded.controller.state
    for where in (np.zeros(3), np.asarray(state.volume.shape, dtype=np.float64) / 2):
        state.crosshair = where.copy()
        letter = sv.letter_rects(QFontMetrics(QFont("Sans", 11, QFont.Weight.Bold)))["top"][0]
        tl, tr = sv.fit_top(small, "Test^Regression^Long\nDEV\n20180918",
                            "Axial EPI-FMRI (Interleaved I to S)\nvolume 4 of 10 (b=1000)",
                            letter)  # fmt: skip
        top = sv.corner_rects(small, tl, tr, "", "")
        if w >= 220:  # room for a few letters of each beside the letter
            assert not top["top_left"].intersects(top["top_right"]), (w, tl, tr)
            assert not letter.intersects(top["top_left"]), (w, tl)
            assert not letter.intersects(top["top_right"]), (w, tr)
    # orientation letters, with the crosshair through the middle of the view
    state = loaded.controller.state
    k = state.volume.shape
    state.crosshair = np.array([k[0] / 2, k[1] / 2, k[2] / 2], dtype=np.float64)
    cross = sv.to_widget(*state.screen_point(view))
    for edge, (box, _letter) in sv.letter_rects(QFontMetrics(QFont("Sans", 11))).items():
        if edge in ("top", "bottom"):
            assert not box.left() <= cross.x() <= box.right(), edge
        else:
            assert not box.top() <= cross.y() <= box.bottom(), edge
    # a measurement label near any edge stays inside
    for anchor in (QPointF(w - 2, 4), QPointF(2, h - 2), QPointF(w / 2, h / 2)):
        box = sv.label_rect(anchor, "123.4 mm  mean 45 HU", small)
        assert _inside(box, w, h) or box.width() > w, (anchor, box)


def test_corner_text_has_a_shadow_that_reads_on_white(qtbot, loaded) -> None:  # type: ignore[no-untyped-def]
    from medview.viewer.windowing import Window

    loaded.controller.set_window(Window(center=-5000, width=10))  # every pixel white
    sv = SliceView(loaded.controller, View.AXIAL)
    qtbot.addWidget(sv)
    sv.resize(400, 400)  # square: the image fills the view, the text lies on white
    image = sv.grab().toImage()
    corner = [image.pixelColor(x, y).lightness() for x in range(6, 120) for y in range(6, 40)]
    assert sum(v < 60 for v in corner) > 30  # the dark shadow around the letters
    assert sum(v > 200 for v in corner) > 30  # the letters and the white image
