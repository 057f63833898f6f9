"""Label overlays on the viewed grid: colours, opacity, per-label visibility, outline mode.

The label volume has exactly the image's geometry (the AI engine returns results on the
source grid), so a view slices both with the same mapping and never resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medview.core.volume import Volume
from medview.viewer.render import blend_labels, label_colors


@dataclass
class LabelOverlay:
    labels: Volume
    colors: dict[int, tuple[int, int, int]]
    names: dict[int, str]
    opacity: float = 0.4
    outline: bool = False
    hidden: set[int] = field(default_factory=set)
    caption: str = ""  # provenance line shown with the overlay

    def table(self) -> np.ndarray:
        return label_colors({v: c for v, c in self.colors.items() if v not in self.hidden})

    def blend(self, argb: np.ndarray, labels_plane: np.ndarray) -> np.ndarray:
        """Blend this overlay's labels for one plane over ``argb`` (in place)."""
        plane = labels_plane
        if self.outline:
            plane = outline(plane)
        return blend_labels(argb, np.ascontiguousarray(plane), self.table(), self.opacity)

    def largest_section(self, value: int) -> tuple[int, int, int] | None:
        """(z, y, x) index at the centre of the axial slice where ``value`` is largest."""
        mask = self.labels.array == value
        per_slice = mask.reshape(mask.shape[0], -1).sum(axis=1)
        if not per_slice.any():
            return None
        z = int(np.argmax(per_slice))
        ys, xs = np.nonzero(mask[z])
        return z, round(float(ys.mean())), round(float(xs.mean()))


def outline(plane: np.ndarray) -> np.ndarray:
    """Keep only label pixels that touch a different value (4-neighbourhood)."""
    edge = np.zeros(plane.shape, dtype=bool)
    edge[1:, :] |= plane[1:, :] != plane[:-1, :]
    edge[:-1, :] |= plane[:-1, :] != plane[1:, :]
    edge[:, 1:] |= plane[:, 1:] != plane[:, :-1]
    edge[:, :-1] |= plane[:, :-1] != plane[:, 1:]
    return np.where(edge, plane, 0).astype(plane.dtype)


def heat_colors() -> np.ndarray:
    """A 256-entry blue-cyan-yellow-red table (ARGB32) for 0..1 heat values."""
    t = np.linspace(0, 1, 256)
    r = np.clip(1.5 - np.abs(4 * t - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * t - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * t - 1), 0, 1)
    rgb = (np.stack([r, g, b], axis=1) * 255).astype(np.uint32)
    return np.uint32(0xFF000000) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


@dataclass
class HeatmapOverlay:
    """A 0..1 map (e.g. Grad-CAM) on the image's grid, drawn with a colour map; values below
    ``threshold`` stay transparent so the anatomy shows through."""

    heat: Volume
    opacity: float = 0.5
    threshold: float = 0.2
    caption: str = ""

    def blend(self, argb: np.ndarray, plane: np.ndarray) -> np.ndarray:
        mask = plane >= self.threshold
        if not mask.any():
            return argb
        codes = np.clip(plane[mask] * 255, 0, 255).astype(np.uint8)
        over = heat_colors()[codes]
        base = argb[mask]
        a = round(self.opacity * 256)
        out = np.zeros_like(base)
        for shift in (0, 8, 16):
            c0 = (base >> shift) & 0xFF
            c1 = (over >> shift) & 0xFF
            out |= (((c0 * (256 - a) + c1 * a) >> 8) & 0xFF) << shift
        argb[mask] = out | np.uint32(0xFF000000)
        return argb
