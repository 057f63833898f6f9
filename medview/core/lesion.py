"""Size of a lesion from its mask: volume, the RECIST 1.1-style longest in-plane diameter and
the short axis perpendicular to it on the slice where the long axis is longest, the mean image
value and the centre in patient (LPS) millimetres.

"In-plane" is the series' slice plane (axial for an axial CT). Diameters run between pixel
centres plus one pixel, so a one-pixel lesion is one pixel wide. The click models and the
report's lesion table measure with this one function.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from medview.core.geometry import Geometry


@dataclass(frozen=True)
class LesionMeasures:
    """``slice_index`` is the 0-based slice (first array axis) of the longest diameter."""

    volume_ml: float
    long_axis_mm: float
    short_axis_mm: float
    slice_index: int
    mean: float
    centre_lps: tuple[float, float, float]


def in_plane_axes(points: np.ndarray, pixel: float) -> tuple[float, float]:
    """Longest chord of in-plane pixel centres ``points`` (n, 2) in mm and the extent
    perpendicular to it, each plus one ``pixel`` (mm)."""
    if len(points) > 3:
        from scipy.spatial import ConvexHull, QhullError

        with contextlib.suppress(QhullError):  # collinear pixels: all of them
            points = points[ConvexHull(points).vertices]
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    long = float(d[i, j])
    if long == 0:
        return pixel, pixel
    u = (points[j] - points[i]) / long
    perp = points @ np.array([-u[1], u[0]])
    return long + pixel, float(perp.max() - perp.min()) + pixel


def measure_mask(
    values: np.ndarray,
    mask: np.ndarray,
    geometry: Geometry,
    offset: tuple[int, int, int] = (0, 0, 0),
) -> LesionMeasures:
    """Measures of ``mask`` (z, y, x), a block of ``geometry``'s grid starting at ``offset``;
    ``values`` is the image on the same block."""
    sx, sy, sz = (float(v) for v in geometry.spacing)
    best = (0.0, 0.0, 0)
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        rows, cols = np.nonzero(mask[k])
        pts = np.stack([cols * sx, rows * sy], axis=1)
        long, short = in_plane_axes(pts, (sx + sy) / 2)
        if long > best[0]:
            best = (long, short, int(k))
    if not mask.any():
        return LesionMeasures(0.0, 0.0, 0.0, 0, float("nan"), (float("nan"),) * 3)
    zyx = np.argwhere(mask).mean(axis=0) + np.asarray(offset)
    return LesionMeasures(
        volume_ml=float(mask.sum()) * sx * sy * sz / 1000.0,
        long_axis_mm=best[0],
        short_axis_mm=best[1],
        slice_index=best[2] + int(offset[0]),
        mean=float(np.asarray(values, dtype=np.float64)[mask].mean()),
        centre_lps=tuple(float(v) for v in geometry.index_to_lps(zyx)),  # type: ignore[arg-type]
    )
