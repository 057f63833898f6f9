"""The 3-D view's drawing surface: it paints the scene's last frame (pixels rendered
offscreen by VTK) with the view's caption, and hands the mouse to the view."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QWidget

SIDES = {
    "A": "front (anterior)",
    "P": "back (posterior)",
    "L": "left",
    "R": "right",
    "S": "head (superior)",
    "I": "feet (inferior)",
}


class RenderArea(QWidget):
    """Paints the scene's last frame and hands the mouse to the view."""

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self.view = view
        self.frame: QImage | None = None
        self._pixels: np.ndarray | None = None  # the QImage's memory
        self.message = ""
        self.setMinimumSize(120, 120)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def show_frame(self, rgb: np.ndarray) -> None:
        self._pixels = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        self.frame = QImage(self._pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self.update()

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self.frame is not None:
            p.drawImage(QRect(0, 0, self.width(), self.height()), self.frame)
        lines = [t for t in (self.view.caption(), self.message) if t]
        if lines:
            p.setPen(QColor(200, 200, 200))
            p.drawText(
                self.rect().adjusted(6, 4, -6, -4),
                int(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight),
                "\n".join(lines),
            )
        p.end()

    def resizeEvent(self, event: object) -> None:
        self.view.area_resized()

    def mousePressEvent(self, e: QMouseEvent) -> None:
        self.view.mouse_press(e.button(), e.position())

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        self.view.mouse_move(e.position())

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        self.view.mouse_release(e.position())

    def wheelEvent(self, e: QWheelEvent) -> None:
        self.view.wheel(e.angleDelta().y())
