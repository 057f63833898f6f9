"""MedView's main window: browser, viewports, menus, status bar with progress and Cancel."""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolBar,
    QWidget,
)

from medview import __version__
from medview.core.errors import SeriesAssemblyError
from medview.core.records import SeriesRecord
from medview.core.results import Classification, Segmentation
from medview.core.tasks import CancelToken, Progress
from medview.core.volume import Volume
from medview.export.bundle import BundleResult, export_bundle
from medview.export.content import ExportContent, ExportOptions, KeyImage
from medview.inference.domain import SeriesFacts, input_problems, run_in_domain
from medview.inference.worker import InferenceProcess, on_source_grid
from medview.io.assemble import four_d_groups, stack_facts
from medview.io.database import ImportResult, StackRow, StudyDatabase
from medview.io.loader import load_series
from medview.risk.study import SegmentStat, StudyFacts, facts_from_file
from medview.ui.bridge import DeviceQueues, Task, TaskRunner
from medview.ui.browser import SERIES_ROLE, StudyBrowserPanel
from medview.ui.compare import CrosshairSync
from medview.ui.controller import ViewerController
from medview.ui.help import about_text, shortcut_sheet
from medview.ui.models_panel import ModelsPanel
from medview.ui.pacs_panel import PacsPanel, send_request
from medview.ui.risk_panel import RiskPanel
from medview.ui.viewer_panel import ViewerPanel
from medview.viewer.annotations import Kind, Measurement, describe, evaluate, slice_of
from medview.viewer.mpr import View
from medview.viewer.state import ViewerState

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, db: StudyDatabase, settings: QSettings | None = None) -> None:
        super().__init__()
        self.db = db
        self.settings = settings or QSettings()
        self.setWindowTitle(f"MedView {__version__}")
        self.setAcceptDrops(True)
        self.runner = TaskRunner(parent=self)
        self.controller = ViewerController(self)
        self.browser = StudyBrowserPanel(db)
        self.viewer = ViewerPanel(self.controller)
        # a second viewer for side-by-side comparison, hidden until used
        self.compare_controller = ViewerController(self)
        self.compare_viewer = ViewerPanel(self.compare_controller)
        self.compare_viewer.hide()
        self.sync = CrosshairSync(self.controller, self.compare_controller, self)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.browser)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(self.compare_viewer)
        self.splitter.setStretchFactor(1, 4)
        self.setCentralWidget(self.splitter)
        self.current_series: SeriesRecord | None = None
        self._keep_view = False  # the next volume shown keeps the view (4-D stepping)
        self.key_images: list[KeyImage] = []
        self._key_images_of: str | None = None
        # the shown volume and its results (each result carries its own date)
        self.last_segmentation: tuple[Volume, Segmentation] | None = None
        self.last_classification: tuple[Volume, Classification] | None = None
        self.last_export: BundleResult | None = None
        self._open_after_import = True

        self.notices = QListWidget()
        self.notice_dock = QDockWidget("Notices", self)
        self.notice_dock.setObjectName("notices")
        self.notice_dock.setWidget(self.notices)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.notice_dock)
        self.notice_dock.hide()

        self.measure_list = QListWidget()
        self.measure_dock = QDockWidget("Measurements", self)
        self.measure_dock.setObjectName("measurements")
        self.measure_dock.setWidget(self.measure_list)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.measure_dock)
        self.measure_list.itemDoubleClicked.connect(self._edit_measurement_text)
        self.measure_list.itemActivated.connect(self._measurement_activated)
        self.measure_list.itemClicked.connect(self._measurement_activated)
        self.controller.measurements_changed.connect(self._measurements_changed)

        # AI: one queue (a single worker) so inference requests run in order
        self.inference = DeviceQueues(self)
        self._inference_processes: dict[str, InferenceProcess] = {}
        self.model_function: Callable[..., object] | None = None  # tests swap the compute
        self.run_anyway_answer: bool | None = None  # tests answer the outside-domain question
        self.models_panel = ModelsPanel()
        self.models_dock = QDockWidget("Models", self)
        self.models_dock.setObjectName("models")
        self.models_dock.setWidget(self.models_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.models_dock)
        self.tabifyDockWidget(self.measure_dock, self.models_dock)
        self.models_panel.run_requested.connect(self.run_model)
        self.models_panel.overlay_changed.connect(self._overlay_look_changed)
        self.models_panel.label_activated.connect(self._jump_to_label)
        self.models_panel.slice_activated.connect(self._go_to_slice)
        self.controller.changed.connect(self._follow_slice)
        self.inference.task_started.connect(lambda t: self._set_busy(True, t))
        self.inference.task_ended.connect(lambda t: self._set_busy(self._busy()))
        self.models_panel.refresh(None)
        self.models_panel.device.setCurrentText(str(self.settings.value("compute_device", "auto")))
        self._build_risk_dock()
        self.pacs_panel = PacsPanel(
            self.runner, self.settings, self._progress, self.notify, str(self.db.path)
        )
        self.pacs_dock = QDockWidget("PACS", self)
        self.pacs_dock.setObjectName("pacs")
        self.pacs_dock.setWidget(self.pacs_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.pacs_dock)
        self.tabifyDockWidget(self.models_dock, self.pacs_dock)
        self.pacs_panel.retrieved.connect(self._pacs_retrieved)

        self.hover_label = QLabel()
        self.task_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.cancel_button = QPushButton("Cancel")
        sb = self.statusBar()
        sb.addWidget(self.hover_label, 1)
        sb.addPermanentWidget(self.task_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        self._set_busy(False)
        self.cancel_button.clicked.connect(self.cancel_all)

        self.cine = QTimer(self)
        self.cine.timeout.connect(self._cine_step)
        self.cine_fps = QSpinBox(minimum=1, maximum=60, value=10, suffix=" fps")
        self.cine_fps.valueChanged.connect(lambda v: self.cine.setInterval(int(1000 / v)))
        self.cine_over = QComboBox()
        self.cine_over.addItems(["over slices", "over volumes"])
        self.cine_over.setToolTip("Cine steps through the slices, or the volumes of a 4-D series")
        # the volumes of the shown 4-D series and the ones lately shown (stepping, cine)
        self._volumes: list[SeriesRecord] = []
        self._volume_cache: OrderedDict[str, Volume] = OrderedDict()
        self.volume_slider = QSlider(Qt.Orientation.Horizontal)
        self.volume_slider.setRange(1, 1)
        self.volume_slider.setToolTip("Volume of the 4-D series (Ctrl+Up / Ctrl+Down)")
        self.volume_slider.setMaximumWidth(160)
        self.volume_slider.valueChanged.connect(lambda v: self.go_volume(v - 1))
        self.volume_text = QLabel()

        self.browser.series_activated.connect(lambda row: self.open_stack(row.series_uid, row.key))
        self.browser.thumbnails_wanted.connect(self._make_thumbnails)
        for view in self.viewer.views.values():
            view.activated.connect(lambda _v: self._show_active_slab())
        for view in [*self.viewer.views.values(), *self.compare_viewer.views.values()]:
            view.hovered.connect(self.hover_label.setText)
        for view in self.viewer.views.values():
            view.series_dropped.connect(lambda d: self._dropped_series(d, compare=False))
        for view in self.compare_viewer.views.values():
            view.series_dropped.connect(lambda d: self._dropped_series(d, compare=True))
        self.runner.task_started.connect(lambda t: self._set_busy(True, t))
        self.runner.task_ended.connect(lambda t: self._set_busy(self._busy()))
        self._build_actions()
        self._typing_guard = TypingGuard(self)
        QApplication.instance().installEventFilter(self._typing_guard)  # type: ignore[union-attr]
        self.browser.refresh()
        self._restore()

    # -- actions --------------------------------------------------------------------------------
    def _action(
        self,
        menu: object,
        text: str,
        slot: object,
        shortcut: str | None = None,
        checkable: bool = False,
    ) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)  # type: ignore[attr-defined]
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        self.slab_mode = QComboBox()
        self.slab_mode.addItems(["Slab off", "MIP", "MinIP"])
        self.slab_mm = QDoubleSpinBox(
            minimum=1.0, maximum=200.0, value=10.0, suffix=" mm", singleStep=2.0, decimals=1
        )
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "Open file…", self._open_files, "Ctrl+O")
        self._action(f, "Open folder…", self._open_folder, "Ctrl+Shift+O")
        self.recent_menu = f.addMenu("Open recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addSeparator()
        self._action(f, "Add key image", self.add_key_image, "Ctrl+K")
        self._action(f, "Export report…", lambda: self.export_report(), "Ctrl+E")
        self._action(f, "Export de-identified copy…", lambda: self.export_report(deidentify=True))
        self._action(f, "Send to PACS…", lambda: self.send_to_pacs())
        self._action(f, "PACS nodes…", lambda: self.pacs_panel.edit_nodes())
        f.addSeparator()
        self._action(f, "Preferences…", self.show_preferences, "Ctrl+,")
        f.addSeparator()
        self._action(f, "Quit", self.close, "Ctrl+Q")
        v = mb.addMenu("&View")
        tb = QToolBar("View", self)
        tb.setObjectName("viewbar")
        self.addToolBar(tb)
        for name, key in (("1x1", "Ctrl+1"), ("1x3", "Ctrl+3"), ("2x2", "Ctrl+4")):
            act = self._action(v, f"Layout {name}", lambda _=False, n=name: self.set_layout(n), key)
            tb.addAction(act)
        v.addSeparator()
        self._action(v, "Compare: open selected series beside", self.compare_selected, "Ctrl+B")
        self._action(v, "Close comparison", self.close_compare)
        self.sync_action = self._action(
            v, "Synchronise comparison", self._toggle_sync, checkable=True
        )
        self.sync_action.setChecked(True)
        v.addSeparator()
        self.preset_menu = v.addMenu("Window presets")
        for i in range(9):
            self._action(
                self.preset_menu,
                f"Preset {i + 1}",
                lambda _=False, k=i: self.apply_preset(k),
                str(i + 1),
            )
        self.preset_menu.aboutToShow.connect(self._label_presets)
        self._action(v, "Invert", self.controller.toggle_invert, "I")
        self._action(v, "Reset zoom and pan", self.fit_views, "R")
        self._action(v, "Reset view (slices, window, zoom)", self.reset_views, "Shift+R")
        self._action(v, "Fit to window", self.fit_views, "F")
        self._action(v, "Corner annotations", self.controller.toggle_annotations, "Ctrl+T")
        v.addSeparator()
        self.cine_action = self._action(v, "Cine", self.toggle_cine, "C", checkable=True)
        slab = v.addMenu("Thick slab (thickness in the toolbar)")
        for index, label in enumerate(("Off", "MIP", "MinIP")):
            self._action(slab, label, lambda _=False, i=index: self.slab_mode.setCurrentIndex(i))
        tb.addSeparator()
        tb.addAction(self.cine_action)
        tb.addWidget(self.cine_fps)
        tb.addWidget(self.cine_over)
        self._volume_actions = [tb.addWidget(self.volume_text), tb.addWidget(self.volume_slider)]
        tb.addSeparator()
        self._syncing_slab = False
        self.slab_mode.currentIndexChanged.connect(self._slab_changed)
        self.slab_mm.valueChanged.connect(self._slab_changed)
        tb.addWidget(self.slab_mode)
        tb.addWidget(self.slab_mm)
        nav = mb.addMenu("&Navigate")
        for text, keys, delta in (
            ("Next slice", ("Down", "Right"), 1),
            ("Previous slice", ("Up", "Left"), -1),
            ("Forward 10", ("PgDown",), 10),
            ("Back 10", ("PgUp",), -10),
        ):
            act = self._action(nav, text, lambda _=False, d=delta: self.step_active(d))
            act.setShortcuts([QKeySequence(k) for k in keys])
        self._action(nav, "Next volume (4-D)", lambda: self.step_volume(1), "Ctrl+Down")
        self._action(nav, "Previous volume (4-D)", lambda: self.step_volume(-1), "Ctrl+Up")
        self._action(nav, "First slice", lambda: self.go_active(0), "Home")
        self._action(nav, "Last slice", lambda: self.go_active(10**9), "End")
        t = mb.addMenu("&Tools")
        tools_bar = QToolBar("Tools", self)
        tools_bar.setObjectName("toolsbar")
        self.addToolBar(tools_bar)
        self.tool_actions: dict[Kind | None, QAction] = {}
        for label, kind, key in (
            ("Navigate", None, "Esc"),
            ("Ruler", Kind.RULER, "M"),
            ("Angle", Kind.ANGLE, "N"),
            ("Ellipse ROI", Kind.ELLIPSE, "E"),
            ("Rectangle ROI", Kind.RECTANGLE, "G"),
            ("Arrow", Kind.ARROW, "W"),
        ):
            act = self._action(
                t, label, lambda _=False, k=kind: self.set_tool(k), key, checkable=True
            )
            tools_bar.addAction(act)
            self.tool_actions[kind] = act
        self.tool_actions[None].setChecked(True)
        t.addSeparator()
        self._action(t, "Delete measurement", self.controller.delete_selected, "Del")
        self._action(t, "Undo", self.controller.undo, "Ctrl+Z")
        self._action(t, "Redo", self.controller.redo, "Ctrl+Shift+Z")
        t.addSeparator()
        self._action(t, "Copy view to clipboard", self.copy_view, "Ctrl+C")
        self._action(t, "Save view as PNG…", self.save_view_dialog, "Ctrl+S")
        self._action(
            t,
            "Save view as PNG without annotations…",
            lambda: self.save_view_dialog(annotations=False),
            "Ctrl+Shift+S",
        )
        h = mb.addMenu("&Help")
        self._action(h, "Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(h, "About MedView", self.show_about)

    def _label_presets(self) -> None:
        state = self.controller.state
        names = [p.name for p in state.presets] if state else []
        for i, act in enumerate(self.preset_menu.actions()):
            act.setText(f"{i + 1}  {names[i]}" if i < len(names) else f"Preset {i + 1}")
            act.setEnabled(i < len(names))

    # -- view commands --------------------------------------------------------------------------
    def active_view(self) -> View:
        active = self.controller.active_view
        return active.view if active is not None else View.AXIAL

    def step_active(self, delta: int) -> None:
        self.controller.step(self.active_view(), delta)

    def go_active(self, k: int) -> None:
        self.controller.go_to(self.active_view(), k)

    def apply_preset(self, index: int) -> None:
        if not self.controller.apply_preset(index):
            self.statusBar().showMessage(f"No preset {index + 1} for this series", 3000)

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

    def _slab_changed(self) -> None:
        """Thick-slab MIP or MinIP over the given thickness, for the active view (each MPR
        view has its own slab)."""
        if self._syncing_slab:
            return
        mode = self.slab_mode.currentIndex()
        mm = self.slab_mm.value() if mode else 0.0
        self.controller.set_slab(self.active_view(), mm, "minip" if mode == 2 else "mip")

    def _show_active_slab(self) -> None:
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
        if self.cine_over.currentIndex() == 1 and self._volumes:
            if not any(t.slot == "load" for t in self.runner.running):  # one at a time
                self.step_volume(1, wrap=True)
            return
        view = self.active_view()
        k = state.slice_index(view) + 1
        self.controller.go_to(view, 0 if k >= state.mapping(view).shape[0] else k)

    # -- AI -------------------------------------------------------------------------------------
    def _busy(self) -> bool:
        inference = getattr(self, "inference", None)
        return bool(self.runner.running or (inference is not None and inference.running))

    def cancel_all(self) -> None:
        self.runner.cancel_all()
        self.inference.cancel_all()

    def run_model(self, manifest: object, device: str = "auto") -> Task | None:
        """Queue a model run on the shown series; the overlay appears when it finishes."""
        from medview.inference.manifest import ModelManifest
        from medview.inference.runner import segment

        assert isinstance(manifest, ModelManifest)
        state = self.controller.state
        if state is None:
            self.notify("Open a series before running a model.")
            return None
        volume = state.volume
        facts = SeriesFacts.of(self.current_series)
        problems = input_problems(volume, manifest, facts)
        anyway = bool(problems) and self._run_anyway(manifest, problems)
        if problems and not anyway:
            self.notify(f"{manifest.name} was not run: " + "; ".join(problems) + ".")
            return None
        run: Callable[..., object] = self.model_function or segment
        show = self._show_segmentation
        if manifest.task == "classification":
            from medview.inference.classify import classify

            run, show = self.model_function or classify, self._show_classification
        worker = self._inference_process(device)

        def work(*, cancel: CancelToken, progress: Progress) -> object:
            # in a worker process: a native crash there costs this run, not the window
            result = worker.run(
                run_in_domain,
                run,
                volume,
                manifest,
                facts,
                anyway=anyway,
                device=device,
                cancel=cancel,
                progress=progress,
            )
            return on_source_grid(result, volume)

        return self.inference.submit(
            device,
            f"Running {manifest.name}",
            work,
            on_done=lambda r: show(volume, r),
            on_error=self.notify,
            on_progress=self._progress,
        )

    def _run_anyway(self, manifest: Any, problems: list[str]) -> bool:
        """Ask whether to run a model outside its domain (tests answer with
        ``run_anyway_answer``)."""
        if self.run_anyway_answer is not None:
            return self.run_anyway_answer
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Outside the model's domain")
        box.setText(f"{manifest.name} was not made for this series.")
        box.setInformativeText(
            "\n".join(f"• {p}" for p in problems)
            + "\n\nIts result would be marked as outside the model's domain."
        )
        run = box.addButton("Run anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is run

    def _inference_process(self, device: str) -> InferenceProcess:
        """The worker process of one device queue (started on its first run)."""
        if device not in self._inference_processes:
            self._inference_processes[device] = InferenceProcess()
        return self._inference_processes[device]

    def _still_shown(self, volume: Volume, result: Any) -> ViewerState | None:
        """The view state if ``volume`` is still the one shown, else a notice and None."""
        state = self.controller.state
        if state is None or state.volume is not volume:
            self.notify(f"{result.provenance.name}: finished for a series that is no longer shown.")
            return None
        return state

    @staticmethod
    def _run_line(result: Segmentation | Classification) -> str:
        p = result.provenance
        assert p is not None
        return f"{p.name} {p.version} · {p.device} · {p.seconds:.1f} s"

    def _show_classification(
        self, volume: Volume, result: object, kept_on: str | None = None
    ) -> None:
        """Show a classification; a new one is kept with the series (``kept_on``: the date
        of one restored from the study)."""
        from medview.viewer.overlay import HeatmapOverlay

        assert isinstance(result, Classification)
        state = self._still_shown(volume, result)
        if state is None:
            return
        caption = (
            f"{self._run_line(result)} · series figure: {result.aggregation}; heat map: "
            f"Grad-CAM for '{result.target_class}', masked to the body · {result.research_use}"
        )
        if kept_on is not None:
            caption += f" · kept with the study ({kept_on})"
        if result.notes:
            caption += "\n⚠ " + "\n⚠ ".join(result.notes)
        state.heatmap = (
            HeatmapOverlay(result.heatmap, caption=caption, threshold=result.heatmap_threshold)
            if result.heatmap is not None
            else None
        )
        self.last_classification = (volume, result)
        if kept_on is None:
            self._keep_result(volume, result)
        how = result.aggregation + (f" ({result.series_note})" if result.series_note else "")
        self.models_panel.show_finding(
            result.finding or result.target_class,
            result.finding_probability or result.probabilities.get(result.target_class, 0.0),
            how,
            caption,
            heatmap=result.heatmap is not None,
            heat_note=result.heatmap_note,
            threshold=result.heatmap_threshold,
        )
        if result.per_slice is not None:
            column = list(result.probabilities).index(result.target_class)
            per_slice = result.per_slice[:, column]
            self.models_panel.show_slice_probabilities(per_slice, result.target_class)
            self._go_to_slice(int(np.argmax(per_slice)))  # the most probable slice first
        else:
            self.models_panel.show_slice_probabilities(None, "")
        self._overlay_look_changed()
        self.controller.changed.emit()
        self.models_dock.raise_()

    # -- reports ----------------------------------------------------------------------------------
    def add_key_image(self) -> None:
        """Mark the active view's current slice as a key image for the report."""
        state = self.controller.state
        if state is None:
            return
        view = self.active_view()
        k = state.slice_index(view)
        key = KeyImage(view.value, k, f"key image {len(self.key_images) + 1}")
        if all((x.view, x.index) != (key.view, key.index) for x in self.key_images):
            self.key_images.append(key)
        self.notify(f"Key image {len(self.key_images)}: {view.value} slice {k + 1}")

    def _ask_export_dir(self) -> str:
        folder = QFileDialog.getExistingDirectory(
            self, "Export the report bundle into", self._folder("export")
        )
        self._remember_folder("export", folder)
        return folder

    def _folder(self, dialog: str) -> str:
        """The folder a file dialog last used (the home folder the first time)."""
        return str(self.settings.value(f"dialogs/{dialog}", os.path.expanduser("~")))

    def _remember_folder(self, dialog: str, path: str) -> None:
        if path:
            folder = path if os.path.isdir(path) else os.path.dirname(path)
            self.settings.setValue(f"dialogs/{dialog}", folder)

    def export_content(self) -> ExportContent | None:
        """What the report shows, read from the result objects of the shown series."""
        state = self.controller.state
        series = self.current_series
        if state is None or series is None:
            return None
        content = ExportContent(
            measurements=[m.to_dict() for m in self.controller.measurements.items],
            risk=self.db.risk_results(series.study_uid),
            key_images=list(self.key_images),
        )
        seg = self.last_segmentation
        if seg is not None and seg[0] is state.volume:
            content.segmentation = seg[1]  # typed once by the engine: exported as it is
        cls = self.last_classification
        if cls is not None and cls[0] is state.volume:
            content.classifications.append(cls[1])
        return content

    def export_report(self, deidentify: bool = False, out_dir: str | None = None) -> Task | None:
        """Write the report bundle of the shown series in the background (progress, cancel)."""
        content = self.export_content()
        state = self.controller.state
        series = self.current_series
        if content is None or state is None or series is None:
            self.notify("Open a series before exporting a report.")
            return None
        out = out_dir or self._ask_export_dir()
        if not out:
            return None
        w = state.window
        options = ExportOptions(deidentify=deidentify, window=(w.center, w.width))
        volume = state.volume
        study = self.db.study_series(series.study_uid) if deidentify else []

        def work(*, cancel: CancelToken, progress: Progress) -> BundleResult:
            return export_bundle(
                series,
                volume,
                content,
                out,
                options,
                study_series=study,
                cancel=cancel,
                progress=progress,
            )

        def done(result: BundleResult) -> None:
            self.last_export = result
            errors = sum(len(v["errors"]) for v in result.validation.values())
            checked = f"; dciodvfy: {errors} error(s)" if result.validation else ""
            self.notify(f"Report written: {result.path} ({len(result.files)} files{checked})")
            for warning in result.warnings:
                self.notify(f"  {warning}")

        return self.runner.submit(
            "Exporting the report",
            work,
            on_done=done,
            on_error=lambda message: self.notify(f"Export failed: {message}"),
            on_progress=self._progress,
            slot="export",
        )

    def _pacs_retrieved(self, series_uids: list[str]) -> None:
        self.browser.refresh()
        if series_uids:
            self.open_stack(series_uids[0])

    def send_to_pacs(self, node_name: str | None = None, what: str | None = None) -> Task | None:
        """Send the shown series, or the last export (SEG, SR, de-identified copies), to a
        configured node in the background."""
        nodes = {n.name: n for n in self.pacs_panel.nodes}
        if not nodes:
            self.notify("Configure a PACS node first (File > PACS nodes…).")
            return None
        if node_name is None:
            node_name, ok = QInputDialog.getItem(
                self, "Send to PACS", "Node", list(nodes), 0, False
            )
            if not ok:
                return None
        choices = {"The shown series": "series"}
        if self.last_export is not None:
            choices["The last export (SEG, SR and any de-identified copies)"] = "export"
        if what is None:
            label, ok = QInputDialog.getItem(self, "Send to PACS", "What", list(choices), 0, False)
            if not ok:
                return None
            what = choices[label]
        if what == "export" and self.last_export is not None:
            paths = [str(self.last_export.path)]
        elif self.current_series is not None:
            paths = [i.path for i in self.current_series.instances]
        else:
            self.notify("Open a series before sending it.")
            return None
        node = nodes[node_name]

        def done(result: Any) -> None:
            failed = f", {len(result.failed)} failed" if result.failed else ""
            self.notify(f"Sent {result.sent} instance(s) to {node.name}{failed}")
            for name, why in result.failed[:20]:
                self.notify(f"  {name}: {why}")

        return self.runner.submit(
            "Sending to the PACS",
            send_request(node, paths),
            on_done=done,
            on_error=lambda m: self.notify(f"Send failed: {m}"),
            on_progress=self._progress,
            slot="pacs-send",
        )

    def _build_risk_dock(self) -> None:
        self.segments: list[SegmentStat] = []
        self.risk_panel = RiskPanel()
        self.risk_dock = QDockWidget("Risk", self)
        self.risk_dock.setObjectName("risk")
        self.risk_dock.setWidget(self.risk_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.risk_dock)
        self.tabifyDockWidget(self.models_dock, self.risk_dock)
        self.risk_panel.keep_requested.connect(self._keep_risk_result)
        self.settings.beginGroup("risk_last_used")
        self.risk_panel.last_used = {
            k.replace("|", "/"): str(self.settings.value(k)) for k in self.settings.childKeys()
        }
        self.settings.endGroup()
        self.risk_panel.model_used.connect(self._risk_model_used)
        self.risk_panel.measurement_provider = self._selected_measurement_figures
        self.risk_panel.segment_provider = lambda: list(self.segments)

    def _risk_model_used(self, kind: str, model_id: str) -> None:
        """Remember the risk model chosen for this kind of study (modality/body part)."""
        self.settings.setValue(f"risk_last_used/{kind.replace('/', '|')}", model_id)

    def _selected_measurement_figures(self) -> dict[str, float] | None:
        item = self.measure_list.currentItem()
        state = self.controller.state
        if item is None or state is None:
            return None
        m = self.controller.measurements.get(item.data(Qt.ItemDataRole.UserRole))
        return evaluate(m, state.volume) if m is not None else None

    def _keep_risk_result(self, model_id: str, record: dict[str, object]) -> None:
        if self.current_series is not None:
            self.db.save_risk_result(self.current_series.study_uid, model_id, record)

    def _study_changed(self, series: SeriesRecord | None) -> None:
        """Header facts (age, sex, weight, size) for the risk panel, read off the GUI thread."""
        self.segments = []
        if series is None:
            self.risk_panel.set_study(None, None)
            return
        study_uid = series.study_uid
        kept = self.db.risk_results(study_uid)
        kind = (series.modality, series.first.body_part)

        def done(facts: StudyFacts) -> None:
            current = self.current_series
            if current is not None and current.study_uid == study_uid:
                self.risk_panel.set_study(study_uid, facts, kept, *kind)

        self.runner.submit(
            "Reading the study header",
            lambda *, cancel, progress: facts_from_file(series.first.path),
            on_done=done,
            on_error=lambda message: self.risk_panel.set_study(study_uid, None, kept, *kind),
            slot="study-facts",
        )

    def _keep_result(self, volume: Volume, result: object) -> None:
        """Keep a new AI result with its series, in the background (restored on reopening)."""
        from medview.inference.kept import result_record

        series = self.current_series
        if series is None:
            return
        key = series.key
        kind, data, arrays = result_record(result, _now())

        def work(*, cancel: CancelToken, progress: Progress) -> None:
            self.db.save_ai_result(key, kind, data, arrays)

        self.runner.submit(
            "Keeping the result",
            work,
            on_error=lambda m: self.notify(f"The {kind} could not be kept: {m}"),
        )

    def _restore_results(self, volume: Volume) -> Task | None:
        """Show the AI results kept with the shown series (read and decompressed off the
        GUI thread)."""
        from medview.inference.kept import SEGMENTATION, kept_results

        series = self.current_series
        if series is None:
            return None
        key = series.key

        def work(*, cancel: CancelToken, progress: Progress) -> list[tuple[str, Any, str]]:
            return kept_results(self.db.ai_results(key), volume)

        def done(results: list[tuple[str, Any, str]]) -> None:
            for kind, result, date in results:
                if result is None:
                    self.notify(f"A kept {kind} no longer fits this series; it is not shown.")
                elif kind == SEGMENTATION:
                    self._show_segmentation(volume, result, kept_on=date)
                else:
                    self._show_classification(volume, result, kept_on=date)

        return self.runner.submit(
            "Reading kept results", work, on_done=done, on_error=self.notify, slot="kept"
        )

    def _show_segmentation(
        self, volume: Volume, result: object, kept_on: str | None = None
    ) -> None:
        from medview.viewer.overlay import LabelOverlay

        assert isinstance(result, Segmentation)
        state = self._still_shown(volume, result)
        if state is None:
            return
        caption = f"{self._run_line(result)} · {result.research_use}"
        if kept_on is not None:
            caption += f" · kept with the study ({kept_on})"
        overlay = LabelOverlay(
            result.labels,
            {s.value: s.color for s in result.segments},
            {s.value: s.name for s in result.segments},
            caption=caption,
        )
        self.controller.set_overlay(overlay)
        self._overlay_look_changed()
        self.last_segmentation = (volume, result)
        if kept_on is None:
            self._keep_result(volume, result)
        self.segments = [SegmentStat(s.name, s.volume_ml, s.mean) for s in result.stats]
        colours = {s.value: s.color for s in result.segments}
        self.models_panel.show_result(
            [(s.value, s.name, colours[s.value], s.volume_ml, s.mean) for s in result.stats],
            caption + ("\n" + "; ".join(result.notes) if result.notes else ""),
            volume.units,
        )
        for note in result.notes:
            self.notify(
                f"{result.provenance.name if result.provenance else 'Segmentation'}: {note}"
            )
        self.models_dock.raise_()

    def _overlay_look_changed(self) -> None:
        state = self.controller.state
        if state is None:
            return
        if state.heatmap is not None:
            state.heatmap.opacity = self.models_panel.heat_opacity.value() / 100
            state.heatmap.threshold = self.models_panel.heat_threshold.value() / 100
        if state.overlay is not None:
            state.overlay.opacity = self.models_panel.opacity.value() / 100
            state.overlay.outline = self.models_panel.outline.isChecked()
            state.overlay.hidden = self.models_panel.hidden_labels()
        self.controller.changed.emit()

    def _go_to_slice(self, index: int) -> None:
        """Put the crosshair on stored slice ``index`` (the axis 2-D classifiers read)."""
        state = self.controller.state
        if state is None or not 0 <= index < state.volume.shape[0]:
            return
        state.crosshair = np.array(
            [float(index), state.crosshair[1], state.crosshair[2]], dtype=np.float64
        )
        self.controller.changed.emit()

    def _follow_slice(self) -> None:
        state = self.controller.state
        if state is not None:
            self.models_panel.set_current_slice(round(float(state.crosshair[0])))

    def _jump_to_label(self, value: int) -> None:
        state = self.controller.state
        if state is None or state.overlay is None:
            return
        where = state.overlay.largest_section(value)
        if where is not None:
            state.crosshair = np.array(where, dtype=np.float64)
            self.controller.changed.emit()

    # -- comparison -----------------------------------------------------------------------------
    def compare_selected(self) -> None:
        item = self.browser.tree.currentItem()
        row = item.data(0, SERIES_ROLE) if item is not None else None
        if row is None:
            self.statusBar().showMessage("Select a series in the browser to compare", 3000)
            return
        self.open_stack(row.series_uid, row.key, compare=True)

    def _show_compare(self, volume: Volume) -> None:
        self.compare_controller.set_volume(volume, {"modality": volume.modality})
        self.compare_viewer.set_layout(self.viewer.layout_name)
        self.compare_viewer.show()
        # the comparison starts where the main viewer is (same frame of reference)
        self.controller.changed.emit()
        if not self.sync.linked():
            self.notify(
                "The compared series has another frame of reference: scrolling is not synchronised."
            )

    def open_compare(self, series: SeriesRecord) -> Task:
        show = self._show_compare
        return self.runner.submit(
            "Loading comparison",
            load_series,
            series,
            on_done=show,
            on_error=self.notify,
            on_progress=self._progress,
            slot="compare",
        )

    def _dropped_series(self, data: dict[str, str], compare: bool) -> None:
        self.open_stack(data["uid"], data["key"], compare=compare)

    def close_compare(self) -> None:
        self.compare_viewer.hide()
        self.compare_controller.state = None

    def _toggle_sync(self) -> None:
        self.sync.enabled = self.sync_action.isChecked()

    # -- recent studies and preferences ---------------------------------------------------------
    RECENT_MAX = 10

    def recent_studies(self) -> list[str]:
        """Study Instance UIDs, newest first (labels come from the database when shown)."""
        raw = self.settings.value("recent_studies", "")
        return [u for u in str(raw or "").split(",") if u]

    def _remember(self, study_uid: str) -> None:
        recent = [study_uid] + [u for u in self.recent_studies() if u != study_uid]
        self.settings.setValue("recent_studies", ",".join(recent[: self.RECENT_MAX]))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        rows = {r.study_uid: r for r in self.db.search()}
        for uid in self.recent_studies():
            row = rows.get(uid)
            if row is None:
                continue
            label = f"{row.patient_name or row.patient_id}  {row.study_date}  {row.description}"
            act = self.recent_menu.addAction(label)
            act.triggered.connect(lambda _=False, u=uid: self.open_study(u))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def open_study(self, study_uid: str) -> None:
        rows = self.db.stack_rows(study_uid)
        if rows:
            self.open_stack(rows[0].series_uid, rows[0].key)

    def show_preferences(self) -> None:
        from medview.ui.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.settings, self)
        if dialog.exec():
            self.apply_preferences()

    def apply_preferences(self) -> None:
        from medview.ui.preferences import ct_presets
        from medview.ui.theme import apply_theme

        self.controller.ct_presets = ct_presets(self.settings)
        state = self.controller.state
        if state is not None and state.volume.modality == "CT":
            state.presets = self.controller.ct_presets
        apply_theme(QApplication.instance(), str(self.settings.value("theme", "dark")))
        self.models_panel.device.setCurrentText(str(self.settings.value("compute_device", "auto")))

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            self.models_dock.raise_()  # the window opens on the Models tab

    # -- measurements ---------------------------------------------------------------------------
    def set_tool(self, kind: Kind | None) -> None:
        self.controller.set_tool(kind)
        for k, act in self.tool_actions.items():
            act.setChecked(k is kind)

    def _measurements_changed(self) -> None:
        if self.current_series is not None:
            self.db.save_measurements(
                self.current_series.key, [m.to_dict() for m in self.controller.measurements.items]
            )
        self._refresh_measure_list()

    def _refresh_measure_list(self) -> None:
        self.measure_list.clear()
        state = self.controller.state
        if state is None:
            return
        for m in self.controller.measurements.items:
            item = QListWidgetItem(
                f"{m.view.value[:3]} {slice_of(m, state.volume) + 1}: {describe(m, state.volume)}"
            )
            item.setData(Qt.ItemDataRole.UserRole, m.id)
            self.measure_list.addItem(item)

    def _measurement_activated(self, item: QListWidgetItem) -> None:
        state = self.controller.state
        m = self.controller.measurements.get(item.data(Qt.ItemDataRole.UserRole))
        if state is None or m is None:
            return
        self.controller.go_to(m.view, slice_of(m, state.volume))
        self.controller.select(m.id)

    def _edit_measurement_text(self, item: QListWidgetItem) -> None:
        from PySide6.QtWidgets import QInputDialog

        m = self.controller.measurements.get(item.data(Qt.ItemDataRole.UserRole))
        if m is None:
            return
        text, ok = QInputDialog.getText(self, "Label", "Text for this measurement:", text=m.text)
        if ok:
            self.controller.set_text(m.id, text)

    def view_image(self, annotations: bool = True) -> QPixmap:
        """The active viewport as a QPixmap, with or without overlays and annotations."""
        view = self.controller.active_view or self.viewer.views[View.AXIAL]
        shown = self.controller.show_annotations
        self.controller.show_annotations = annotations
        pixmap = view.grab()
        self.controller.show_annotations = shown
        return pixmap

    def copy_view(self) -> None:
        QApplication.clipboard().setPixmap(self.view_image())
        self.statusBar().showMessage("View copied to the clipboard", 3000)

    def save_view(self, path: str, annotations: bool = True) -> bool:
        from medview.core.atomic import atomic_path

        with atomic_path(path, ".png") as tmp:
            ok = bool(self.view_image(annotations).save(tmp, "PNG"))
        return ok

    def save_view_dialog(self, annotations: bool = True) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save view as PNG", os.path.join(self._folder("png"), "view.png"), "PNG (*.png)"
        )
        self._remember_folder("png", path)
        if path:
            self.save_view(path, annotations)

    def _make_thumbnails(self, rows: list[StackRow]) -> None:
        def work(*, cancel: CancelToken, progress: Progress) -> dict[str, object]:
            from medview.viewer.thumbnail import thumbnails

            stacks = [s for r in rows if (s := self.db.stack(r.series_uid, r.key)) is not None]
            return thumbnails(stacks, cancel=cancel, progress=progress)  # type: ignore[return-value]

        self.runner.submit(
            "Thumbnails", work, on_done=self.browser.set_thumbnails, slot="thumbnails"
        )

    # -- opening --------------------------------------------------------------------------------
    def _open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open DICOM files or a zip", self._folder("open")
        )
        if files:
            self._remember_folder("open", files[0])
            self.import_paths(files)

    def _open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder of DICOM files", self._folder("open")
        )
        if folder:
            self._remember_folder("open", os.path.dirname(folder.rstrip("/")) or folder)
            self.import_paths([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

    def import_paths(self, paths: Sequence[str], open_first: bool = True) -> Task:
        """Index ``paths`` into the database off the GUI thread, then show the first series."""
        self._open_after_import = open_first
        self._last_live_refresh = 0.0

        def progress(done: int, total: int, message: str) -> None:
            self._progress(done, total, message)
            now = time.monotonic()
            if done and now - self._last_live_refresh > 0.25:  # the database fills by batches
                self._last_live_refresh = now
                self.browser.refresh()

        return self.runner.submit(
            "Importing",
            self.db.import_paths,
            list(paths),
            on_done=self._imported,
            on_error=self.notify,
            on_progress=progress,
            slot="import",
        )

    def _imported(self, result: ImportResult) -> None:
        self.browser.refresh()
        if result.skipped:
            self.notify(f"{len(result.skipped)} file(s) could not be used:")
            for s in result.skipped[:500]:
                self.notify(f"  {os.path.basename(s.path)}: {s.reason}", detail=s.path)
        if not result.series_uids:
            self.notify("No images found in what was opened.")
            return
        if self._open_after_import:
            self.open_stack(result.series_uids[0])

    def open_stack(self, series_uid: str, key: str | None = None, compare: bool = False) -> Task:
        """Open a stack by UID and key (None: the first stack of the series). The instance
        records are read and the pixels decoded in the worker."""

        def work(
            *, cancel: CancelToken, progress: Progress
        ) -> tuple[SeriesRecord, Volume, list[SeriesRecord]]:
            stacks = self.db.series(series_uid)
            chosen = next((s for s in stacks if key is None or s.key == key), None)
            if chosen is None:
                raise SeriesAssemblyError("that series is no longer in the database")
            # the volumes of a 4-D series on one grid, in order: what the volume slider steps
            group = next(
                g for g in four_d_groups(stacks, stack_facts) if any(s is chosen for s in g)
            )
            return chosen, load_series(chosen, cancel=cancel, progress=progress), group

        def done(result: tuple[SeriesRecord, Volume, list[SeriesRecord]]) -> None:
            series, volume, volumes = result
            if compare:
                self._show_compare(volume)
            else:
                self._volumes = volumes if len(volumes) > 1 else []
                self._volume_cache.clear()
                self._cache_volume(series.key, volume)
                self.current_series = series
                self._show_volume(volume)

        return self.runner.submit(
            "Loading",
            work,
            on_done=done,
            on_error=self.notify,
            on_progress=self._progress,
            slot="compare" if compare else "load",
        )

    VOLUME_CACHE_BYTES = 768 * 1024**2  # volumes of a 4-D series kept for stepping and cine

    def _cache_volume(self, key: str, volume: Volume) -> None:
        if not self._volumes:
            return
        self._volume_cache[key] = volume
        self._volume_cache.move_to_end(key)
        while (
            len(self._volume_cache) > 1
            and sum(v.array.nbytes for v in self._volume_cache.values()) > self.VOLUME_CACHE_BYTES
        ):
            self._volume_cache.popitem(last=False)

    def _show_volume_control(self) -> None:
        """The volume slider and its label, shown for a 4-D series only."""
        s = self.current_series
        keys = [v.key for v in self._volumes]
        four_d = s is not None and s.key in keys
        for act in self._volume_actions:
            act.setVisible(four_d)
        if not four_d or s is None:
            return
        self.volume_slider.blockSignals(True)
        self.volume_slider.setMaximum(len(keys))
        self.volume_slider.setValue(keys.index(s.key) + 1)
        self.volume_slider.blockSignals(False)
        self.volume_text.setText(f" Volume {keys.index(s.key) + 1}/{len(keys)} ")
        self.volume_text.setToolTip(s.volume_label)

    def step_volume(self, delta: int, wrap: bool = False) -> Task | None:
        """Show the next (or previous) volume of the shown 4-D series, keeping slice, window
        and zoom; says so when there is no other volume."""
        s = self.current_series
        keys = [v.key for v in self._volumes]
        if s is None or s.key not in keys:
            self.statusBar().showMessage("The shown series has a single volume", 3000)
            return None
        k = keys.index(s.key) + delta
        if wrap:
            k %= len(keys)
        if not 0 <= k < len(keys):
            self.statusBar().showMessage("No further volume", 2000)
            return None
        return self.go_volume(k)

    def go_volume(self, k: int) -> Task | None:
        """Show volume ``k`` (from 0) of the shown 4-D series, keeping the view; from the cache
        at once when it was shown lately, else loaded in the worker."""
        if not 0 <= k < len(self._volumes):
            return None
        target = self._volumes[k]
        self._keep_view = True
        cached = self._volume_cache.get(target.key)
        if cached is not None:
            self._volume_cache.move_to_end(target.key)
            self.current_series = target
            self._show_volume(cached)
            return None

        def done(volume: Volume) -> None:
            self._cache_volume(target.key, volume)
            self.current_series = target
            self._show_volume(volume)

        return self.runner.submit(
            "Loading volume",
            lambda *, cancel, progress: load_series(target, cancel=cancel, progress=progress),
            on_done=done,
            on_error=self.notify,
            on_progress=self._progress,
            slot="load",
        )

    def open_series(self, series: SeriesRecord) -> Task:
        self.current_series = series
        self._volumes = []
        return self.runner.submit(
            "Loading",
            load_series,
            series,
            on_done=self._show_volume,
            on_error=self.notify,
            on_progress=self._progress,
            slot="load",
        )

    def _show_volume(self, volume: Volume) -> None:
        s = self.current_series
        first = s.first if s is not None else None
        info = {
            "patient_name": first.patient_name if first else "",
            "patient_id": first.patient_id if first else "",
            "study_date": first.study_date if first else "",
            "modality": volume.modality,
            "volume": volume.volume_label,
        }
        before = self.controller.state
        keep = (  # another volume of the same 4-D series on the same grid: keep the view
            self._keep_view
            and before is not None
            and before.volume.geometry.almost_equal(volume.geometry)
        )
        self._keep_view = False
        if s is not None:
            self._remember(s.study_uid)
        if s is None or self.risk_panel.study_uid != s.study_uid:
            self._study_changed(s)
        if s is None or s.key != self._key_images_of:
            self.key_images = []
            self._key_images_of = s.key if s is not None else None
        stored = self.db.load_measurements(s.key) if s is not None else []
        self.controller.set_volume(volume, info, [Measurement.from_dict(d) for d in stored])
        self.models_panel.refresh(volume)
        self.models_panel.clear_results()
        self._refresh_measure_list()
        if keep and before is not None:
            state = self.controller.state
            assert state is not None
            state.crosshair = before.crosshair.copy()
            state.window, state.invert = before.window, before.invert
            self.controller.changed.emit()
        else:
            self.viewer.set_layout(self.viewer.layout_name)
            for v in self.viewer.views.values():
                v.reset()
        if not keep:  # stepping through the volumes of one series: said once
            for w in volume.warnings:
                self.notify(f"Series warning: {w}")
        self._show_volume_control()
        self._restore_results(volume)
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus) or focus is self.browser.tree:
            # the keys (slices, presets) work at once; a form being typed in keeps the focus
            self.viewer.views[self.active_view()].setFocus()

    # -- status -----------------------------------------------------------------------------
    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.task_label.setText(message)

    def _set_busy(self, busy: bool, task: Task | None = None) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.task_label.setVisible(busy)
        if task is not None:
            self.task_label.setText(task.name)
            self.progress.setValue(0)

    def notify(self, message: str, detail: str | None = None) -> None:
        """A non-blocking notice: listed in the Notices panel and logged (no patient data)."""
        self.notices.addItem(message)
        if detail:
            self.notices.item(self.notices.count() - 1).setToolTip(detail)
        self.notice_dock.show()
        self.statusBar().showMessage(message, 5000)

    # -- help -----------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(shortcut_sheet(self.shortcut_rows()))
        box.setModal(False)
        box.show()

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(menu, action, keys) for every action with a shortcut, read from the menus."""
        rows = []

        def walk(menu: Any, path: str) -> None:
            for act in menu.actions():
                if act.menu() is not None:
                    walk(act.menu(), f"{path} › {act.text().replace('&', '')}")
                elif act.shortcuts():
                    keys = " / ".join(
                        k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts()
                    )
                    rows.append((path, act.text().replace("&", ""), keys))

        for top in self.menuBar().actions():
            if top.menu() is not None:
                walk(top.menu(), top.text().replace("&", ""))
        return rows

    def show_about(self) -> None:
        QMessageBox.about(self, "About MedView", about_text())

    # -- lifetime -------------------------------------------------------------------------------
    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window_state")
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.value("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        default = str(self.settings.value("default_layout", "1x3"))
        self.set_layout(str(self.settings.value("layout", default)))
        from medview.ui.preferences import ct_presets

        self.controller.ct_presets = ct_presets(self.settings)

    def closeEvent(self, event: object) -> None:
        if getattr(self, "_shut_down", False):  # closed already (File > Quit, then a signal)
            super().closeEvent(event)  # type: ignore[arg-type]
            return
        self._shut_down = True
        QApplication.instance().removeEventFilter(self._typing_guard)  # type: ignore[union-attr]
        self.inference.cancel_all()
        for process in self._inference_processes.values():
            process.shutdown()
        self.inference.shutdown()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.cine.stop()
        self.pacs_panel.shutdown()
        self.risk_panel.flush()  # a result edited just now is kept before the database closes
        self.runner.shutdown()
        super().closeEvent(event)  # type: ignore[arg-type]


def _now() -> str:
    import datetime as dt

    return dt.datetime.now().isoformat(timespec="seconds")


class TypingGuard(QObject):
    """Keys typed into a form, a search box, a list or any widget outside the viewers go to
    that widget: the viewer's plain-key shortcuts (digits for presets, letters for tools,
    arrows for slices) are overridden there. Keys with Ctrl or Alt and F-keys still work."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(obj, QWidget):
            return False
        w = self._window
        if obj is w or not w.isAncestorOf(obj):
            return False
        if any(v.isAncestorOf(obj) or v is obj for v in (w.viewer, w.compare_viewer)):
            return False
        assert isinstance(event, QKeyEvent)
        held = event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        )
        if not held and not Qt.Key.Key_F1 <= event.key() <= Qt.Key.Key_F35:
            event.accept()  # the widget gets the key; the shortcut does not fire
        return False
