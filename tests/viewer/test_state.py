from __future__ import annotations

import numpy as np

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.viewer.mpr import View
from medview.viewer.state import ViewerState


def _state() -> ViewerState:
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    g = Geometry(shape=(4, 5, 6), origin=(10, 20, 30), spacing=(0.5, 0.7, 2.0))
    return ViewerState(Volume(arr, g, modality="CT"))


def test_crosshair_links_views() -> None:
    s = _state()
    s.set_point(View.AXIAL, row=3, col=4)  # y=3, x=4 on the current axial slice
    assert s.slice_index(View.CORONAL) == 3 and s.slice_index(View.SAGITTAL) == 4
    s.step(View.AXIAL, +1)
    z = s.slice_index(View.AXIAL)
    # coronal shows superior at the top: axial slice z is row (nz - 1 - z)
    assert s.screen_point(View.CORONAL)[0] == 4 - 1 - z
    s.go_to(View.AXIAL, 99)
    assert s.slice_index(View.AXIAL) == 3  # clamped


def test_value_and_position_under_cursor() -> None:
    s = _state()
    s.go_to(View.AXIAL, 2)
    assert s.value_at(View.AXIAL, 1, 5) == 2 * 30 + 1 * 6 + 5
    assert np.allclose(s.lps_at(View.AXIAL, 1, 5), [10 + 5 * 0.5, 20 + 0.7, 30 + 4.0])
    assert s.value_at(View.AXIAL, 10, 10) is None


def test_ct_defaults_and_slab() -> None:
    s = _state()
    assert s.presets[3].name == "Lung" and s.window.center == 40
    s.set_slab(View.AXIAL, 6.0, "mip")
    s.go_to(View.AXIAL, 1)
    assert s.slab(View.CORONAL) == (0.0, "mip")  # other views keep plain slices
    assert np.array_equal(s.plane(View.AXIAL), s.volume.array[0:3].max(axis=0))
