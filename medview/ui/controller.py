"""The Qt face of `ViewerState`: one object that views observe (``changed``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from medview.core.volume import Volume
from medview.viewer.annotations import Kind, Measurement, MeasurementList
from medview.viewer.mpr import View
from medview.viewer.state import ViewerState
from medview.viewer.windowing import Preset, Window


class ViewerController(QObject):
    changed = Signal()
    volume_changed = Signal()
    measurements_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state: ViewerState | None = None
        self.info: dict[str, str] = {}
        self.show_annotations = True
        self.active_view: Any = None
        self.measurements = MeasurementList()
        self.tool: Kind | None = None  # None: navigate (crosshair)
        # the segment editor's brush while it paints or erases: left drags go to it
        # (``press(zyx, axis)``, ``move(zyx)``, ``release()``, ``radius_mm()``)
        self.painter: Any = None
        self.selected: str | None = None
        self.ct_presets: tuple[Preset, ...] | None = None  # user-edited, from preferences

    def set_volume(
        self,
        volume: Volume,
        info: dict[str, str],
        measurements: MeasurementList | list[Measurement] | None = None,
    ) -> None:
        """Show ``volume``; a `MeasurementList` given is used as it is (the window passes the
        session's own, so the views edit what the session keeps)."""
        self.state = ViewerState(volume)
        if self.ct_presets and volume.modality == "CT":
            self.state.presets = self.ct_presets
        self.info = info
        if measurements is not None:
            if not isinstance(measurements, MeasurementList):
                measurements = MeasurementList(measurements)
            self.measurements = measurements
            self.selected = None
        self.volume_changed.emit()
        self.changed.emit()

    # -- measurements -------------------------------------------------------------------------
    def set_tool(self, tool: Kind | None) -> None:
        self.tool = tool
        self.changed.emit()

    def _measurements_edited(self) -> None:
        self.measurements_changed.emit()
        self.changed.emit()

    def add_measurement(self, m: Measurement) -> None:
        self.measurements.add(m)
        self.selected = m.id
        self._measurements_edited()

    def move_point(self, mid: str, index: int, point: tuple[float, float, float]) -> None:
        self.measurements.move_point(mid, index, point)
        self._measurements_edited()

    def set_text(self, mid: str, text: str) -> None:
        m = self.measurements.get(mid)
        if m is not None and m.text != text:
            self.measurements.update(replace(m, text=text))
            self._measurements_edited()

    def select(self, mid: str | None) -> None:
        self.selected = mid
        self.changed.emit()

    def delete_selected(self) -> None:
        if self.selected and self.measurements.get(self.selected):
            self.measurements.remove(self.selected)
            self.selected = None
            self._measurements_edited()

    def set_active(self, view: Any) -> None:
        if self.active_view is not view:
            self.active_view = view
            self.changed.emit()

    def step(self, view: View, delta: int) -> None:
        if self.state is not None and delta:
            self.state.step(view, delta)
            self.changed.emit()

    def go_to(self, view: View, k: int) -> None:
        if self.state is not None:
            self.state.go_to(view, k)
            self.changed.emit()

    def set_point(self, view: View, row: float, col: float) -> None:
        if self.state is not None:
            self.state.set_point(view, row, col)
            self.changed.emit()

    def set_lps(self, lps: object) -> None:
        """Put the crosshair at a patient position (LPS mm), inside the volume (the 3-D view's
        picking)."""
        if self.state is not None:
            import numpy as np

            g = self.state.volume.geometry
            zyx = g.lps_to_index(np.asarray(lps, dtype=np.float64))
            self.state.crosshair = np.clip(zyx, 0, np.array(g.shape, dtype=np.float64) - 1)
            self.changed.emit()

    def set_window(self, window: Window) -> None:
        if self.state is not None:
            self.state.window = window
            self.changed.emit()

    def apply_preset(self, index: int) -> bool:
        if self.state is None or not 0 <= index < len(self.state.presets):
            return False
        self.set_window(self.state.presets[index].window)
        return True

    def toggle_invert(self) -> None:
        if self.state is not None:
            self.state.invert = not self.state.invert
            self.changed.emit()

    def set_slab(self, view: View, mm: float, mode: str = "mip") -> None:
        if self.state is not None:
            self.state.set_slab(view, mm, mode)
            self.changed.emit()

    def set_overlay(self, overlay: object) -> None:
        if self.state is not None:
            self.state.overlay = overlay  # type: ignore[assignment]
            self.changed.emit()

    def toggle_annotations(self) -> None:
        self.show_annotations = not self.show_annotations
        self.changed.emit()
