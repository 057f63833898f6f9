"""Siemens mosaics: one stored image holding a tile per slice (EPI, DWI), unpacked into slices
with their real positions, from the CSA image header read by nibabel's ``csareader``.

The stored ImagePositionPatient is the corner of the whole mosaic, not of a slice: the first
slice's corner lies (mosaic size - tile size) / 2 pixels further along the row and column
directions (as nibabel's ``MosaicWrapper`` and dcm2niix compute it); slice k lies k slice
spacings along the CSA slice normal. A mosaic whose CSA header is missing, damaged or names an
impossible tile count is left as the stored image with a warning: never a wrong volume.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Mosaic:
    """How to cut a stored mosaic: ``tiles`` slices of ``tile_rows`` x ``tile_cols`` from a
    ``rows`` x ``cols`` image, ``side`` tiles to a row; ``positions``: each slice's corner."""

    tiles: int
    side: int
    rows: int
    cols: int
    tile_rows: int
    tile_cols: int
    positions: tuple[Vec3, ...]


def mosaic_layout(
    ds: Any,
    rows: int,
    cols: int,
    orientation: tuple[float, ...] | None,
    position: tuple[float, ...] | None,
    pixel_spacing: tuple[float, ...] | None,
) -> tuple[Mosaic | None, str | None]:
    """The layout of a Siemens mosaic, or (None, why it cannot be unpacked)."""
    with warnings.catch_warnings():  # nibabel warns about its DICOM wrappers, not csareader
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import csareader

    try:
        csa = csareader.get_csa_header(ds, "image")
        n = csareader.get_n_mosaic(csa) if csa else None
        normal = csareader.get_slice_normal(csa) if csa else None
    except Exception as e:  # a damaged private header is data, not a crash
        return None, f"Siemens mosaic with an unreadable CSA header ({type(e).__name__})"
    if not n:
        return None, "Siemens mosaic without NumberOfImagesInMosaic in its CSA header"
    n = int(n)
    side = math.ceil(math.sqrt(n))
    if n < 1 or side * side < n or rows % side or cols % side or side > rows:
        return None, f"Siemens mosaic with an impossible tile count ({n} in {rows}x{cols})"
    if orientation is None or position is None or pixel_spacing is None:
        return None, "Siemens mosaic without position, orientation or pixel spacing"
    tr, tc = rows // side, cols // side
    row_dir = np.asarray(orientation[:3], dtype=np.float64)
    col_dir = np.asarray(orientation[3:6], dtype=np.float64)
    if normal is None or not np.all(np.isfinite(normal)) or np.linalg.norm(normal) < 0.5:
        normal = np.cross(row_dir, col_dir)
    normal = np.asarray(normal, dtype=np.float64) / np.linalg.norm(normal)
    ps_row, ps_col = float(pixel_spacing[0]), float(pixel_spacing[1])
    first = (
        np.asarray(position, dtype=np.float64)
        + row_dir * ((cols - tc) / 2 * ps_col)
        + col_dir * ((rows - tr) / 2 * ps_row)
    )
    gap = _slice_gap(ds)
    positions = tuple(
        (float(p[0]), float(p[1]), float(p[2]))
        for p in (first + k * gap * normal for k in range(n))
    )
    return Mosaic(n, side, rows, cols, tr, tc, positions), None


def _slice_gap(ds: Any) -> float:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = float(ds.get(keyword) or 0)
        except (TypeError, ValueError):
            value = 0.0
        if math.isfinite(value) and value > 0:
            return value
    return 1.0


def unpack(image: np.ndarray, tiles: int, tile_rows: int, tile_cols: int) -> np.ndarray:
    """The slices ``(tiles, tile_rows, tile_cols)`` of a stored mosaic ``(rows, cols)``, tile
    k from row k // side, column k % side."""
    side = image.shape[1] // tile_cols
    out = np.empty((tiles, tile_rows, tile_cols), dtype=image.dtype)
    for k in range(tiles):
        r, c = divmod(k, side)
        out[k] = image[r * tile_rows : (r + 1) * tile_rows, c * tile_cols : (c + 1) * tile_cols]
    return out
