"""The state shared by linked viewports: one volume, one window, one crosshair.

The crosshair is a continuous array index (z, y, x); every view's slice number derives from
it, so scrolling one view moves the crosshair and the other views follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medview.core.volume import Volume
from medview.viewer.mpr import PlaneMapping, View, plane_mapping
from medview.viewer.overlay import HeatmapOverlay, LabelOverlay
from medview.viewer.windowing import Preset, Window, initial_window, presets_for


@dataclass
class ViewerState:
    volume: Volume
    window: Window = field(init=False)
    presets: tuple[Preset, ...] = field(init=False)
    invert: bool = field(init=False)
    crosshair: np.ndarray = field(init=False)
    # thick slab per view: (thickness mm, "mip" | "minip"); absent means a plain slice
    slabs: dict[View, tuple[float, str]] = field(default_factory=dict)
    overlay: LabelOverlay | None = None
    heatmap: HeatmapOverlay | None = None
    # the segment editor's intensity range, previewed as a tint: (low, high, RGB)
    range_preview: tuple[float, float, tuple[int, int, int]] | None = None
    _mappings: dict[View, PlaneMapping] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        v = self.volume
        sample = v.array[v.shape[0] // 2]
        self.presets = presets_for(v.modality, sample, v.window) if not v.is_color else ()
        self.window = initial_window(v.modality, sample, v.window)
        self.invert = v.invert_display
        self.crosshair = (np.array(v.shape, dtype=np.float64) - 1) / 2

    def mapping(self, view: View) -> PlaneMapping:
        if view not in self._mappings:
            self._mappings[view] = plane_mapping(self.volume.geometry, view)
        return self._mappings[view]

    def slice_index(self, view: View) -> int:
        m = self.mapping(view)
        return int(np.clip(round(m.to_screen(self.crosshair)[0]), 0, m.shape[0] - 1))

    def plane(self, view: View) -> np.ndarray:
        m = self.mapping(view)
        k = self.slice_index(view)
        mm, mode = self.slab(view)
        if mm > 0 and view is not View.NATIVE:
            return m.slab(self.volume.array, k, mm, mode)
        return m.plane(self.volume.array, k)

    def overlay_plane(self, view: View) -> np.ndarray | None:
        """The overlay's labels on ``view``'s current slice (same grid: no resampling)."""
        if self.overlay is None:
            return None
        return self.mapping(view).plane(self.overlay.labels.array, self.slice_index(view))

    def heatmap_plane(self, view: View) -> np.ndarray | None:
        if self.heatmap is None:
            return None
        return self.mapping(view).plane(self.heatmap.heat.array, self.slice_index(view))

    def slab(self, view: View) -> tuple[float, str]:
        return self.slabs.get(view, (0.0, "mip"))

    def set_slab(self, view: View, mm: float, mode: str = "mip") -> None:
        if mm > 0:
            self.slabs[view] = (mm, mode)
        else:
            self.slabs.pop(view, None)

    def step(self, view: View, delta: int) -> None:
        """Move ``delta`` slices along ``view``'s slice axis (clamped)."""
        self.go_to(view, self.slice_index(view) + delta)

    def go_to(self, view: View, k: int) -> None:
        m = self.mapping(view)
        krc = m.to_screen(self.crosshair)
        krc[0] = float(np.clip(k, 0, m.shape[0] - 1))
        self.crosshair = m.from_screen(krc)

    def set_point(self, view: View, row: float, col: float) -> None:
        """Put the crosshair at (row, col) of ``view``'s current slice."""
        m = self.mapping(view)
        krc = np.array([self.slice_index(view), row, col], dtype=np.float64)
        krc[1] = float(np.clip(krc[1], 0, m.shape[1] - 1))
        krc[2] = float(np.clip(krc[2], 0, m.shape[2] - 1))
        self.crosshair = m.from_screen(krc)

    def screen_point(self, view: View) -> tuple[float, float]:
        """(row, col) of the crosshair in ``view``."""
        krc = self.mapping(view).to_screen(self.crosshair)
        return float(krc[1]), float(krc[2])

    def lps_at(self, view: View, row: float, col: float) -> np.ndarray:
        m = self.mapping(view)
        zyx = m.from_screen(np.array([self.slice_index(view), row, col], dtype=np.float64))
        return self.volume.geometry.index_to_lps(zyx)

    def value_at(self, view: View, row: float, col: float) -> float | tuple[int, ...] | None:
        m = self.mapping(view)
        r, c = round(row), round(col)
        if not (0 <= r < m.shape[1] and 0 <= c < m.shape[2]):
            return None
        v = m.plane(self.volume.array, self.slice_index(view))[r, c]
        return tuple(int(x) for x in v) if np.ndim(v) else float(v)
