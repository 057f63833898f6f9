"""Preferences: default layout, editable CT window presets, compute device, theme, and the
reader who signs reports.

Stored in the settings file in the data folder (never patient data)."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.core.paths import choose_data_dir, data_dir
from medview.viewer.windowing import CT_PRESETS, Preset, Window

DEVICES = ("auto", "cpu", "cuda")
THEMES = ("dark", "light")
LAYOUT_NAMES = ("1x1", "1x3", "2x2", "3d")
READER_FIELDS = (
    ("name", "Reader name (signs reports)"),
    ("credentials", "Reader credentials"),
    ("institution", "Reader institution"),
)


def reader(settings: QSettings) -> tuple[str, str, str]:
    """The reader who signs reports: name, credentials, institution."""
    name, cred, inst = (str(settings.value(f"reader/{k}", "") or "") for k, _ in READER_FIELDS)
    return name, cred, inst


def ct_presets(settings: QSettings) -> tuple[Preset, ...]:
    """The user's CT presets (the built-in ones until edited)."""
    raw = settings.value("ct_presets")
    if not raw:
        return CT_PRESETS
    try:
        return tuple(
            Preset(str(p["name"]), Window(float(p["center"]), float(p["width"])))
            for p in json.loads(str(raw))
        )
    except (ValueError, KeyError, TypeError):
        return CT_PRESETS


def save_ct_presets(settings: QSettings, presets: tuple[Preset, ...]) -> None:
    settings.setValue(
        "ct_presets",
        json.dumps(
            [{"name": p.name, "center": p.window.center, "width": p.window.width} for p in presets]
        ),
    )


class PreferencesDialog(QDialog):
    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        form = QFormLayout()
        self.data_label = QLabel(str(data_dir()))
        self.new_data_dir: str | None = None
        change = QPushButton("Change…")
        change.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.data_label, 1)
        folder_row.addWidget(change)
        form.addRow("Data folder", folder_row)
        self.layout_box = QComboBox()
        self.layout_box.addItems(LAYOUT_NAMES)
        self.layout_box.setCurrentText(str(settings.value("default_layout", "1x3")))
        form.addRow("Default layout", self.layout_box)
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(str(settings.value("compute_device", "auto")))
        form.addRow("Compute device (AI engine)", self.device_box)
        self.theme_box = QComboBox()
        self.theme_box.addItems(THEMES)
        self.theme_box.setCurrentText(str(settings.value("theme", "dark")))
        form.addRow("Theme", self.theme_box)
        # who signs reports (kept in the settings file: the reader's own name, no patient data)
        self.reader_edits = {}
        for key, label in READER_FIELDS:
            edit = QLineEdit(str(settings.value(f"reader/{key}", "")))
            edit.setMaxLength(200)
            self.reader_edits[key] = edit
            form.addRow(label, edit)
        presets = ct_presets(settings)
        self.table = QTableWidget(9, 3)
        self.table.setHorizontalHeaderLabels(["CT preset (keys 1-9)", "Level (HU)", "Width (HU)"])
        for row in range(9):
            p = presets[row] if row < len(presets) else None
            values = (p.name, f"{p.window.center:g}", f"{p.window.width:g}") if p else ("", "", "")
            for col, v in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(v))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self._defaults
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table)
        layout.addWidget(buttons)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder for MedView", str(data_dir()))
        if folder:
            self.set_data_folder(folder)

    def set_data_folder(self, folder: str) -> None:
        """Use ``folder`` from the next start (the database in use stays open until then)."""
        self.new_data_dir = folder
        self.data_label.setText(f"{folder}  (from the next start)")

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem("")
            self.table.setItem(row, col, item)
        return item

    def _defaults(self) -> None:
        for row in range(9):
            p = CT_PRESETS[row] if row < len(CT_PRESETS) else None
            values = (p.name, f"{p.window.center:g}", f"{p.window.width:g}") if p else ("", "", "")
            for col, v in enumerate(values):
                self._cell(row, col).setText(v)

    def presets(self) -> tuple[Preset, ...]:
        """Rows with a name and valid numbers (width > 0)."""
        out = []
        for row in range(9):
            name, center, width = (self._cell(row, c).text().strip() for c in range(3))
            try:
                if name and float(width) > 0:
                    out.append(Preset(name, Window(float(center), float(width))))
            except ValueError:
                continue
        return tuple(out)

    def accept(self) -> None:
        s = self.settings
        s.setValue("default_layout", self.layout_box.currentText())
        s.setValue("compute_device", self.device_box.currentText())
        s.setValue("theme", self.theme_box.currentText())
        for key, edit in self.reader_edits.items():
            s.setValue(f"reader/{key}", edit.text().strip())
        save_ct_presets(s, self.presets())
        if self.new_data_dir:
            choose_data_dir(self.new_data_dir)
        super().accept()
