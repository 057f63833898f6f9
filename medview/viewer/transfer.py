"""Volume-rendering presets of the 3-D view: transfer functions as data (no VTK here).

A preset is a list of control points (value, red, green, blue, opacity) and a blend mode
("composite": shaded rays that stop on what is opaque; "mip": the brightest voxel on each
ray). CT presets are in Hounsfield units; MR presets are in fractions of the volume's
robust range (its 1st to 99.5th percentile), since MR intensities have no absolute scale.

The reader adjusts a preset like a window: dragging shifts the points (level) and stretches
them about their centre (width). `TransferFunction.adjusted` does that on the data, so the
scene and the tests agree on what a drag does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

Point = tuple[float, float, float, float, float]  # value, r, g, b, opacity


@dataclass(frozen=True)
class Preset3D:
    name: str
    modalities: tuple[str, ...]  # () suits any modality
    points: tuple[Point, ...]
    blend: str = "composite"  # or "mip"
    relative: bool = False  # values are fractions of the robust range (MR)
    shade: bool = True


PRESETS: tuple[Preset3D, ...] = (
    Preset3D(
        "CT bone",
        ("CT",),
        (
            (-1000.0, 0.0, 0.0, 0.0, 0.0),
            (140.0, 0.55, 0.25, 0.15, 0.0),
            (220.0, 0.85, 0.55, 0.35, 0.25),
            (450.0, 0.95, 0.9, 0.8, 0.75),
            (1400.0, 1.0, 1.0, 0.95, 0.9),
        ),
    ),
    Preset3D(
        "CT soft tissue",
        ("CT",),
        (
            (-1000.0, 0.0, 0.0, 0.0, 0.0),
            (-200.0, 0.55, 0.3, 0.2, 0.0),
            (-20.0, 0.75, 0.45, 0.35, 0.08),
            (60.0, 0.85, 0.35, 0.3, 0.3),
            (250.0, 0.95, 0.85, 0.75, 0.6),
            (1200.0, 1.0, 1.0, 1.0, 0.85),
        ),
    ),
    Preset3D(
        "CT lung",
        ("CT",),
        (
            (-1000.0, 0.0, 0.0, 0.0, 0.0),
            (-900.0, 0.3, 0.45, 0.6, 0.0),
            (-700.0, 0.55, 0.7, 0.85, 0.06),
            (-300.0, 0.85, 0.55, 0.45, 0.25),
            (-150.0, 0.9, 0.6, 0.5, 0.0),
        ),
    ),
    Preset3D(
        "CT angiography (MIP)",
        ("CT",),
        ((0.0, 0.0, 0.0, 0.0, 0.0), (150.0, 0.2, 0.2, 0.2, 0.2), (600.0, 1.0, 1.0, 1.0, 1.0)),
        blend="mip",
        shade=False,
    ),
    Preset3D(
        "MR default",
        ("MR",),
        (
            (0.0, 0.0, 0.0, 0.0, 0.0),
            (0.2, 0.45, 0.35, 0.3, 0.0),
            (0.45, 0.8, 0.7, 0.6, 0.25),
            (1.0, 1.0, 1.0, 0.95, 0.8),
        ),
        relative=True,
    ),
    Preset3D(
        "MR MIP",
        ("MR",),
        ((0.0, 0.0, 0.0, 0.0, 0.0), (0.15, 0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0, 1.0)),
        blend="mip",
        relative=True,
        shade=False,
    ),
    Preset3D(
        "Default",
        (),
        ((0.0, 0.0, 0.0, 0.0, 0.0), (0.3, 0.6, 0.5, 0.4, 0.0), (1.0, 1.0, 1.0, 1.0, 0.8)),
        relative=True,
    ),
)


def presets_for(modality: str) -> tuple[Preset3D, ...]:
    """The presets that suit ``modality``: its own first, then those that suit any."""
    own = tuple(p for p in PRESETS if modality in p.modalities)
    return own + tuple(p for p in PRESETS if not p.modalities)


def robust_range(array: np.ndarray) -> tuple[float, float]:
    """1st and 99.5th percentiles, on a strided sample (the whole volume is not needed)."""
    step = max(1, round((array.size / 2_000_000) ** (1 / 3)))
    sample = np.asarray(array[::step, ::step, ::step], dtype=np.float32)
    lo, hi = np.percentile(sample, [1.0, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


@dataclass(frozen=True)
class TransferFunction:
    """A preset placed on one volume's values, and the reader's adjustment of it."""

    preset: Preset3D
    points: tuple[Point, ...]  # absolute values
    shift: float = 0.0  # added to every point's value
    scale: float = 1.0  # spread about the points' centre

    @classmethod
    def of(cls, preset: Preset3D, array: np.ndarray | None = None) -> TransferFunction:
        points = preset.points
        if preset.relative:
            lo, hi = robust_range(array) if array is not None else (0.0, 1.0)
            points = tuple((lo + v * (hi - lo), r, g, b, a) for v, r, g, b, a in points)
        return cls(preset, points)

    @property
    def centre(self) -> float:
        values = [p[0] for p in self.points if p[4] > 0] or [p[0] for p in self.points]
        return (min(values) + max(values)) / 2

    @property
    def span(self) -> float:
        values = [p[0] for p in self.points]
        return max(values) - min(values)

    def adjusted(self, d_level: float, d_width: float) -> TransferFunction:
        """Shifted by ``d_level`` and widened by the factor ``1 + d_width`` (a drag)."""
        scale = float(np.clip(self.scale * (1.0 + d_width), 0.05, 20.0))
        return replace(self, shift=self.shift + d_level, scale=scale)

    def placed(self) -> tuple[Point, ...]:
        """The points after the adjustment, in increasing value."""
        c = self.centre
        out = [(c + (v - c) * self.scale + self.shift, r, g, b, a) for v, r, g, b, a in self.points]
        return tuple(sorted(out, key=lambda p: p[0]))

    def opacity_at(self, value: float) -> float:
        pts = self.placed()
        return float(np.interp(value, [p[0] for p in pts], [p[4] for p in pts]))
