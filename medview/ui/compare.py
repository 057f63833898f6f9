"""Two series side by side; scrolling and the crosshair stay in step when both series share
a frame of reference (the same patient position maps to the same point in both)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from medview.ui.controller import ViewerController


class CrosshairSync(QObject):
    """Keeps two controllers' crosshairs on the same LPS point (same frame of reference)."""

    def __init__(
        self, a: ViewerController, b: ViewerController, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.a, self.b = a, b
        self.enabled = True
        self._busy = False
        a.changed.connect(lambda: self._follow(a, b))
        b.changed.connect(lambda: self._follow(b, a))

    def linked(self) -> bool:
        sa, sb = self.a.state, self.b.state
        return bool(
            self.enabled
            and sa is not None
            and sb is not None
            and sa.volume.frame_of_reference_uid
            and sa.volume.frame_of_reference_uid == sb.volume.frame_of_reference_uid
        )

    def _follow(self, src: ViewerController, dst: ViewerController) -> None:
        if self._busy or not self.linked():
            return
        assert src.state is not None and dst.state is not None
        lps = src.state.volume.geometry.index_to_lps(src.state.crosshair)
        target = dst.state.volume.geometry.lps_to_index(lps)
        target = np.clip(target, 0, np.array(dst.state.volume.shape) - 1)
        if np.allclose(target, dst.state.crosshair, atol=1e-6):
            return
        self._busy = True
        try:
            dst.state.crosshair = target
            dst.changed.emit()
        finally:
            self._busy = False
