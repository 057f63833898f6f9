"""Phantoms and projections the 3-D tests share: a grid placed in LPS, a ball with a
partial-volume edge, the lit pixels of a rendering, where an LPS point lands on screen."""

from __future__ import annotations

import numpy as np

from medview.core.geometry import Geometry


def grid(shape: tuple[int, int, int], spacing: float, centre: np.ndarray, direction: np.ndarray):  # type: ignore[no-untyped-def]
    """A geometry of ``shape`` whose middle voxel is at LPS ``centre``."""
    mid = (np.array(shape[::-1], dtype=np.float64) - 1) / 2 * spacing  # x, y, z mm
    origin = centre - direction @ mid
    return Geometry(shape, origin, (spacing,) * 3, direction)


def lps_of(g: Geometry) -> np.ndarray:
    idx = np.stack(np.indices(g.shape), axis=-1).astype(np.float64)
    return g.index_to_lps(idx)


def ball(g: Geometry, centre: np.ndarray, radius: float, inside: float = 1000.0) -> np.ndarray:
    """A ball with a one-voxel partial-volume edge (as a scanner's band-limited image)."""
    d = np.linalg.norm(lps_of(g) - centre, axis=-1)
    frac = np.clip((radius - d) / float(g.spacing[0]) + 0.5, 0.0, 1.0)
    return (-1000.0 + (inside + 1000.0) * frac).astype(np.int16)


def lit(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the rendering that show something, outside the orientation cube's corner."""
    mask = rgb.max(axis=-1) > 8
    h, w = mask.shape
    mask[int(h * 0.84) :, : int(w * 0.16) + 1] = False
    return mask


def project(scene, lps: np.ndarray) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(x, y) pixel of LPS point ``lps`` in the scene's parallel projection (from the top
    left, pixel centres at integers) and the pixels per millimetre."""
    cam = scene.renderer.GetActiveCamera()
    w, h = scene.window.GetSize()
    px_per_mm = h / (2 * cam.GetParallelScale())
    up = np.array(cam.GetViewUp())
    right = np.cross(np.array(cam.GetDirectionOfProjection()), up)
    offset = np.asarray(lps) - np.array(cam.GetFocalPoint())
    return (
        (w - 1) / 2 + float(offset @ right) * px_per_mm,
        (h - 1) / 2 - float(offset @ up) * px_per_mm,
        px_per_mm,
    )
