from __future__ import annotations

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.viewer.mpr import View, plane_mapping


def _geo(direction=None, shape=(4, 5, 6), spacing=(0.5, 0.7, 2.0)) -> Geometry:
    return Geometry(
        shape=shape,
        origin=(0, 0, 0),
        spacing=spacing,
        direction=np.eye(3) if direction is None else direction,
    )


ARR = np.arange(4 * 5 * 6).reshape(4, 5, 6)


def test_identity_planes_follow_radiological_convention() -> None:
    g = _geo()
    ax = plane_mapping(g, View.AXIAL)
    assert np.array_equal(ax.plane(ARR, 2), ARR[2])  # rows +P, cols +L already
    assert ax.edge_labels() == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert ax.spacing == (2.0, 0.7, 0.5)
    co = plane_mapping(g, View.CORONAL)
    assert np.array_equal(co.plane(ARR, 3), ARR[::-1, 3, :])  # superior at the top
    assert co.edge_labels() == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    sa = plane_mapping(g, View.SAGITTAL)
    assert np.array_equal(sa.plane(ARR, 1), ARR[::-1, :, 1])
    assert sa.edge_labels() == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    assert co.shape == (5, 4, 6) and sa.shape == (6, 4, 5)


def test_flipped_storage_is_shown_the_same_way() -> None:
    """An array stored right-to-left (x towards patient right) still shows L on the right."""
    g = _geo(direction=np.diag([-1.0, 1.0, 1.0]))
    ax = plane_mapping(g, View.AXIAL)
    assert np.array_equal(ax.plane(ARR, 0), ARR[0][:, ::-1])
    assert ax.edge_labels()["right"] == "L"


def test_sagittal_acquisition_maps_axes() -> None:
    # array x -> +P, y -> -S (rows go down towards feet), z -> +L (slices left)
    d = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float)
    g = _geo(direction=d)
    sa = plane_mapping(g, View.SAGITTAL)
    assert np.array_equal(sa.plane(ARR, 1), ARR[1])  # native sagittal is shown as stored
    assert sa.edge_labels() == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    assert not sa.approximate


def test_oblique_is_marked_approximate() -> None:
    t = np.radians(20)
    d = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    assert plane_mapping(_geo(direction=d), View.AXIAL).approximate


@pytest.mark.parametrize("view", [View.AXIAL, View.CORONAL, View.SAGITTAL])
def test_screen_index_round_trip_and_values(view: View) -> None:
    g = _geo(direction=np.diag([-1.0, 1.0, -1.0]))
    m = plane_mapping(g, view)
    zyx = np.array([1.0, 3.0, 4.0])
    krc = m.to_screen(zyx)
    assert np.allclose(m.from_screen(krc), zyx)
    k, r, c = (int(v) for v in krc)
    assert m.oriented(ARR)[k, r, c] == ARR[1, 3, 4]


def test_slab_mip_and_minip() -> None:
    g = _geo(spacing=(1, 1, 1))
    ax = plane_mapping(g, View.AXIAL)
    assert np.array_equal(ax.slab(ARR, 1, 3.0, "mip"), ARR[0:3].max(axis=0))
    assert np.array_equal(ax.slab(ARR, 1, 3.0, "minip"), ARR[0:3].min(axis=0))
    assert np.array_equal(ax.slab(ARR, 1, 0.5, "mip"), ARR[1])
