"""The Models panel: packages (compatible ones first) with their cards, Run, and the result's
legend (colours, names, volumes), opacity and outline controls, and provenance."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from medview.core.notices import RESEARCH_USE
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest
from medview.inference.registry import compatible, ordered_for


class ModelsPanel(QWidget):
    run_requested = Signal(object, str)  # ModelManifest, device
    overlay_changed = Signal()  # opacity / outline / visibility edited
    label_activated = Signal(int)  # a legend row was clicked: its label value

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
        self.probabilities = QTableWidget(0, 2)
        self.probabilities.setHorizontalHeaderLabels(["Class", "Probability"])
        self.probabilities.verticalHeader().setVisible(False)
        self.probabilities.hide()
        self.heat_opacity = QSlider(Qt.Orientation.Horizontal)
        self.heat_opacity.setRange(0, 100)
        self.heat_opacity.setValue(50)
        self.heat_opacity.valueChanged.connect(lambda _v: self.overlay_changed.emit())
        self.heat_row = QWidget()
        heat_layout = QHBoxLayout(self.heat_row)
        heat_layout.setContentsMargins(0, 0, 0, 0)
        heat_layout.addWidget(QLabel("Heat map opacity"))
        heat_layout.addWidget(self.heat_opacity)
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
        layout.addWidget(self.probabilities)
        layout.addWidget(self.heat_row)
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
        for entry in ordered_for(volume):
            m = entry.manifest
            if m is None:
                item = QListWidgetItem(f"refused: {entry.folder.name}")
                item.setToolTip(entry.error or "")
                item.setForeground(QBrush(QColor(150, 150, 150)))
                item.setFlags(Qt.ItemFlag.NoItemFlags)
            else:
                suits = volume is not None and compatible(m, volume)
                item = QListWidgetItem(
                    f"{'✓ ' if suits else ''}{m.name} {m.version}  "
                    f"({m.task}, {m.modality or 'any'})"
                )
                item.setData(Qt.ItemDataRole.UserRole, m.id)
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
    ) -> None:
        """Fill the legend: (value, name, colour, volume mL, mean) per label."""
        self._updating_legend = True
        self.legend.setRowCount(len(stats))
        for r, (value, name, color, ml, mean) in enumerate(stats):
            show = QTableWidgetItem()
            show.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            show.setCheckState(Qt.CheckState.Checked)
            show.setData(Qt.ItemDataRole.UserRole, value)
            show.setBackground(QBrush(QColor(*color)))
            self.legend.setItem(r, 0, show)
            self.legend.setItem(r, 1, QTableWidgetItem(name))
            self.legend.setItem(r, 2, QTableWidgetItem(f"{ml:.1f}"))
            self.legend.setItem(r, 3, QTableWidgetItem(f"{mean:.0f} {unit}" if ml else "-"))
        self._updating_legend = False
        self.provenance.setText(provenance)

    def show_probabilities(self, probabilities: dict[str, float], provenance: str) -> None:
        self.probabilities.setRowCount(len(probabilities))
        for r, (name, p) in enumerate(sorted(probabilities.items(), key=lambda kv: -kv[1])):
            self.probabilities.setItem(r, 0, QTableWidgetItem(name))
            self.probabilities.setItem(r, 1, QTableWidgetItem(f"{p:.3f}"))
        self.probabilities.show()
        self.heat_row.show()
        self.provenance.setText(provenance)

    def hidden_labels(self) -> set[int]:
        out = set()
        for r in range(self.legend.rowCount()):
            item = self.legend.item(r, 0)
            if item is not None and item.checkState() != Qt.CheckState.Checked:
                out.add(int(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def _legend_edited(self, item: QTableWidgetItem) -> None:
        if not self._updating_legend and item.column() == 0:
            self.overlay_changed.emit()

    def _legend_clicked(self, row: int, column: int) -> None:
        item = self.legend.item(row, 0)
        if item is not None and column != 0:
            self.label_activated.emit(int(item.data(Qt.ItemDataRole.UserRole)))
