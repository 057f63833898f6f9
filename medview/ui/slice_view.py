"""One viewport: draws a plane of the shared `ViewerState` with its annotations and turns
mouse input into view changes (radiology conventions)."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from medview.ui.browser import series_from_mime
from medview.ui.controller import ViewerController
from medview.ui.corner_text import CornerText, shadowed
from medview.viewer.annotations import Kind, Measurement, describe, screen_points
from medview.viewer.mpr import View
from medview.viewer.render import (
    LutCache,
    blend_labels,
    label_colors,
    render_grey,
    render_rgb,
)

VIEW_COLOURS = {
    View.AXIAL: QColor(230, 80, 80),
    View.CORONAL: QColor(90, 200, 90),
    View.SAGITTAL: QColor(230, 200, 60),
    View.NATIVE: QColor(150, 150, 150),
}


class SliceView(QWidget):
    """Shows ``view`` of the controller's volume. Wheel: slices; Ctrl+wheel: zoom; left:
    crosshair; right-drag: window/level; middle-drag: pan."""

    hovered = Signal(str)
    activated = Signal(object)
    series_dropped = Signal(object)  # {"uid": ..., "key": ...} from the study browser

    def __init__(
        self, controller: ViewerController, view: View, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view = view
        self.zoom = 1.0
        self.pan = QPointF(0, 0)
        self._lut = LutCache()
        self._buffer: np.ndarray | None = None  # keeps the QImage's memory alive
        self._drag: tuple[Qt.MouseButton, QPointF] | None = None
        self._pending: Measurement | None = None  # being drawn or moved; committed on release
        self._moving: int | None = None  # index of the point being moved
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setAcceptDrops(True)  # series dragged from the browser; files go to the window
        controller.changed.connect(self.update)
        self.corner_text = CornerText(self)
        t = self.corner_text  # its layout, as the tests read it
        self.fit_top, self.corner_rects = t.fit_top, t.corner_rects
        self.letter_rects, self.scale_bar = t.letter_rects, t.scale_bar

    # -- geometry -----------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the plane is drawn, in widget pixels (aspect ratio from pixel spacing)."""
        state = self.controller.state
        assert state is not None
        m = state.mapping(self.view)
        rows, cols = m.shape[1], m.shape[2]
        phys_w, phys_h = cols * m.spacing[2], rows * m.spacing[1]
        fit = min(self.width() / phys_w, self.height() / phys_h) * self.zoom
        w, h = phys_w * fit, phys_h * fit
        return QRectF(
            (self.width() - w) / 2 + self.pan.x(), (self.height() - h) / 2 + self.pan.y(), w, h
        )

    def to_plane(self, pos: QPointF) -> tuple[float, float]:
        """Widget position -> (row, col) of the plane (pixel centres at integers)."""
        state = self.controller.state
        assert state is not None
        m = state.mapping(self.view)
        r = self.image_rect()
        return (
            (pos.y() - r.y()) / r.height() * m.shape[1] - 0.5,
            (pos.x() - r.x()) / r.width() * m.shape[2] - 0.5,
        )

    def to_widget(self, row: float, col: float) -> QPointF:
        state = self.controller.state
        assert state is not None
        m = state.mapping(self.view)
        r = self.image_rect()
        return QPointF(
            r.x() + (col + 0.5) / m.shape[2] * r.width(),
            r.y() + (row + 0.5) / m.shape[1] * r.height(),
        )

    def mm_per_widget_pixel(self) -> float:
        state = self.controller.state
        assert state is not None
        m = state.mapping(self.view)
        return m.shape[2] * m.spacing[2] / max(self.image_rect().width(), 1e-9)

    def reset(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self.update()

    # -- drawing ------------------------------------------------------------------------------
    def rendered(self) -> np.ndarray | None:
        """The ARGB32 pixels of the current plane (what the viewport shows, unscaled)."""
        state = self.controller.state
        if state is None:
            return None
        plane = state.plane(self.view)
        if state.volume.is_color:
            argb = render_rgb(plane)
        else:
            argb = render_grey(plane, state.window, state.invert, self._lut)
        labels = state.overlay_plane(self.view)
        if labels is not None and state.overlay is not None:
            argb = state.overlay.blend(np.array(argb, copy=True), labels)
        preview = state.range_preview
        if preview is not None and not state.volume.is_color:
            lo, hi, colour = preview
            inside = ((plane >= lo) & (plane <= hi)).astype(np.uint8)
            argb = blend_labels(np.array(argb, copy=True), inside, label_colors({1: colour}), 0.35)
        heat = state.heatmap_plane(self.view)
        if heat is not None and state.heatmap is not None:
            argb = state.heatmap.blend(np.array(argb, copy=True), heat)
        return argb

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        state = self.controller.state
        if state is None:
            p.setPen(QColor(140, 140, 140))
            p.drawText(
                self.rect().adjusted(8, 8, -8, -8),
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                "Drop DICOM files, folders, a .zip or a DICOMDIR here",
            )
            p.end()
            return
        argb = self.rendered()
        assert argb is not None
        self._buffer = np.ascontiguousarray(argb)
        h, w = self._buffer.shape
        image = QImage(self._buffer.data, w, h, w * 4, QImage.Format.Format_ARGB32)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 4)
        p.drawImage(self.image_rect(), image)
        painter = self.controller.painter
        if self.view is not View.NATIVE and self.controller.tool is None and painter is None:
            self._draw_crosshair(p)
        self._draw_measurements(p)
        outline = painter.outline() if hasattr(painter, "outline") else []
        if len(outline) > 1:  # the scissors' outline being drawn
            m = state.mapping(self.view)
            pts = [self.to_widget(*m.to_screen(np.asarray(z))[1:]) for z in outline]
            p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
            for a, b in zip(pts, pts[1:] + pts[:1], strict=True):
                p.drawLine(a, b)
        if painter is not None and painter.radius_mm() > 0 and self.underMouse():
            r = painter.radius_mm() / self.mm_per_widget_pixel()
            p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
            p.drawEllipse(QPointF(self.mapFromGlobal(QCursor.pos())), r, r)
        if self.controller.show_annotations:
            self.corner_text.draw(p)
        if self.controller.active_view is self:
            p.setPen(QPen(VIEW_COLOURS[self.view], 2))
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))
        p.end()

    def _draw_crosshair(self, p: QPainter) -> None:
        state = self.controller.state
        assert state is not None
        row, col = state.screen_point(self.view)
        pt = self.to_widget(row, col)
        others = [v for v in (View.AXIAL, View.CORONAL, View.SAGITTAL) if v is not self.view]
        # the horizontal line is the plane whose normal runs down the screen, and so on
        m = state.mapping(self.view)
        down = m.screen_dirs[0]
        horiz = max(others, key=lambda v: abs(float(np.dot(state.mapping(v).normal, down))))
        vert = next(v for v in others if v is not horiz)
        p.setPen(QPen(VIEW_COLOURS[horiz], 1))
        p.drawLine(QPointF(0, pt.y()), QPointF(self.width(), pt.y()))
        p.setPen(QPen(VIEW_COLOURS[vert], 1))
        p.drawLine(QPointF(pt.x(), 0), QPointF(pt.x(), self.height()))

    # -- measurements -------------------------------------------------------------------------
    def _zyx(self, pos: QPointF) -> np.ndarray:
        """The array index (z, y, x) under ``pos`` on the shown slice."""
        state = self.controller.state
        assert state is not None
        row, col = self.to_plane(pos)
        m = state.mapping(self.view)
        return m.from_screen(np.array([state.slice_index(self.view), row, col], dtype=np.float64))

    def _lps(self, row: float, col: float) -> tuple[float, float, float]:
        state = self.controller.state
        assert state is not None
        v = state.lps_at(self.view, row, col)
        return (float(v[0]), float(v[1]), float(v[2]))

    def visible_measurements(self) -> list[Measurement]:
        """Measurements drawn in this view on its current slice (with any edit in progress)."""
        state = self.controller.state
        if state is None:
            return []
        items = [
            self._pending if self._pending and m.id == self._pending.id else m
            for m in self.controller.measurements.items
        ]
        if self._pending and all(m.id != self._pending.id for m in items):
            items.append(self._pending)
        k = state.slice_index(self.view)
        return [
            m
            for m in items
            if m.view is self.view and abs(screen_points(m, state.volume)[0, 0] - k) < 0.5
        ]

    def _hit(self, pos: QPointF) -> tuple[Measurement, int] | None:
        state = self.controller.state
        assert state is not None
        for m in reversed(self.visible_measurements()):
            for i, (_, r, c) in enumerate(screen_points(m, state.volume)):
                q = self.to_widget(r, c)
                if abs(q.x() - pos.x()) <= 6 and abs(q.y() - pos.y()) <= 6:
                    return m, i
        return None

    def _draw_measurements(self, p: QPainter) -> None:
        state = self.controller.state
        assert state is not None
        for m in self.visible_measurements():
            selected = m.id == self.controller.selected
            colour = QColor(80, 200, 255) if selected else QColor(255, 200, 0)
            p.setPen(QPen(colour, 2 if selected else 1.5))
            pts = [self.to_widget(r, c) for _, r, c in screen_points(m, state.volume)]
            if m.kind in (Kind.RULER, Kind.ARROW):
                p.drawLine(pts[0], pts[1])
                if m.kind is Kind.ARROW:
                    self._draw_arrow_head(p, pts[1], pts[0])
            elif m.kind is Kind.ANGLE:
                p.drawLine(pts[1], pts[0])
                if len(pts) > 2:
                    p.drawLine(pts[1], pts[2])
            elif m.kind is Kind.POINT:
                for q in pts:  # a cross
                    p.drawLine(QPointF(q.x() - 6, q.y()), QPointF(q.x() + 6, q.y()))
                    p.drawLine(QPointF(q.x(), q.y() - 6), QPointF(q.x(), q.y() + 6))
            elif m.kind in (Kind.POLYLINE, Kind.POLYGON):
                line = QPolygonF(pts)
                if m.kind is Kind.POLYGON:
                    p.drawPolygon(line)
                else:
                    p.drawPolyline(line)
            else:
                rect = QRectF(pts[0], pts[1]).normalized()
                if m.kind is Kind.ELLIPSE:
                    p.drawEllipse(rect)
                else:
                    p.drawRect(rect)
            for q in pts if len(pts) <= 8 else ():  # handles (not on a long outline)
                p.drawRect(QRectF(q.x() - 3, q.y() - 3, 6, 6))
            p.setFont(QFont("Sans", 9))
            anchor = max(pts, key=lambda q: q.x())
            text = describe(m, state.volume).split(": ", 1)[1]
            if p.fontMetrics().horizontalAdvance(text) > 0.45 * self.width():
                text = re.sub(r"\s+(?=mean |SD |min |\()", "\n", text)  # a figure a line
            box = self.label_rect(anchor, text, p.fontMetrics())
            shadowed(p, box, int(Qt.AlignmentFlag.AlignLeft), text, colour)

    def label_rect(self, anchor: QPointF, text: str, metrics: QFontMetrics) -> QRectF:
        """Where a measurement's label goes: right of and above ``anchor``, moved inside the
        viewport when it would be clipped at an edge."""
        size = metrics.size(0, text)
        w, h = float(size.width() + 2), float(size.height())
        x = anchor.x() + 8
        y = anchor.y() - 6 - h
        if x + w > self.width() - 2:
            x = anchor.x() - 8 - w  # left of the anchor instead
        x = min(max(x, 2.0), max(2.0, self.width() - w - 2))
        y = min(max(y, 2.0), max(2.0, self.height() - h - 2))
        return QRectF(x, y, w, h)

    @staticmethod
    def _draw_arrow_head(p: QPainter, tip: QPointF, tail: QPointF) -> None:
        d = np.array([tip.x() - tail.x(), tip.y() - tail.y()])
        n = np.linalg.norm(d)
        if n < 1e-6:
            return
        d /= n
        for angle in (0.5, -0.5):
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            end = np.array([tip.x(), tip.y()]) - 12 * rot @ d
            p.drawLine(tip, QPointF(end[0], end[1]))

    # -- input ----------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if series_from_mime(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()  # file drops are handled by the main window

    def dropEvent(self, event: QDropEvent) -> None:
        data = series_from_mime(event.mimeData())
        if data is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.series_dropped.emit(data)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.controller.state is None:
            return
        steps = event.angleDelta().y() / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom = float(np.clip(self.zoom * (1.15**steps), 0.1, 40))
            self.update()
        else:
            self.controller.step(self.view, -int(np.sign(steps)) if steps else 0)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.controller.set_active(self)
        self.activated.emit(self)
        if self.controller.state is None:
            return
        self._drag = (event.button(), event.position())
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        if self.controller.painter is not None and self.view is not View.NATIVE:
            axis = self.controller.state.mapping(self.view).dims[0]  # the slice axis
            self.controller.painter.press(self._zyx(pos), axis)
            return
        tool = self.controller.tool
        if tool is Kind.ANGLE and self._pending is not None and len(self._pending.points) == 3:
            self._commit_pending()  # third click ends the angle
            return
        hit = self._hit(pos)
        if hit is not None:  # grab a handle: select and move that point
            self.controller.select(hit[0].id)
            self._pending, self._moving = hit[0], hit[1]
            return
        if tool is not None:
            point = self._lps(*self.to_plane(pos))
            self._pending = Measurement(tool, self.view, (point, point))
            self._moving = 1
            return
        self.controller.select(None)
        if self.view is not View.NATIVE:
            self.controller.set_point(self.view, *self.to_plane(pos))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        state = self.controller.state
        if state is None:
            return
        pos = event.position()
        row, col = self.to_plane(pos)
        value = state.value_at(self.view, row, col)
        if value is not None:
            lps = state.lps_at(self.view, row, col)
            unit = f" {state.volume.units}" if state.volume.units else ""
            shown = f"{value:g}{unit}" if isinstance(value, float) else f"RGB {value}"
            self.hovered.emit(f"({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm LPS   {shown}")
        if self._drag is None:
            if self.controller.painter is not None:
                self.update()  # the brush circle follows the mouse
            if self._pending is not None and self._moving == 2:
                self._move_pending(row, col)  # angle: third point follows the mouse
            return
        button, last = self._drag
        delta = pos - last
        self._drag = (button, pos)
        if button == Qt.MouseButton.RightButton:
            scale = max(state.window.width, 1.0) / 250
            self.controller.set_window(state.window.dragged(delta.x(), delta.y(), scale))
        elif button == Qt.MouseButton.MiddleButton:
            self.pan += delta
            self.update()
        elif button == Qt.MouseButton.LeftButton and self.controller.painter is not None:
            self.controller.painter.move(self._zyx(pos))
        elif button == Qt.MouseButton.LeftButton and self._pending is not None:
            self._move_pending(row, col)
        elif button == Qt.MouseButton.LeftButton and self.view is not View.NATIVE:
            self.controller.set_point(self.view, row, col)

    def _move_pending(self, row: float, col: float) -> None:
        assert self._pending is not None and self._moving is not None
        pts = list(self._pending.points)
        pts[self._moving] = self._lps(row, col)
        self._pending = replace(self._pending, points=tuple(pts))
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None
        if self.controller.painter is not None and event.button() == Qt.MouseButton.LeftButton:
            self.controller.painter.release()
            return
        m = self._pending
        if m is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if (
            m.kind is Kind.ANGLE
            and len(m.points) == 2
            and self.controller.measurements.get(m.id) is None
        ):
            # first arm drawn: the third point follows the mouse until the next click
            self._pending = replace(m, points=(*m.points, m.points[1]))
            self._moving = 2
            self.setMouseTracking(True)
            return
        self._commit_pending()

    def _commit_pending(self) -> None:
        m, self._pending, self._moving = self._pending, None, None
        if m is None:
            return
        existing = self.controller.measurements.get(m.id)
        if existing is not None:
            if existing.points != m.points:
                for i, (a, b) in enumerate(zip(existing.points, m.points, strict=True)):
                    if a != b:
                        self.controller.move_point(m.id, i, b)
            return
        state = self.controller.state
        assert state is not None
        pts = screen_points(m, state.volume)
        if np.abs(np.diff(pts[:, 1:], axis=0)).max() < 1.0:  # a click, not a drag
            self.update()
            return
        self.controller.add_measurement(m)  # an angle's points: (end, vertex, end)
