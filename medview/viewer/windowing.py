"""Window/level: presets (CT in HU), automatic windows for MR, and their maths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A display window: values ``center - width/2`` .. ``center + width/2`` map to black..white."""

    center: float
    width: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", max(float(self.width), 1e-6))

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2

    def dragged(self, dx: float, dy: float, scale: float) -> Window:
        """Horizontal drag changes the width (right: wider), vertical drag the level (up:
        higher level, darker image). ``dx``/``dy`` in screen pixels (y grows downwards);
        ``scale`` is value units per pixel."""
        return Window(self.center - dy * scale, self.width + dx * scale)


@dataclass(frozen=True)
class Preset:
    name: str
    window: Window


# Widely used CT windows (HU), in the order of the number keys 1..8.
CT_PRESETS: tuple[Preset, ...] = (
    Preset("Brain", Window(40, 80)),
    Preset("Subdural", Window(75, 215)),
    Preset("Stroke", Window(40, 40)),
    Preset("Lung", Window(-600, 1500)),
    Preset("Mediastinum", Window(50, 350)),
    Preset("Abdomen", Window(40, 400)),
    Preset("Liver", Window(30, 150)),
    Preset("Bone", Window(400, 1800)),
)


def auto_window(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> Window:
    """A window from percentiles of (a sample of) the values, ignoring the background mode
    where it dominates (MR air)."""
    flat = np.asarray(values).ravel()
    if flat.size > 1_000_000:
        flat = flat[:: flat.size // 1_000_000 + 1]
    if flat.size == 0:
        return Window(0, 1)
    lo, hi = np.percentile(flat, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        hi = lo + 1
    return Window((lo + hi) / 2, hi - lo)


def presets_for(
    modality: str, values: np.ndarray, header: tuple[float, float] | None
) -> tuple[Preset, ...]:
    """Presets offered on the number keys: CT windows for CT; for other modalities the
    header window (if any) and percentile windows."""
    if modality == "CT":
        return CT_PRESETS
    out = []
    if header:
        out.append(Preset("Header", Window(header[0], header[1])))
    out.append(Preset("Auto 1-99 %", auto_window(values, 1, 99)))
    out.append(Preset("Auto 0.5-99.5 %", auto_window(values, 0.5, 99.5)))
    out.append(Preset("Full range", auto_window(values, 0, 100)))
    return tuple(out)


def initial_window(modality: str, values: np.ndarray, header: tuple[float, float] | None) -> Window:
    if header:
        return Window(header[0], header[1])
    if modality == "CT":
        return CT_PRESETS[5].window  # abdomen / soft tissue
    return auto_window(values)
