from __future__ import annotations

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.volume import Volume


def test_affine_maps_index_to_lps() -> None:
    d = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)  # sagittal-ish
    g = Geometry(shape=(4, 5, 6), origin=(10, 20, 30), spacing=(0.5, 2.0, 3.0), direction=d)
    idx = np.array([2, 3, 4])  # z, y, x
    lps = g.index_to_lps(idx)
    expected = np.array([10, 20, 30]) + d @ (np.array([4, 3, 2]) * [0.5, 2.0, 3.0])
    assert np.allclose(lps, expected)
    assert np.allclose(g.affine @ np.array([4, 3, 2, 1]), [*expected, 1])
    assert np.allclose(g.lps_to_index(lps), idx)


def test_geometry_rejects_bad_spacing() -> None:
    with pytest.raises(ValueError):
        Geometry(shape=(1, 2, 2), origin=(0, 0, 0), spacing=(1, 0, 1))


def test_volume_is_read_only_and_shape_checked() -> None:
    g = Geometry(shape=(2, 3, 4), origin=(0, 0, 0), spacing=(1, 1, 1))
    v = Volume(np.zeros((2, 3, 4), np.int16), g)
    with pytest.raises(ValueError):
        v.array[0, 0, 0] = 1
    with pytest.raises(ValueError):
        Volume(np.zeros((2, 3, 5), np.int16), g)
