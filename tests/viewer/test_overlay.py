from __future__ import annotations

import numpy as np

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.viewer.mpr import View
from medview.viewer.overlay import LabelOverlay, outline
from medview.viewer.state import ViewerState


def _state_with_overlay() -> ViewerState:
    g = Geometry(shape=(6, 20, 20), origin=(0, 0, 0), spacing=(1, 1, 2))
    img = Volume(np.zeros((6, 20, 20), np.int16), g, modality="CT")
    lab = np.zeros((6, 20, 20), np.uint8)
    lab[2, 5:15, 5:15] = 1
    lab[4, 8:10, 8:10] = 1
    lab[1:5, 2:4, 2:4] = 2
    s = ViewerState(img)
    s.overlay = LabelOverlay(Volume(lab, g), {1: (255, 0, 0), 2: (0, 255, 0)}, {1: "a", 2: "b"})
    return s


def test_overlay_follows_the_view_and_blends() -> None:
    s = _state_with_overlay()
    s.go_to(View.AXIAL, 2)
    assert s.overlay_plane(View.AXIAL).sum() > 0
    s.go_to(View.AXIAL, 0)
    assert s.overlay_plane(View.AXIAL).sum() == 0
    s.go_to(View.AXIAL, 2)
    argb = np.full((20, 20), 0xFF000000, np.uint32)
    out = s.overlay.blend(argb.copy(), s.overlay_plane(View.AXIAL))
    assert ((out[10, 10] >> 16) & 0xFF) > 0 and out[0, 0] == 0xFF000000
    s.overlay.hidden.add(1)
    hidden = s.overlay.blend(argb.copy(), s.overlay_plane(View.AXIAL))
    assert hidden[10, 10] == 0xFF000000


def test_outline_and_largest_section() -> None:
    s = _state_with_overlay()
    plane = s.overlay.labels.array[2]
    ring = outline(plane)
    assert ring[5, 10] == 1 and ring[10, 10] == 0  # edge kept, interior cleared
    assert s.overlay.largest_section(1) == (2, 10, 10)
    assert s.overlay.largest_section(7) is None


def test_heatmap_blend_threshold_and_colours() -> None:
    from medview.viewer.overlay import HeatmapOverlay, heat_colors

    g = Geometry(shape=(1, 2, 2), origin=(0, 0, 0), spacing=(1, 1, 1))
    heat = Volume(np.array([[[0.0, 0.1], [0.6, 1.0]]], np.float32), g)
    h = HeatmapOverlay(heat, opacity=1.0, threshold=0.2)
    grey = np.full((2, 2), 0xFF808080, np.uint32)
    out = h.blend(grey.copy(), heat.array[0])
    assert out[0, 0] == grey[0, 0] and out[0, 1] == grey[0, 1]  # below threshold: untouched
    assert out[1, 1] != grey[1, 1] and (out[1, 1] >> 16) & 0xFF > (out[1, 1] & 0xFF)  # hot=red
    table = heat_colors()
    assert table.shape == (256,) and (table[0] & 0xFF) > ((table[0] >> 16) & 0xFF)  # cold=blue
