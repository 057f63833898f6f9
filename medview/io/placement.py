"""Put a label map from another object (a SEG's own grid, a NIfTI file) onto a series' grid.

When the other grid is the series' grid up to whole-voxel shifts, flips and axis permutations
(what a SEG written on the series' planes, or a NIfTI of the same series stored with another
axis order, is) the voxels are copied unchanged. Anything else is resampled by nearest
neighbour, and the notes say so. Labelled voxels that fall outside the series' grid are
counted in a note, never dropped silently.
"""

from __future__ import annotations

import numpy as np

from medview.core.geometry import Geometry
from medview.core.tasks import NEVER_CANCELLED, CancelToken

SHIFT_TOL = 0.01  # voxels: a whole-voxel shift off by less than this is whole
AXIS_TOL = 1e-3  # an axis maps onto one of the series' axes when off by less than this


def zyx_affine(geometry: Geometry) -> np.ndarray:
    """4x4 map from homogeneous (slice, row, column, 1) indices to LPS mm."""
    a = np.eye(4)
    ds = geometry.direction * geometry.spacing[np.newaxis, :]
    a[:3, 0], a[:3, 1], a[:3, 2] = ds[:, 2], ds[:, 1], ds[:, 0]
    a[:3, 3] = geometry.origin
    return a


def _as_permutation(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The signed permutation ``m``'s linear part is (axes of size 1 may have any scale), or
    None."""
    lin = m[:3, :3].copy()
    for a, n in enumerate(shape):
        norm = np.linalg.norm(lin[:, a])
        if n == 1 and norm > 0:
            lin[:, a] /= norm
    r = np.round(lin)
    if np.abs(lin - r).max() > AXIS_TOL:
        return None
    if not (np.abs(r).sum(axis=0) == 1).all() or not (np.abs(r).sum(axis=1) == 1).all():
        return None
    return r


def place_on_grid(
    array: np.ndarray,
    affine: np.ndarray,
    geometry: Geometry,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[np.ndarray, list[str]]:
    """``array`` (its axes mapped to LPS by ``affine``, 4x4, homogeneous index (a0, a1, a2,
    1) -> LPS mm) on ``geometry``'s grid (z, y, x), same dtype, with notes."""
    notes: list[str] = []
    m = np.linalg.inv(zyx_affine(geometry)) @ np.asarray(affine, dtype=np.float64)
    out = np.zeros(geometry.shape, dtype=array.dtype)
    perm = _as_permutation(m, array.shape[:3])
    t = m[:3, 3]
    if perm is not None and np.abs(t - np.round(t)).max() <= SHIFT_TOL:
        start = np.round(t).astype(np.int64)
        order, flips = [], []
        for b in range(3):  # our axis b takes the source axis a with sign s
            a = int(np.flatnonzero(perm[b])[0])
            order.append(a)
            flips.append(perm[b, a] < 0)
        moved = np.transpose(array, order)
        lo = start.copy()
        for b in range(3):
            if flips[b]:
                moved = np.flip(moved, axis=b)
                lo[b] = start[b] - (moved.shape[b] - 1)
        src: list[slice] = []
        dst: list[slice] = []
        for b in range(3):
            a0, a1 = max(lo[b], 0), min(lo[b] + moved.shape[b], geometry.shape[b])
            if a1 <= a0:
                src = []
                break
            src.append(slice(a0 - lo[b], a1 - lo[b]))
            dst.append(slice(a0, a1))
        inside = 0
        if src:
            out[tuple(dst)] = moved[tuple(src)]
            inside = int(np.count_nonzero(out))
        outside = int(np.count_nonzero(array)) - inside
        if outside:
            notes.append(
                f"{outside} labelled voxel(s) lie outside the series' grid (beyond its slices "
                "or edges); they are not shown"
            )
        return out, notes
    notes.append(
        "the label map is on another grid than the series' (other spacing, orientation or "
        "position): resampled onto the series' grid by nearest neighbour"
    )
    from scipy import ndimage

    inv = np.linalg.inv(m)  # our (z, y, x) -> source indices
    # only the series' voxels inside the source's extent are looked up
    n = np.array(array.shape[:3]) - 1
    corners = np.array([[i, j, k, 1] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
    ours = (m @ corners.T).T[:, :3]
    lo = np.clip(np.floor(ours.min(axis=0)).astype(int) - 1, 0, None)
    hi = np.minimum(np.ceil(ours.max(axis=0)).astype(int) + 2, geometry.shape)
    if (hi <= lo).any():
        notes.append("the label map lies wholly outside the series' grid: nothing is shown")
        return out, notes
    yy, xx = np.mgrid[lo[1] : hi[1], lo[2] : hi[2]]
    for z in range(lo[0], hi[0]):
        cancel.raise_if_cancelled()
        pts = np.stack([np.full(yy.shape, z), yy, xx, np.ones(yy.shape)], axis=0).reshape(4, -1)
        src = (inv @ pts)[:3]
        plane = ndimage.map_coordinates(array, src, order=0, mode="constant", cval=0)
        out[z, lo[1] : hi[1], lo[2] : hi[2]] = plane.reshape(yy.shape)
    return out, notes
