from __future__ import annotations

import numpy as np

from medview.viewer.measure import (
    angle_deg,
    distance_mm,
    ellipse_area_mm2,
    ellipse_mask,
    rectangle_area_mm2,
    rectangle_mask,
    roi_stats,
)
from medview.viewer.render import LutCache, blend_labels, label_colors, render_grey
from medview.viewer.windowing import CT_PRESETS, Window, auto_window, presets_for


def _grey(argb: np.ndarray) -> np.ndarray:
    return (argb & 0xFF).astype(np.int32)


def test_lut_matches_direct_window() -> None:
    rng = np.random.default_rng(0)
    plane = rng.integers(-1024, 3000, (64, 64)).astype(np.int16)
    w = Window(40, 400)
    g = _grey(render_grey(plane, w))
    expected = np.clip((plane.astype(float) - w.low) * 255 / w.width, 0, 255).astype(np.uint8)
    assert np.array_equal(g, expected)
    assert np.all(render_grey(plane, w) >> 24 == 0xFF)
    assert np.array_equal(_grey(render_grey(plane, w, invert=True)), 255 - expected)
    # float path agrees with the table path
    assert np.array_equal(_grey(render_grey(plane.astype(np.float32), w)), expected)
    cache = LutCache()
    assert np.array_equal(
        render_grey(plane.astype(np.uint16) + 5, w, cache=cache),
        render_grey((plane.astype(np.uint16) + 5).astype(np.float32), w),
    )


def test_window_drag_convention() -> None:
    w = Window(40, 400)
    assert w.dragged(10, 0, 2.0) == Window(40, 420)  # right: wider
    assert w.dragged(0, -10, 2.0) == Window(60, 400)  # dragging up (dy < 0) raises the level
    assert w.dragged(0, 10, 2.0).center == 20


def test_presets() -> None:
    assert [p.name for p in CT_PRESETS][:4] == ["Brain", "Subdural", "Stroke", "Lung"]
    mr = presets_for("MR", np.arange(1000), (100, 200))
    assert mr[0].window == Window(100, 200) and len(mr) >= 3
    aw = auto_window(np.arange(101))
    assert abs(aw.low - 1) < 1e-9 and abs(aw.high - 99) < 1e-9


def test_blend_labels() -> None:
    argb = render_grey(np.zeros((4, 4), np.int16), Window(0, 2))  # mid grey 127
    labels = np.zeros((4, 4), np.uint8)
    labels[1, 1] = 1
    table = label_colors({1: (255, 0, 0)})
    out = blend_labels(argb.copy(), labels, table, opacity=0.5)
    r = (out[1, 1] >> 16) & 0xFF
    g = (out[1, 1] >> 8) & 0xFF
    assert r > 180 and g < 70 and out[0, 0] == argb[0, 0]


def test_distance_angle() -> None:
    assert distance_mm(np.array([0, 0, 0]), np.array([3, 4, 0])) == 5
    assert abs(angle_deg(np.array([1, 0, 0]), np.zeros(3), np.array([0, 2, 0])) - 90) < 1e-9


def test_roi_stats_on_known_values() -> None:
    plane = np.zeros((20, 20), np.int16)
    plane[5:15, 5:15] = 100
    plane[5, 5] = 130
    mask = rectangle_mask(plane.shape, 5, 5, 14, 14)
    s = roi_stats(plane, mask, rectangle_area_mm2(5, 5, 15, 15, (0.5, 0.5)))
    assert s.pixels == 100 and s.max == 130 and s.min == 100
    assert abs(s.mean - 100.3) < 1e-9 and abs(s.area_mm2 - 25.0) < 1e-9
    em = ellipse_mask(plane.shape, 0, 0, 19, 19)
    assert 0.65 < em.mean() < 0.8  # about pi/4 of the box, counted at pixel centres
    assert abs(ellipse_area_mm2(0, 0, 10, 10, (1, 1)) - np.pi * 25) < 1e-9
