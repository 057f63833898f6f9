"""The Models panel: packages (compatible ones first) with their cards, Run, and the result's
legend (colours, names, volumes), opacity and outline controls, and provenance; for 2-D
classifiers the series probabilities and a per-slice probability strip."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from medview.core.notices import RESEARCH_USE
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest
from medview.inference.registry import compatible, ordered_for, superseded_by


class SliceProbabilities(QWidget):
    """One bar per slice (the 2-D classifier's probability for the series' target class),
    with the slice shown in the axial view marked; a click emits that slice's index."""

    slice_activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = np.zeros(0, dtype=np.float32)
        self.current = -1
        self.setMinimumHeight(56)
        self.setMaximumHeight(72)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_values(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float32)
        self.update()

    def set_current(self, index: int) -> None:
        if index != self.current:
            self.current = index
            self.update()

    def _slice_at(self, x: float) -> int:
        n = len(self.values)
        return int(np.clip(x / max(1, self.width()) * n, 0, n - 1)) if n else -1

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self._slice_at(event.position().x())
        if index >= 0:
            self.slice_activated.emit(index)

    def paintEvent(self, _event: QPaintEvent) -> None:
        n = len(self.values)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        if not n:
            return
        w, h = self.width(), self.height()
        painter.setPen(QColor(90, 90, 90))
        painter.drawLine(0, int(h * 0.5), w, int(h * 0.5))  # p = 0.5
        for i, p in enumerate(self.values):
            x0, x1 = int(i * w / n), int((i + 1) * w / n)
            bar = round(float(p) * (h - 2))
            colour = QColor(255, 90, 60) if p >= 0.5 else QColor(120, 170, 230)
            painter.fillRect(x0, h - bar, max(1, x1 - x0 - 1), bar, colour)
        if 0 <= self.current < n:
            x = int((self.current + 0.5) * w / n)
            painter.setPen(QColor(255, 230, 80))
            painter.drawLine(x, 0, x, h)
        painter.end()


