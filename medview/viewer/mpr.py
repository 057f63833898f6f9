"""Multi-planar reformatting by axis permutation: zero-copy plane views in radiological
screen orientation.

Screen conventions (radiological): axial is seen from the feet (patient right on screen left,
anterior at the top); coronal from the front (right on the left, superior at the top); sagittal
from the patient's left (anterior on the left, superior at the top). Each view takes the array
axis whose direction is nearest to the wanted patient axis; for oblique acquisitions the
mapping is marked ``approximate`` (nearest axes, not resampled).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from medview.core.geometry import Geometry


class View(Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
    NATIVE = "native"  # as stored: 2-D images, frame sequences


# (slice normal, screen down, screen right) as (LPS axis, sign); LPS axes: 0=L, 1=P, 2=S
_SCREEN: dict[View, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    View.AXIAL: ((2, 1), (1, 1), (0, 1)),
    View.CORONAL: ((1, 1), (2, -1), (0, 1)),
    View.SAGITTAL: ((0, 1), (2, -1), (1, 1)),
}
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) per LPS axis
OBLIQUE_COS = 0.99


@dataclass(frozen=True)
class PlaneMapping:
    """How one view indexes a ``(z, y, x)`` array.

    ``dims`` are the numpy dimensions used for (slice, row, column); ``flips`` say which of them
    run backwards on screen. ``spacing`` is (slice, row, column) in mm.
    """

    view: View
    dims: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    approximate: bool
    screen_dirs: tuple[np.ndarray, np.ndarray]  # LPS unit vectors of screen down, right
    normal: np.ndarray  # LPS unit vector in which the slice number grows

    def oriented(self, array: np.ndarray) -> np.ndarray:
        """The array as (slice, row, column[, rgb]) in screen orientation (a view, no copy)."""
        extra = tuple(range(3, array.ndim))
        out = np.transpose(array, (*self.dims, *extra))
        index = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return out[index]

    def plane(self, array: np.ndarray, k: int) -> np.ndarray:
        return self.oriented(array)[int(np.clip(k, 0, self.shape[0] - 1))]

    def slab(self, array: np.ndarray, k: int, thickness_mm: float, mode: str) -> np.ndarray:
        """Maximum ("mip") or minimum ("minip") projection over ``thickness_mm`` around
        slice ``k``; a plain slice when the slab is one slice thick."""
        slices = max(1, int(thickness_mm / self.spacing[0] + 0.5))
        half = (slices - 1) // 2
        if half <= 0 or mode not in ("mip", "minip"):
            return self.plane(array, k)
        lo = max(0, k - half)
        hi = min(self.shape[0], k + half + 1)
        block = self.oriented(array)[lo:hi]
        return block.max(axis=0) if mode == "mip" else block.min(axis=0)

    def to_screen(self, zyx: np.ndarray) -> np.ndarray:
        """Continuous array index (z, y, x) -> (slice, row, column) of this view."""
        zyx = np.asarray(zyx, dtype=np.float64)
        out = np.array([zyx[d] for d in self.dims])
        for i, f in enumerate(self.flips):
            if f:
                out[i] = self.shape[i] - 1 - out[i]
        return out

    def from_screen(self, krc: np.ndarray) -> np.ndarray:
        """(slice, row, column) of this view -> continuous array index (z, y, x)."""
        krc = np.asarray(krc, dtype=np.float64).copy()
        for i, f in enumerate(self.flips):
            if f:
                krc[i] = self.shape[i] - 1 - krc[i]
        zyx = np.zeros(3)
        for i, d in enumerate(self.dims):
            zyx[d] = krc[i]
        return zyx

    def edge_labels(self) -> dict[str, str]:
        """Orientation letters for the screen edges (e.g. axial: top A, right L)."""
        down, right = self.screen_dirs
        return {
            "top": _letters(-down),
            "bottom": _letters(down),
            "left": _letters(-right),
            "right": _letters(right),
        }


def _letters(v: np.ndarray) -> str:
    """'L', 'PS', ... : patient directions of a vector, strongest first (ignoring < 0.3)."""
    order = np.argsort(-np.abs(v))
    return "".join(_LETTERS[a][int(v[a] > 0)] for a in order if abs(v[a]) >= 0.3) or "?"


def plane_mapping(geometry: Geometry, view: View) -> PlaneMapping:
    """The mapping of ``view`` for arrays on ``geometry``."""
    nz, ny, nx = geometry.shape
    sizes = {0: nz, 1: ny, 2: nx}  # numpy dim -> length
    # numpy dim of each array axis: x is dim 2, y dim 1, z dim 0
    axis_dim = {0: 2, 1: 1, 2: 0}
    spacing_of_dim = {2: geometry.spacing[0], 1: geometry.spacing[1], 0: geometry.spacing[2]}
    if view is View.NATIVE:
        d = geometry.direction
        return PlaneMapping(
            view,
            (0, 1, 2),
            (False, False, False),
            (nz, ny, nx),
            (spacing_of_dim[0], spacing_of_dim[1], spacing_of_dim[2]),
            False,
            (d[:, 1].copy(), d[:, 0].copy()),
            d[:, 2].copy(),
        )
    d = geometry.direction
    cosines = np.abs(d)  # [lps axis, array axis]
    # assign each LPS axis the array axis nearest to it (greedy, strongest first)
    assignment: dict[int, int] = {}
    for flat in np.argsort(-cosines, axis=None):
        lps, arr = divmod(int(flat), 3)
        if lps not in assignment and arr not in assignment.values():
            assignment[lps] = arr
    approximate = any(cosines[lps, arr] < OBLIQUE_COS for lps, arr in assignment.items())
    dims, flips, spacing, dirs = [], [], [], []
    for lps_axis, wanted in _SCREEN[view]:
        arr = assignment[lps_axis]
        sign = 1 if d[lps_axis, arr] >= 0 else -1
        dims.append(axis_dim[arr])
        flips.append(sign != wanted)
        spacing.append(float(spacing_of_dim[axis_dim[arr]]))
        dirs.append(d[:, arr] * (1 if sign == wanted else -1))
    shape = (sizes[dims[0]], sizes[dims[1]], sizes[dims[2]])
    return PlaneMapping(
        view,
        (dims[0], dims[1], dims[2]),
        (flips[0], flips[1], flips[2]),
        shape,
        (spacing[0], spacing[1], spacing[2]),
        approximate,
        (dirs[1], dirs[2]),
        dirs[0],
    )
