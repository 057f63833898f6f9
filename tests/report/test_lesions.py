"""The lesion table's sizes: on synthetic ellipsoids of known axes (any in-plane rotation,
anisotropic voxels) the long and short axes come out within one voxel; Lung-RADS size bands
at their borders; rulers join the table."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.results import Segment, Segmentation
from medview.core.volume import Volume
from medview.report.lesions import lesion_rows, lung_rads_band


def ellipsoid(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    semi: tuple[float, float, float],
    angle_deg: float,
) -> np.ndarray:
    """A solid ellipsoid (semi-axes in mm: in-plane a, b rotated by ``angle_deg``, and c
    along the slices) centred in the grid; spacing is (x, y, z) mm."""
    z, y, x = np.indices(shape, dtype=np.float64)
    cz, cy, cx = ((n - 1) / 2 for n in shape)
    px, py, pz = (x - cx) * spacing[0], (y - cy) * spacing[1], (z - cz) * spacing[2]
    t = np.radians(angle_deg)
    u = px * np.cos(t) + py * np.sin(t)
    v = -px * np.sin(t) + py * np.cos(t)
    a, b, c = semi
    return (u / a) ** 2 + (v / b) ** 2 + (pz / c) ** 2 <= 1.0


@pytest.mark.parametrize(
    ("spacing", "semi", "angle"),
    [
        ((0.7, 0.7, 1.25), (12.0, 7.0, 9.0), 0.0),
        ((0.7, 0.7, 1.25), (12.0, 7.0, 9.0), 33.0),
        ((0.5, 0.8, 2.5), (20.0, 11.0, 15.0), 71.0),
        ((1.0, 1.0, 1.0), (4.0, 3.0, 4.0), 45.0),
    ],
)
def test_ellipsoid_axes_within_one_voxel(
    spacing: tuple[float, float, float], semi: tuple[float, float, float], angle: float
) -> None:
    shape = (
        int(2.6 * semi[2] / spacing[2]) + 3,
        int(2.6 * max(semi) / spacing[1]) + 3,
        int(2.6 * max(semi) / spacing[0]) + 3,
    )
    g = Geometry(shape, (0.0, 0.0, 0.0), spacing)
    mask = ellipsoid(shape, spacing, semi, angle)
    image = Volume(np.where(mask, 30, -800).astype(np.int16), g, modality="CT", units="HU")
    seg = Segmentation(Volume(mask.astype(np.uint8), g), (Segment(1, "lesion", finding=True),))
    (row,) = lesion_rows(image, seg)
    voxel = max(spacing[0], spacing[1])
    assert abs(row.long_axis_mm - 2 * semi[0]) <= voxel, row
    assert abs(row.short_axis_mm - 2 * semi[1]) <= voxel, row
    # the longest section is the central slice (or its neighbour, by symmetry)
    assert abs(row.slice_number - 1 - (shape[0] - 1) / 2) <= 1
    analytic = 4 / 3 * np.pi * np.prod(semi) / 1000
    assert row.volume_ml == pytest.approx(analytic, rel=0.08)
    assert row.mean == 30 and not row.lung_rads  # "lesion" is not a lung lesion
    centre = g.index_to_lps(np.array([(n - 1) / 2 for n in shape]))
    assert np.allclose(row.centre_lps, centre, atol=0.5 * max(spacing))


@pytest.mark.parametrize(
    ("long", "short", "band"),
    [(5.0, 4.8, "2"), (6.1, 5.9, "3"), (8.0, 7.8, "3"), (8.0, 7.9, "4A"), (15.0, 15.0, "4B")],
)
def test_lung_rads_size_bands(long: float, short: float, band: str) -> None:
    text = lung_rads_band(long, short)
    assert text.startswith(f"Suggested Lung-RADS size band {band} ") and "suggestion" in text


def test_a_lung_nodule_gets_a_band_and_rulers_join_the_table() -> None:
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    spacing = (0.7, 0.7, 1.0)
    shape = (25, 40, 40)
    g = Geometry(shape, (-10.0, 20.0, -100.0), spacing)
    mask = ellipsoid(shape, spacing, (5.0, 4.0, 4.0), 10)
    image = Volume(np.where(mask, 20, -850).astype(np.int16), g, modality="CT", units="HU")
    seg = Segmentation(
        Volume(mask.astype(np.uint8), g), (Segment(1, "lung nodule 1", finding=True),)
    )
    a = g.index_to_lps(np.array([12.0, 5.0, 5.0]))
    b = g.index_to_lps(np.array([12.0, 5.0, 25.0]))
    ruler = Measurement(Kind.RULER, View.AXIAL, (tuple(a), tuple(b)), "node").to_dict()
    rows = lesion_rows(image, seg, [ruler])
    assert [r.kind for r in rows] == ["segment", "ruler"]
    assert "size band 4A" in rows[0].lung_rads  # mean of ~10 and ~8 mm
    assert rows[1].long_axis_mm == pytest.approx(14.0) and rows[1].slice_number == 13
    assert rows[1].name == "measurement 1 (node)"
