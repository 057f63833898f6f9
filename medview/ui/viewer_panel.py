"""The viewport grid: 1x1, 1x3 (axial, coronal, sagittal MPR) or 2x2."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from medview.ui.controller import ViewerController
from medview.ui.slice_view import SliceView
from medview.viewer.mpr import View

LAYOUTS = {
    "1x1": [(View.AXIAL, 0, 0)],
    "1x3": [(View.AXIAL, 0, 0), (View.CORONAL, 0, 1), (View.SAGITTAL, 0, 2)],
    "2x2": [(View.AXIAL, 0, 0), (View.CORONAL, 0, 1), (View.SAGITTAL, 1, 0), (View.NATIVE, 1, 1)],
}


class ViewerPanel(QWidget):
    def __init__(self, controller: ViewerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.views = {v: SliceView(controller, v, self) for v in View}
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.layout_name = ""
        self.set_layout("1x3")

    def set_layout(self, name: str) -> None:
        """Arrange the viewports; a 2-D image (one slice) always gets one native view."""
        state = self.controller.state
        if state is not None and state.volume.shape[0] == 1:
            spec = [(View.NATIVE, 0, 0)]
        else:
            spec = LAYOUTS[name]
        for widget in self.views.values():
            self.grid.removeWidget(widget)
            widget.hide()
        for view, row, col in spec:
            self.grid.addWidget(self.views[view], row, col)
            self.views[view].show()
        self.layout_name = name
        if self.controller.active_view not in [self.views[v] for v, _, _ in spec]:
            self.controller.set_active(self.views[spec[0][0]])

    def visible_views(self) -> list[SliceView]:
        return [v for v in self.views.values() if v.isVisible()]
