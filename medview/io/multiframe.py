"""Enhanced multi-frame headers: the per-frame and shared functional groups, each frame's geometry
and diffusion encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from medview.io import diffusion

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
from medview.io.header_values import (
    TEXT_TAGS,  # noqa: F401  (re-exported)
    _f,
    _positive,
    _vec,
)


def _item(seq_owner: Dataset | None, keyword: str) -> Dataset | None:
    """First item of a sequence, or None."""
    if seq_owner is None:
        return None
    try:
        seq = seq_owner.get(keyword)
        return seq[0] if seq else None
    except Exception:  # an invalid optional value counts as absent
        return None


def _functional(groups: Sequence[Dataset | None], seq_kw: str) -> Dataset | None:
    """First of the groups (per-frame, then shared) that carries ``seq_kw``."""
    for g in groups:
        it = _item(g, seq_kw)
        if it is not None:
            return it
    return None


def _multiframe_geometry(
    ds: Dataset, frames: int
) -> tuple[
    tuple[float, float] | None,
    float | None,
    tuple[float, ...] | None,
    tuple[tuple[float, float, float], ...] | None,
    tuple[tuple[float, float], ...] | None,
    tuple[str, ...],
]:
    """Spacing, thickness, orientation, per-frame positions and rescale of an enhanced
    multi-frame image (per-frame and shared functional groups)."""
    flags: list[str] = []
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    try:
        per_frame: Sequence[Dataset] = ds.get("PerFrameFunctionalGroupsSequence") or []
    except Exception:  # an invalid optional value counts as absent
        per_frame = []
    if len(per_frame) != frames:
        return None, None, None, None, None, tuple(flags)
    positions: list[tuple[float, float, float]] = []
    rescale: list[tuple[float, float]] = []
    orientation: tuple[float, ...] | None = None
    spacing: tuple[float, ...] | None = None
    thickness: float | None = None
    for fg in per_frame:
        groups = (fg, shared)
        pos = _vec(_functional(groups, "PlanePositionSequence"), "ImagePositionPatient", 3)
        ori = _vec(_functional(groups, "PlaneOrientationSequence"), "ImageOrientationPatient", 6)
        pm = _functional(groups, "PixelMeasuresSequence")
        if pos is None or ori is None:
            return None, None, None, None, None, tuple(flags)
        if orientation is None:
            orientation = ori
        elif max(abs(a - b) for a, b in zip(ori, orientation, strict=True)) > 1e-4:
            flags.append("frames have different orientations")
            return None, None, None, None, None, tuple(flags)
        if spacing is None and pm is not None:
            spacing = _positive(_vec(pm, "PixelSpacing", 2))
            thickness = _f(pm, "SliceThickness")
        positions.append((pos[0], pos[1], pos[2]))
        pvt = _functional(groups, "PixelValueTransformationSequence")
        if pvt is not None:
            rescale.append(
                (_f(pvt, "RescaleSlope", 1.0) or 1.0, _f(pvt, "RescaleIntercept", 0.0) or 0.0)
            )
    sp = (spacing[0], spacing[1]) if spacing else None
    return sp, thickness, orientation, tuple(positions), (tuple(rescale) or None), tuple(flags)


def _frame_diffusion(
    ds: Dataset, frames: int
) -> tuple[tuple[float, tuple[float, float, float] | None] | None, ...] | None:
    """Each frame's b-value and direction from the MR Diffusion functional group of an
    enhanced MR image, or None when no frame carries one."""
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    try:
        per_frame: Sequence[Dataset] = ds.get("PerFrameFunctionalGroupsSequence") or []
    except Exception:  # an invalid optional value counts as absent
        return None
    if len(per_frame) != frames:
        return None
    out: list[tuple[float, tuple[float, float, float] | None] | None] = []
    for fg in per_frame:
        item = _functional((fg, shared), "MRDiffusionSequence")
        b = _f(item, "DiffusionBValue") if item is not None else None
        if b is None:
            out.append(None)
            continue
        direction = _vec(
            _item(item, "DiffusionGradientDirectionSequence"), "DiffusionGradientOrientation", 3
        )
        out.append((b, diffusion.unit(direction)))
    return tuple(out) if any(e is not None for e in out) else None
