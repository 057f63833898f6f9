"""Measurement maths: distances and angles in patient mm, ROI statistics on a plane."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def distance_mm(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two LPS points (mm)."""
    return float(np.linalg.norm(np.asarray(b, float) - np.asarray(a, float)))


def angle_deg(a: np.ndarray, vertex: np.ndarray, b: np.ndarray) -> float:
    """Angle at ``vertex`` between the rays to ``a`` and ``b`` (degrees, 0..180)."""
    u = np.asarray(a, float) - np.asarray(vertex, float)
    v = np.asarray(b, float) - np.asarray(vertex, float)
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / (nu * nv), -1, 1))))


def ellipse_mask(shape: tuple[int, int], r0: float, c0: float, r1: float, c1: float) -> np.ndarray:
    """Pixels whose centres lie inside the ellipse inscribed in the box (r0, c0)-(r1, c1)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    rc, cc = (r0 + r1) / 2, (c0 + c1) / 2
    ry, rx = max(abs(r1 - r0) / 2, 1e-9), max(abs(c1 - c0) / 2, 1e-9)
    return ((rows - rc) / ry) ** 2 + ((cols - cc) / rx) ** 2 <= 1.0


def rectangle_mask(
    shape: tuple[int, int], r0: float, c0: float, r1: float, c1: float
) -> np.ndarray:
    """Pixels whose centres lie inside the box (r0, c0)-(r1, c1)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (
        (rows >= min(r0, r1))
        & (rows <= max(r0, r1))
        & (cols >= min(c0, c1))
        & (cols <= max(c0, c1))
    )


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the values inside an ROI; ``area_mm2`` from the geometric shape."""

    area_mm2: float
    pixels: int
    mean: float
    sd: float
    min: float
    max: float


def roi_stats(plane: np.ndarray, mask: np.ndarray, area_mm2: float) -> RoiStats:
    values = plane[mask].astype(np.float64)
    if values.size == 0:
        return RoiStats(area_mm2, 0, float("nan"), float("nan"), float("nan"), float("nan"))
    return RoiStats(
        area_mm2,
        int(values.size),
        float(values.mean()),
        float(values.std(ddof=1)) if values.size > 1 else 0.0,
        float(values.min()),
        float(values.max()),
    )


def ellipse_area_mm2(
    r0: float, c0: float, r1: float, c1: float, spacing_rc: tuple[float, float]
) -> float:
    return float(np.pi * abs(r1 - r0) / 2 * spacing_rc[0] * abs(c1 - c0) / 2 * spacing_rc[1])


def rectangle_area_mm2(
    r0: float, c0: float, r1: float, c1: float, spacing_rc: tuple[float, float]
) -> float:
    return float(abs(r1 - r0) * spacing_rc[0] * abs(c1 - c0) * spacing_rc[1])
