"""The Measurements dock: the session's measurements as a list (view, slice, figures);
clicking one goes to it, double-clicking edits its label."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QInputDialog, QListWidget, QListWidgetItem, QWidget

from medview.session import StudySession
from medview.ui.controller import ViewerController
from medview.viewer.annotations import describe, evaluate, slice_of


class MeasurementDock(QDockWidget):
    def __init__(
        self, session: StudySession, controller: ViewerController, parent: QWidget
    ) -> None:
        super().__init__("Measurements", parent)
        self.setObjectName("measurements")
        self.session, self.controller = session, controller
        self.list = QListWidget()
        self.setWidget(self.list)
        self.list.itemDoubleClicked.connect(self._edit_text)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        session.subscribe("measurements", lambda _s: self.refresh())

    def refresh(self) -> None:
        self.list.clear()
        volume = self.session.volume
        if volume is None:
            return
        for m in self.session.measurements.items:
            item = QListWidgetItem(
                f"{m.view.value[:3]} {slice_of(m, volume) + 1}: {describe(m, volume)}"
            )
            item.setData(Qt.ItemDataRole.UserRole, m.id)
            self.list.addItem(item)

    def selected_figures(self) -> dict[str, float] | None:
        """The figures of the measurement selected in the list (for the risk panel)."""
        item = self.list.currentItem()
        volume = self.session.volume
        if item is None or volume is None:
            return None
        m = self.session.measurements.get(item.data(Qt.ItemDataRole.UserRole))
        return evaluate(m, volume) if m is not None else None

    def _activated(self, item: QListWidgetItem) -> None:
        volume = self.session.volume
        m = self.session.measurements.get(item.data(Qt.ItemDataRole.UserRole))
        if volume is None or m is None:
            return
        self.controller.go_to(m.view, slice_of(m, volume))
        self.controller.select(m.id)

    def _edit_text(self, item: QListWidgetItem) -> None:
        m = self.session.measurements.get(item.data(Qt.ItemDataRole.UserRole))
        if m is None:
            return
        text, ok = QInputDialog.getText(self, "Label", "Text for this measurement:", text=m.text)
        if ok:
            self.controller.set_text(m.id, text)
