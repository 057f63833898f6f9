"""View commands of the main viewer: layouts, window presets, tools, thick slabs and cine
(over slices, or over the volumes of a 4-D series)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QMenu, QSpinBox, QStatusBar

from medview.ui.bridge import TaskRunner
from medview.ui.controller import ViewerController
from medview.ui.four_d import VolumeStepper
from medview.ui.viewer_panel import ViewerPanel
from medview.viewer.annotations import Kind
from medview.viewer.mpr import View


class ViewTools(QObject):
    def __init__(
        self,
        controller: ViewerController,
        viewer: ViewerPanel,
        volumes: VolumeStepper,
        runner: TaskRunner,
        settings: QSettings,
        status: Callable[[], QStatusBar],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self.controller, self.viewer, self.volumes = controller, viewer, volumes
        self.runner, self.settings, self._status = runner, settings, status
        self.slab_mode = QComboBox()
        self.slab_mode.addItems(["Slab off", "MIP", "MinIP"])
        self.slab_mm = QDoubleSpinBox(
            minimum=1.0, maximum=200.0, value=10.0, suffix=" mm", singleStep=2.0, decimals=1
        )
        self._syncing_slab = False
        self.slab_mode.currentIndexChanged.connect(self.slab_changed)
        self.slab_mm.valueChanged.connect(self.slab_changed)
        self.cine = QTimer(self)
        self.cine.timeout.connect(self._cine_step)
        self.cine_fps = QSpinBox(minimum=1, maximum=60, value=10, suffix=" fps")
        self.cine_fps.valueChanged.connect(lambda v: self.cine.setInterval(int(1000 / v)))
        self.cine_over = QComboBox()
        self.cine_over.addItems(["over slices", "over volumes"])
        self.cine_over.setToolTip("Cine steps through the slices, or the volumes of a 4-D series")
        # set when the menus are built
        self.cine_action = QAction()
        self.preset_menu: QMenu | None = None
        self.tool_actions: dict[Kind | None, QAction] = {}
        self.stop_painting: Callable[[], None] | None = None  # the segment editor's brush
        for view in viewer.views.values():
            view.activated.connect(lambda _v: self.show_active_slab())

    def active_view(self) -> View:
        active = self.controller.active_view
        return active.view if active is not None else View.AXIAL

    def step_active(self, delta: int) -> None:
        self.controller.step(self.active_view(), delta)

    def go_active(self, k: int) -> None:
        self.controller.go_to(self.active_view(), k)

    def label_presets(self) -> None:
        state = self.controller.state
        names = [p.name for p in state.presets] if state else []
        assert self.preset_menu is not None
        for i, act in enumerate(self.preset_menu.actions()):
            act.setText(f"{i + 1}  {names[i]}" if i < len(names) else f"Preset {i + 1}")
            act.setEnabled(i < len(names))

    def apply_preset(self, index: int) -> None:
        if not self.controller.apply_preset(index):
            self._status().showMessage(f"No preset {index + 1} for this series", 3000)

    def set_layout(self, name: str) -> None:
        self.viewer.set_layout(name)
        self.settings.setValue("layout", name)

    def reset_views(self) -> None:
        """Back to the series' initial window, centre slices and fitted zoom."""
        state = self.controller.state
        if state is not None:
            self.controller.set_volume(state.volume, self.controller.info)
        self.fit_views()

    def fit_views(self) -> None:
        for v in self.viewer.views.values():
            v.reset()

    def set_tool(self, kind: Kind | None) -> None:
        """A measurement tool, or None: navigate (Esc). Either ends painting."""
        if self.stop_painting is not None:
            self.stop_painting()
        self.controller.set_tool(kind)
        for k, act in self.tool_actions.items():
            act.setChecked(k is kind)

    def slab_changed(self) -> None:
        """Thick-slab MIP or MinIP over the given thickness, for the active view (each MPR
        view has its own slab)."""
        if self._syncing_slab:
            return
        mode = self.slab_mode.currentIndex()
        mm = self.slab_mm.value() if mode else 0.0
        self.controller.set_slab(self.active_view(), mm, "minip" if mode == 2 else "mip")

    def show_active_slab(self) -> None:
        """The toolbar shows the slab of whichever view is active."""
        state = self.controller.state
        mm, mode = state.slab(self.active_view()) if state is not None else (0.0, "mip")
        self._syncing_slab = True
        try:
            self.slab_mode.setCurrentIndex(0 if mm <= 0 else (2 if mode == "minip" else 1))
            if mm > 0:
                self.slab_mm.setValue(mm)
        finally:
            self._syncing_slab = False

    def toggle_cine(self) -> None:
        if self.cine.isActive():
            self.cine.stop()
        elif self.controller.state is not None:
            self.cine.start(int(1000 / self.cine_fps.value()))
        self.cine_action.setChecked(self.cine.isActive())

    def _cine_step(self) -> None:
        state = self.controller.state
        if state is None:
            return
        if self.cine_over.currentIndex() == 1 and self.volumes.volumes:
            if not any(t.slot == "load" for t in self.runner.running):  # one at a time
                self.volumes.step(1, wrap=True)
            return
        view = self.active_view()
        k = state.slice_index(view) + 1
        self.controller.go_to(view, 0 if k >= state.mapping(view).shape[0] else k)
