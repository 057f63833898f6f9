"""Pieces of the risk panel: the contribution chart, one form row, and the model card dialog."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from medview.risk.model import RiskModel
from medview.risk.predict import (
    INSUFFICIENT,
    Contribution,
    RiskResult,
)
from medview.risk.study import SegmentStat

ERROR_BG = "#ffd6d6"
WARNING_BG = "#fff1c2"
STUDY_COLOUR = "#00897b"
BAND_COLOURS = {"low": "#2e7d32", "intermediate": "#ef8f00", "high": "#c62828"}
MAX_BARS = 12


class ContributionChart(QWidget):
    """Horizontal bars of log-odds contributions, largest first; the rest summed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self.setMinimumHeight(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_contributions(self, contributions: tuple[Contribution, ...] | None) -> None:
        rows: list[tuple[str, float]] = []
        if contributions:
            ranked = sorted(contributions, key=lambda c: -abs(c.log_odds))
            rows = [(f"{c.label} = {c.shown}", c.log_odds) for c in ranked[:MAX_BARS]]
            rest = ranked[MAX_BARS:]
            if rest:
                rows.append((f"{len(rest)} other features", sum(c.log_odds for c in rest)))
        self._rows = rows
        self.setFixedHeight(24 + 18 * max(len(rows), 1))
        self.update()

    def rows(self) -> list[tuple[str, float]]:
        return list(self._rows)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        if not self._rows:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no result")
            return
        w = self.width()
        text_w = min(int(w * 0.55), 260)
        mid = text_w + (w - text_w) / 2
        half = (w - text_w) / 2 - 8
        scale = half / max(max(abs(v) for _, v in self._rows), 1e-6)
        p.setPen(QPen(self.palette().text().color()))
        font = QFont(p.font())
        font.setPointSizeF(max(font.pointSizeF() - 1, 7))
        p.setFont(font)
        p.drawText(
            QRectF(text_w, 0, w - text_w, 16),
            Qt.AlignmentFlag.AlignCenter,
            "← lowers risk · log-odds · raises risk →",
        )
        for i, (label, value) in enumerate(self._rows):
            y = 20 + 18 * i
            p.setPen(QPen(self.palette().text().color()))
            p.drawText(
                QRectF(2, y, text_w - 6, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                p.fontMetrics().elidedText(label, Qt.TextElideMode.ElideMiddle, text_w - 6),
            )
            length = value * scale
            colour = QColor("#c62828" if value > 0 else "#1565c0")
            p.fillRect(QRectF(min(mid, mid + length), y + 2, abs(length), 12), colour)
            p.drawText(
                QRectF(mid + (4 if value <= 0 else -64), y, 60, 16),
                (Qt.AlignmentFlag.AlignLeft if value <= 0 else Qt.AlignmentFlag.AlignRight)
                | Qt.AlignmentFlag.AlignVCenter,
                f"{value:+.2f}",
            )
        p.setPen(QPen(QColor("#888888")))
        p.drawLine(int(mid), 18, int(mid), self.height())


class _Row:
    """One feature's widgets."""

    def __init__(self, editor: QLineEdit | QComboBox, origin: QLabel, message: QLabel) -> None:
        self.editor = editor
        self.origin = origin
        self.message = message
        self.study_text: str | None = None  # the value the study filled in, if any
        self.study_origin = ""


def model_card(model: RiskModel, parent: QWidget) -> QDialog:
    """The model card (Markdown, with its reliability diagram when there is one), shown."""
    dialog = QDialog(parent)
    dialog.setWindowTitle(f"{model.name} — model card")
    view = QTextBrowser(dialog)
    view.setSearchPaths([str(model.folder)])
    text = model.card.read_text(encoding="utf-8") if model.card else "No model card."
    if (model.folder / "reliability.png").is_file():
        text += "\n\n![reliability diagram](reliability.png)\n"
    view.setMarkdown(text)
    layout = QVBoxLayout(dialog)
    layout.addWidget(view)
    dialog.resize(760, 820)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


def value_menu(
    menu: QMenu,
    measured: dict[str, float],
    segments: list[SegmentStat],
    set_value: Callable[[str, str], None],
) -> None:
    """A field's menu of study values: the selected measurement's figures and each segment's
    volume and mean; ``set_value(text, origin)`` enters one."""
    menu.clear()
    for key, value in measured.items():
        act = menu.addAction(f"Selected measurement: {key} = {value:.4g}")
        act.triggered.connect(
            lambda _c=False, v=value, k=key: set_value(f"{v:.4g}", f"from study: measurement {k}")
        )
    for seg in segments:
        act = menu.addAction(f"Segment {seg.name}: volume {seg.volume_ml:.4g} mL")
        act.triggered.connect(
            lambda _c=False, s=seg: set_value(
                f"{s.volume_ml:.4g}", f"from study: segment {s.name} volume"
            )
        )
        if seg.mean is not None:
            act = menu.addAction(f"Segment {seg.name}: mean {seg.mean:.4g}")
            act.triggered.connect(
                lambda _c=False, s=seg: set_value(
                    f"{s.mean:.4g}", f"from study: segment {s.name} mean"
                )
            )
    if menu.isEmpty():
        menu.addAction("Nothing selected: draw a measurement or run a segmentation").setEnabled(
            False
        )


def result_texts(
    result: RiskResult | None, model: RiskModel | None, why: str
) -> tuple[str, str, str, str]:
    """(probability, band, band style, detail) as the panel shows a result (or why none)."""
    if result is None:
        return "—", "", "", why
    colour = BAND_COLOURS.get(result.band, "#555555")
    band = f" {result.band} "
    if result.band == INSUFFICIENT and model is not None:
        # no band the card does not vouch for: the interval, and why
        probability = f"{100 * result.low:.0f}–{100 * result.high:.0f} %"
        band = (
            f" insufficient inputs: {len(result.missing)} of {len(model.features)} "
            f"missing (the card allows {model.max_missing}) "
        )
    else:
        probability = f"{100 * result.probability:.1f} %"
    style = f"background: {colour}; color: white; border-radius: 3px; padding: 2px"
    lines = [
        f"95 % interval {100 * result.low:.1f}–{100 * result.high:.1f} % · {result.outcome}",
        f"Mean training patient: {100 * result.reference_probability:.1f} %",
    ]
    if result.missing:
        lines.append(
            f"Missing ({len(result.missing)}), which widens the interval: "
            + ", ".join(result.missing)
        )
    lines += [w.message for w in result.warnings]
    return probability, band, style, "\n".join(lines)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
