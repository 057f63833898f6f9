"""The viewport grid: 1x1, 1x3 (axial, coronal, sagittal MPR), 2x2 (the three MPR views and
the 3-D view) or the 3-D view alone. A 2-D view and the 3-D view can swap places
(`swap_3d`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QGridLayout, QWidget

from medview.ui.controller import ViewerController
from medview.ui.slice_view import SliceView
from medview.viewer.mpr import View

THREE_D = "3d"
LAYOUTS: dict[str, list[tuple[Any, int, int]]] = {
    "1x1": [(View.AXIAL, 0, 0)],
    "1x3": [(View.AXIAL, 0, 0), (View.CORONAL, 0, 1), (View.SAGITTAL, 0, 2)],
    "2x2": [(View.AXIAL, 0, 0), (View.CORONAL, 0, 1), (View.SAGITTAL, 1, 0), (THREE_D, 1, 1)],
    "3d": [(THREE_D, 0, 0)],
}


class ViewerPanel(QWidget):
    def __init__(
        self, controller: ViewerController, view3d: Any = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.views = {v: SliceView(controller, v, self) for v in View}
        self.view3d = view3d  # None: this grid has no 3-D view (the comparison viewer)
        if view3d is not None:
            view3d.setParent(self)
            view3d.hide()
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.layout_name = ""
        self.swapped: View | None = None  # the 2-D view whose place the 3-D view took
        self.set_layout("1x3")

    def spec(self, name: str) -> list[tuple[Any, int, int]]:
        state = self.controller.state
        if state is not None and state.volume.shape[0] == 1:
            return [(View.NATIVE, 0, 0)]  # a 2-D image: one native view
        spec = list(LAYOUTS[name])
        if self.view3d is None:
            return [(View.NATIVE if v == THREE_D else v, r, c) for v, r, c in spec]
        items = [v for v, _, _ in spec]
        if self.swapped is not None and self.swapped in items:
            i = items.index(self.swapped)
            if THREE_D in items:  # the two exchange places
                j = items.index(THREE_D)
                items[i], items[j] = items[j], items[i]
            else:
                items[i] = THREE_D
        return [(item, r, c) for item, (_, r, c) in zip(items, spec, strict=True)]

    def set_layout(self, name: str) -> None:
        """Arrange the viewports; a 2-D image (one slice) always gets one native view."""
        spec = self.spec(name)
        for widget in self.widgets():
            self.grid.removeWidget(widget)
            widget.hide()
        rows, cols = {r for _, r, _ in spec}, {c for _, _, c in spec}
        for i in range(3):  # the cells in use share the space equally
            self.grid.setRowStretch(i, 1 if i in rows else 0)
            self.grid.setColumnStretch(i, 1 if i in cols else 0)
        for item, row, col in spec:
            widget = self.widget(item)
            self.grid.addWidget(widget, row, col)
            widget.show()
        self.layout_name = name
        shown = [self.views[v] for v, _, _ in spec if v != THREE_D]
        if shown and self.controller.active_view not in shown:
            self.controller.set_active(shown[0])

    def swap_3d(self) -> None:
        """The active 2-D view and the 3-D view change places (again: back)."""
        if self.view3d is None:
            return
        if self.swapped is not None:
            self.swapped = None
        else:
            active = self.controller.active_view
            self.swapped = active.view if active is not None else View.AXIAL
        self.set_layout(self.layout_name)

    def widget(self, item: Any) -> QWidget:
        return self.view3d if item == THREE_D else self.views[item]

    def widgets(self) -> list[QWidget]:
        return [*self.views.values(), *([self.view3d] if self.view3d is not None else [])]

    def visible_views(self) -> list[SliceView]:
        return [v for v in self.views.values() if v.isVisible()]

    def showing_3d(self) -> bool:
        return self.view3d is not None and self.view3d.isVisible()
