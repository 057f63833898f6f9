"""The Segment Editor's mouse tools in the slice views: the brush (and eraser) and the
scissors. The views call ``press``, ``move`` and ``release`` with voxel positions; the tools
edit the working segmentation through the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject

from medview.segedit import tools

if TYPE_CHECKING:
    from medview.ui.segment_editor import SegmentEditorDock


class Brush(QObject):
    """Paints (or erases) the selected segment where the left button drags in a slice
    view: each dab is shown at once, the whole stroke is one undo step."""

    def __init__(self, dock: SegmentEditorDock) -> None:
        super().__init__(dock)
        self.dock = dock
        self.erase = False
        self._last: np.ndarray | None = None
        self._axis = 0

    def radius_mm(self) -> float:
        return float(self.dock.size_mm.value())

    def _dab(self, zyx: np.ndarray) -> None:
        d = self.dock
        value = d.selected_value()
        if value is None:
            return
        spacing = np.asarray(d.session.volume.geometry.spacing)[::-1]  # type: ignore[union-attr]
        points = [zyx]
        if self._last is not None:  # fill the gaps of a fast drag: a dab every half radius
            gap = float(np.linalg.norm((zyx - self._last) * spacing))
            steps = int(gap / max(self.radius_mm() / 2, 0.1))
            points = [self._last + (zyx - self._last) * (k + 1) / (steps + 1) for k in range(steps)]
            points.append(zyx)
        self._last = zyx
        d.session.edit(
            tools.paint,
            [tuple(p) for p in points],
            self.radius_mm(),
            value,
            axis=None if d.sphere.isChecked() else self._axis,
            erase=self.erase,
            intensity=d.intensity() if not self.erase else None,
            overwrite=d.overwrite.isChecked(),
        )

    def press(self, zyx: np.ndarray, axis: int) -> None:
        self._axis, self._last = axis, None
        if self.dock.selected_value() is None:
            self.dock.say("Select (or add) a segment to paint.")
            return
        self.dock.session.segment_editor().begin_group()
        self.dock.attempt(lambda: self._dab(zyx))

    def move(self, zyx: np.ndarray) -> None:
        self.dock.attempt(lambda: self._dab(zyx))

    def release(self) -> None:
        editor = self.dock.session.editor
        if editor is not None:
            editor.end_group("erase" if self.erase else "paint")
        self._last = None


class Scissors(QObject):
    """Cuts the selected segment with an outline drawn in a slice view, through the whole
    volume along the view's direction (inside the outline, or outside it)."""

    def __init__(self, dock: SegmentEditorDock) -> None:
        super().__init__(dock)
        self.dock = dock
        self.points: list[np.ndarray] = []
        self._axis = 0

    def radius_mm(self) -> float:
        return 0.0

    def outline(self) -> list[np.ndarray]:
        return self.points

    def press(self, zyx: np.ndarray, axis: int) -> None:
        self._axis, self.points = axis, [zyx]

    def move(self, zyx: np.ndarray) -> None:
        self.points.append(zyx)

    def release(self) -> None:
        d, points, self.points = self.dock, self.points, []
        value = d.selected_value()
        if value is None:
            d.say("Select a segment first.")
            return
        keep = d.keep_inside.isChecked()
        d.attempt(
            lambda: d.session.edit(
                tools.scissors, value, [tuple(p) for p in points], self._axis, keep_inside=keep
            )
        )
