"""The text a slice view draws over the image: the four corner texts (patient, series, slice
position and thickness, window and zoom), the orientation letters at the edges and the scale
bar, each placed so that nothing is clipped and nothing overlaps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen

from medview.viewer.mpr import View

if TYPE_CHECKING:
    from medview.ui.slice_view import SliceView

_SCALE_STEPS_MM = (1, 2, 5, 10, 20, 50, 100, 200)


def shadowed(p: QPainter, rect: QRectF, flags: int, text: str, colour: QColor) -> None:
    """Text with a dark shadow, readable over any image or overlay."""
    p.setPen(QColor(0, 0, 0, 220))
    for dx, dy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        p.drawText(rect.translated(dx, dy), flags, text)
    p.setPen(colour)
    p.drawText(rect, flags, text)


class CornerText:
    """The overlay text of one slice view."""

    PAD = 6  # where the overlays go (the tests check nothing is clipped or overlapping)

    def __init__(self, sv: SliceView) -> None:
        self.sv = sv

    def draw(self, p: QPainter) -> None:
        state = self.sv.controller.state
        assert state is not None
        v = state.volume
        info = self.sv.controller.info
        m = state.mapping(self.sv.view)
        k = state.slice_index(self.sv.view)
        p.setFont(QFont("Sans", 9))
        p.setPen(QColor(235, 235, 235))
        pad = 6
        rect = QRectF(self.sv.rect().adjusted(pad, pad, -pad, -pad))
        top_left = "\n".join(
            filter(
                None,
                [
                    info.get("patient_name", ""),
                    info.get("patient_id", ""),
                    info.get("study_date", ""),
                ],
            )
        )
        top_right = "\n".join(
            filter(
                None,
                [
                    v.description,
                    info.get("volume", ""),  # one volume of a 4-D series
                    info.get("modality", ""),
                    self.sv.view.value.capitalize() + (" (approx.)" if m.approximate else ""),
                ],
            )
        )
        slab_mm, slab_mode = state.slab(self.sv.view)
        slab = f"  slab {slab_mode.upper()} {slab_mm:g} mm" if slab_mm else ""
        pos_mm = float(np.dot(state.volume.geometry.index_to_lps(state.crosshair), m.normal))
        bottom_left = f"Im {k + 1}/{m.shape[0]}  {pos_mm:.1f} mm\nthk {m.spacing[0]:.2g} mm{slab}"
        bottom_right = (
            f"W {state.window.width:.0f} L {state.window.center:.0f}"
            f"{'  inv' if state.invert else ''}\nzoom {self.sv.zoom:.2f}"
        )
        al = Qt.AlignmentFlag
        text = QColor(235, 235, 235)
        small = p.fontMetrics()
        letters = self.letter_rects(QFontMetrics(QFont("Sans", 11, QFont.Weight.Bold)))
        top_left, top_right = self.fit_top(small, top_left, top_right, letters["top"][0])
        corners = self.corner_rects(small, top_left, top_right, bottom_left, bottom_right)
        shadowed(p, rect, int(al.AlignLeft | al.AlignTop), top_left, text)
        shadowed(p, rect, int(al.AlignRight | al.AlignTop), top_right, text)
        shadowed(p, rect, int(al.AlignLeft | al.AlignBottom), bottom_left, text)
        shadowed(p, rect, int(al.AlignRight | al.AlignBottom), bottom_right, text)
        p.setFont(QFont("Sans", 11, QFont.Weight.Bold))
        for box, letter in letters.values():
            shadowed(p, box, int(al.AlignCenter), letter, QColor(255, 220, 120))
        p.setFont(QFont("Sans", 8))
        bar, label, length_mm = self.scale_bar(p.fontMetrics(), corners["bottom_left"])
        p.setPen(QPen(QColor(0, 0, 0), 4))
        p.drawLine(bar.topLeft(), bar.topRight())
        p.setPen(QPen(text, 2))
        p.drawLine(bar.topLeft(), bar.topRight())
        shadowed(p, label, int(al.AlignLeft | al.AlignVCenter), f"{length_mm:g} mm", text)

    def fit_top(self, metrics: QFontMetrics, tl: str, tr: str, letter: QRectF) -> tuple[str, str]:
        """The top corner texts shortened ("…") so that neither reaches ``letter``, the
        orientation letter at the top edge (a long series description in a narrow viewport)."""
        mode = Qt.TextElideMode.ElideRight
        cap_l = max(int(letter.left()) - 4 - self.PAD, 10)
        cap_r = max(self.sv.width() - self.PAD - int(letter.right()) - 4, 10)

        def elide(text: str, cap: int) -> str:
            return "\n".join(metrics.elidedText(line, mode, cap) for line in text.split("\n"))

        return elide(tl, cap_l), elide(tr, cap_r)

    def corner_rects(
        self, metrics: QFontMetrics, tl: str, tr: str, bl: str, br: str
    ) -> dict[str, QRectF]:
        pad, w, h = self.PAD, self.sv.width(), self.sv.height()
        out = {}
        for name, text in (("top_left", tl), ("top_right", tr), ("bottom_left", bl)):
            size = metrics.size(0, text)
            x = pad if name.endswith("left") else w - pad - size.width()
            y = pad if name.startswith("top") else h - pad - size.height()
            out[name] = QRectF(x, y, size.width(), size.height())
        size = metrics.size(0, br)
        out["bottom_right"] = QRectF(
            w - pad - size.width(), h - pad - size.height(), size.width(), size.height()
        )
        return out

    def letter_rects(self, metrics: QFontMetrics) -> dict[str, tuple[QRectF, str]]:
        """The orientation letters at the middle of each edge, moved off the crosshair lines
        that reach that edge."""
        state = self.sv.controller.state
        assert state is not None
        labels = state.mapping(self.sv.view).edge_labels()
        pad, w, h = self.PAD, float(self.sv.width()), float(self.sv.height())
        cross = None
        if self.sv.view is not View.NATIVE and self.sv.controller.tool is None:
            cross = self.sv.to_widget(*state.screen_point(self.sv.view))
        out = {}
        for edge in ("top", "bottom", "left", "right"):
            letter = labels[edge]
            size = metrics.size(0, letter)
            bw, bh = float(size.width() + 4), float(size.height())
            if edge in ("top", "bottom"):
                x = w / 2 - bw / 2
                if cross is not None and abs(cross.x() - w / 2) < bw / 2 + 4:
                    x = cross.x() + 6  # right of the vertical line
                y = pad if edge == "top" else h - pad - bh
            else:
                y = h / 2 - bh / 2
                if cross is not None and abs(cross.y() - h / 2) < bh / 2 + 4:
                    y = cross.y() - 4 - bh  # above the horizontal line
                x = pad if edge == "left" else w - pad - bw
            out[edge] = (QRectF(x, y, bw, bh), letter)
        return out

    def scale_bar(self, metrics: QFontMetrics, above: QRectF) -> tuple[QRectF, QRectF, float]:
        """The scale bar (a zero-height rect: the line), its label and its length in mm:
        left-aligned just above the bottom-left text, the label right of the bar, the whole
        no wider than a third of the viewport."""
        mm_px = self.sv.mm_per_widget_pixel()
        label_w = metrics.horizontalAdvance("200 mm") + 6
        room = max(self.sv.width() / 3 - label_w, 8.0)
        fitting = [s for s in _SCALE_STEPS_MM if s / mm_px <= room]
        length_mm = float(max(fitting) if fitting else _SCALE_STEPS_MM[0])
        px = length_mm / mm_px
        y = above.top() - 8
        x0 = float(self.PAD)
        text_w = metrics.horizontalAdvance(f"{length_mm:g} mm") + 4
        h = metrics.height()
        return QRectF(x0, y, px, 0), QRectF(x0 + px + 4, y - h / 2, text_w, h), length_mm