class ModelsPanel(QWidget):
    run_requested = Signal(object, str)  # ModelManifest, device
    overlay_changed = Signal()  # opacity / outline edited
    label_activated = Signal(int)  # a legend row was clicked: its label value
    label_shown = Signal(int, bool)  # a legend row's "Show" box: its label value, shown or not
    slice_activated = Signal(int)  # a slice-probability bar was clicked: its slice index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = QListWidget()
        self.card = QTextBrowser()
        self.card.setMaximumHeight(180)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.run_button = QPushButton("Run")
        self.notice = QLabel(f"<b>{RESEARCH_USE}</b>")
        self.notice.setStyleSheet("color: #ffb060")
        self.provenance = QLabel("")
        self.provenance.setWordWrap(True)
        self.legend = QTableWidget(0, 4)
        self.legend.setHorizontalHeaderLabels(["Show", "Label", "Volume (mL)", "Mean"])
        self.legend.verticalHeader().setVisible(False)
        # a classifier's answer: one series-level figure for its finding, how it was made
        self.finding = QLabel("")
        self.finding.setWordWrap(True)
        self.finding.hide()
        self.heat_opacity = QSlider(Qt.Orientation.Horizontal)
        self.heat_opacity.setRange(0, 100)
        self.heat_opacity.setValue(50)
        self.heat_opacity.valueChanged.connect(lambda _v: self.overlay_changed.emit())
        self.heat_threshold = QSpinBox(minimum=0, maximum=99, value=50, suffix=" %")
        self.heat_threshold.setToolTip("The heat map is drawn only where it is above this value")
        self.heat_threshold.valueChanged.connect(lambda _v: self.overlay_changed.emit())
        self.heat_note = QLabel("")
        self.heat_note.setWordWrap(True)
        self.heat_note.setStyleSheet("color: #ffb060")
        self.heat_note.hide()
        self._slice_class = ""
        self.slice_caption = QLabel("")
        self.slice_caption.setWordWrap(True)
        self.slice_plot = SliceProbabilities()
        self.slice_plot.slice_activated.connect(self._slice_clicked)
        self.slice_caption.hide()
        self.slice_plot.hide()
        self.heat_row = QWidget()
        heat_layout = QHBoxLayout(self.heat_row)
        heat_layout.setContentsMargins(0, 0, 0, 0)
        heat_layout.addWidget(QLabel("Heat map opacity"))
        heat_layout.addWidget(self.heat_opacity)
        heat_layout.addWidget(QLabel("above"))
        heat_layout.addWidget(self.heat_threshold)
        self.heat_row.hide()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.outline = QCheckBox("Outline")
        row = QHBoxLayout()
        row.addWidget(QLabel("Device"))
        row.addWidget(self.device)
        row.addWidget(self.run_button)
        look = QHBoxLayout()
        look.addWidget(QLabel("Opacity"))
        look.addWidget(self.opacity)
        look.addWidget(self.outline)
        layout = QVBoxLayout(self)
        layout.addWidget(self.models)
        layout.addWidget(self.card)
        layout.addLayout(row)
        layout.addWidget(self.notice)
        layout.addWidget(self.provenance)
        layout.addWidget(self.legend)
        layout.addLayout(look)
        layout.addWidget(self.finding)
        layout.addWidget(self.slice_caption)
        layout.addWidget(self.slice_plot)
        layout.addWidget(self.heat_row)
        layout.addWidget(self.heat_note)
        self._manifests: dict[str, ModelManifest] = {}
        self._updating_legend = False
        self.models.currentItemChanged.connect(self._show_card)
        self.run_button.clicked.connect(self._run)
        self.opacity.valueChanged.connect(lambda _v: self.overlay_changed.emit())
        self.outline.toggled.connect(lambda _v: self.overlay_changed.emit())
        self.legend.itemChanged.connect(self._legend_edited)
        self.legend.cellClicked.connect(self._legend_clicked)

    def refresh(self, volume: Volume | None) -> None:
        """List packages, those suited to ``volume`` first; refused ones show their reason."""
        self.models.clear()
        self._manifests.clear()
        entries = ordered_for(volume)
        replaced = superseded_by(entries)
        for entry in entries:
            m = entry.manifest
            if m is None:
                item = QListWidgetItem(f"refused: {entry.folder.name}")
                item.setToolTip(entry.error or "")
                item.setForeground(QBrush(QColor(150, 150, 150)))
                item.setFlags(Qt.ItemFlag.NoItemFlags)
            else:
                suits = volume is not None and compatible(m, volume)
                better = replaced.get(m.id)
                item = QListWidgetItem(
                    f"{'✓ ' if suits else ''}{m.name} {m.version}  "
                    f"({m.task}, {m.modality or 'any'})"
                    + (f"  (replaced by {better.name})" if better else "")
                )
                item.setData(Qt.ItemDataRole.UserRole, m.id)
                item.setToolTip(item.text())  # the list is narrower than a long name
                self._manifests[m.id] = m
            self.models.addItem(item)
        if self.models.count():
            self.models.setCurrentRow(0)

    def selected(self) -> ModelManifest | None:
        item = self.models.currentItem()
        return self._manifests.get(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def select(self, model_id: str) -> None:
        for i in range(self.models.count()):
            if self.models.item(i).data(Qt.ItemDataRole.UserRole) == model_id:
                self.models.setCurrentRow(i)

    def _show_card(self, *_args: object) -> None:
        m = self.selected()
        self.card.setMarkdown(m.card_text if m else "")

    def _run(self) -> None:
        m = self.selected()
        if m is not None:
            self.run_requested.emit(m, self.device.currentText())

    def show_result(
        self,
        stats: list[tuple[int, str, tuple[int, int, int], float, float]],
        provenance: str,
        unit: str,
        hidden: set[int] | frozenset[int] = frozenset(),
    ) -> None:
        """Fill the legend: (value, name, colour, volume mL, mean) per label; the labels in
        ``hidden`` unticked."""
        self._updating_legend = True
        self.legend.setRowCount(len(stats))
        for r, (value, name, color, ml, mean) in enumerate(stats):
            show = QTableWidgetItem()
            show.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            shown = value not in hidden
            show.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
            show.setData(Qt.ItemDataRole.UserRole, value)
            show.setBackground(QBrush(QColor(*color)))
            self.legend.setItem(r, 0, show)
            self.legend.setItem(r, 1, QTableWidgetItem(name))
            self.legend.setItem(r, 2, QTableWidgetItem(f"{ml:.1f}"))
            self.legend.setItem(r, 3, QTableWidgetItem(f"{mean:.0f} {unit}" if ml else "-"))
        self._updating_legend = False
        self.provenance.setText(provenance)

    def show_finding(
        self,
        finding: str,
        probability: float,
        how: str,
        provenance: str,
        *,
        heatmap: bool = False,
        heat_note: str = "",
        threshold: float = 0.5,
    ) -> None:
        """A classifier's series-level answer: ``finding`` with ``probability`` and ``how``
        it was aggregated and calibrated; the heat-map controls and how far to trust it."""
        self.finding.setText(f"<b>{finding}: {probability:.3f}</b><br>series figure: {how}")
        self.finding.show()
        self.heat_row.setVisible(heatmap)
        self.heat_threshold.blockSignals(True)
        self.heat_threshold.setValue(round(threshold * 100))
        self.heat_threshold.blockSignals(False)
        self.heat_note.setText(f"Heat map: {heat_note}" if heat_note and heatmap else "")
        self.heat_note.setVisible(bool(heat_note) and heatmap)
        self.provenance.setText(provenance)

    def clear_results(self) -> None:
        """Forget the shown result (a new series is on screen)."""
        self.legend.setRowCount(0)
        self.finding.setText("")
        self.finding.hide()
        self.heat_row.hide()
        self.heat_note.hide()
        self.show_slice_probabilities(None, "")
        self.provenance.setText("")

    def show_slice_probabilities(self, values: np.ndarray | None, class_name: str) -> None:
        """Per-slice probabilities of ``class_name`` (2-D classifiers); None hides them."""
        if values is None or len(values) == 0:
            self.slice_caption.hide()
            self.slice_plot.hide()
            return
        self._slice_class = class_name
        self.slice_plot.set_values(values)
        self.slice_caption.show()
        self.slice_plot.show()
        self.set_current_slice(self.slice_plot.current)

    def set_current_slice(self, index: int) -> None:
        """Mark the slice shown in the axial view and say its probability."""
        self.slice_plot.set_current(index)
        values = self.slice_plot.values
        if not len(values):
            return
        top = int(np.argmax(values))
        here = (
            f"; this slice ({index + 1}): {values[index]:.3f}" if 0 <= index < len(values) else ""
        )
        self.slice_caption.setText(
            f"Slice probabilities of '{self._slice_class}': highest {values[top]:.3f} at slice "
            f"{top + 1} of {len(values)}{here}. Click a bar to go to its slice."
        )

    def _slice_clicked(self, index: int) -> None:
        self.slice_activated.emit(index)

    def _legend_edited(self, item: QTableWidgetItem) -> None:
        if not self._updating_legend and item.column() == 0:
            value = int(item.data(Qt.ItemDataRole.UserRole))
            self.label_shown.emit(value, item.checkState() == Qt.CheckState.Checked)

    def _legend_clicked(self, row: int, column: int) -> None:
        item = self.legend.item(row, 0)
        if item is not None and column != 0:
            self.label_activated.emit(int(item.data(Qt.ItemDataRole.UserRole)))
