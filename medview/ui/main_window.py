"""MedView's main window: composition of the browser, the viewers, the docks and the status
bar around one `StudySession`. The session holds the reading; the window's parts open series
into it (reading in workers), render what it says changed, and route the menus:

- `opening.SeriesOpener`: dialogs, drops, imports, opening stacks, thumbnails, recent studies
- `view_tools.ViewTools`: layouts, presets, tools, slabs, cine; `four_d.VolumeStepper`
- `measure_dock.MeasurementDock`, `ai_results.AiResults` (Models dock), `risk_dock.RiskDock`,
  the PACS dock (`pacs_panel`), `report_panel.ReportDock` (the narrative report),
  `report_actions.ReportActions` (key images, export, send)
- `actions`: the menus, toolbars and shortcuts
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabBar,
)

from medview import __version__
from medview.core.records import SeriesRecord
from medview.core.volume import Volume
from medview.io.database import StudyDatabase
from medview.session import StudySession
from medview.ui.actions import TypingGuard, build_menus, shortcut_rows
from medview.ui.ai_results import AiResults
from medview.ui.bridge import Task, TaskRunner
from medview.ui.browser import SERIES_ROLE, StudyBrowserPanel
from medview.ui.compare import CrosshairSync
from medview.ui.controller import ViewerController
from medview.ui.help import about_text, shortcut_sheet
from medview.ui.measure_dock import MeasurementDock
from medview.ui.opening import SeriesOpener
from medview.ui.pacs_panel import PacsPanel
from medview.ui.report_actions import ReportActions
from medview.ui.report_panel import ReportDock
from medview.ui.risk_dock import RiskDock
from medview.ui.segment_editor import SegmentEditorDock
from medview.ui.view3d import View3D
from medview.ui.view_tools import ViewTools
from medview.ui.viewer_panel import ViewerPanel

log = logging.getLogger(__name__)
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
HORIZONTAL = Qt.Orientation.Horizontal


class MainWindow(QMainWindow):
    def __init__(self, db: StudyDatabase, settings: QSettings | None = None) -> None:
        super().__init__()
        self.db = db
        self.settings = settings or QSettings()
        self.setWindowTitle(f"MedView {__version__}")
        self.setAcceptDrops(True)
        self.runner = TaskRunner(parent=self)
        # database writes, in order, off the GUI thread; drained (not cancelled) on closing
        self.keeper = TaskRunner(workers=1, parent=self)
        self.session = StudySession(db, keep=self._keep)
        self.session.subscribe("series", self._series_shown)
        self.session.autosave = False  # kept on a timer: a stroke never waits for a write
        self.session.subscribe("measurements", lambda _s: self.controller.changed.emit())
        self.autosave = QTimer(self)  # the working segmentation, kept 1.5 s after an edit
        self.autosave.setSingleShot(True)
        self.autosave.setInterval(1500)
        self.autosave.timeout.connect(self.session.keep_segmentation)
        self.session.subscribe("segmentation", self._segmentation_changed)
        self.controller = ViewerController(self)
        self.browser = StudyBrowserPanel(db, self.runner)
        # the 3-D view (VTK is imported when it is first shown)
        self.view3d = View3D(self.controller, self.runner, self.notify, self._progress)
        self.viewer = ViewerPanel(self.controller, self.view3d)
        # a second viewer for side-by-side comparison, hidden until used
        self.compare_controller = ViewerController(self)
        self.compare_viewer = ViewerPanel(self.compare_controller)
        self.compare_viewer.hide()
        self.sync = CrosshairSync(self.controller, self.compare_controller, self)
        self.splitter = QSplitter()
        for widget in (self.browser, self.viewer, self.compare_viewer):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(1, 4)
        self.setCentralWidget(self.splitter)

        self.sync_action: Any = None  # set with the menus
        self.notices = QListWidget()
        self.notice_dock = self._dock("Notices", "notices", self.notices)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.notice_dock)
        self.notice_dock.hide()
        self.hover_label, self.task_label = QLabel(), QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.cancel_button = QPushButton("Cancel")

        self.opener = SeriesOpener(
            db,
            self.session,
            self.runner,
            self.browser,
            self.settings,
            self._show_compare,
            self.notify,
            self._progress,
            self,
        )
        self.volumes = self.opener.volumes
        self.volume_slider, self.volume_text = self.volumes.slider, self.volumes.text
        self.step_volume = self.volumes.step
        self.import_paths, self.open_stack = self.opener.import_paths, self.opener.open_stack
        self.tools = ViewTools(
            self.controller,
            self.viewer,
            self.volumes,
            self.runner,
            self.settings,
            self.statusBar,
            self,
        )
        self.measure_dock = MeasurementDock(self.session, self.controller, self)
        self.measure_list = self.measure_dock.list
        self.addDockWidget(RIGHT, self.measure_dock)
        self.controller.measurements_changed.connect(self.session.measurements_changed)
        self.ai = AiResults(
            self.session, self.controller, self.settings, self.notify, self._progress, self
        )
        self.models_panel, self.models_dock = self.ai.panel, self.ai.dock
        self.inference, self.run_model = self.ai.inference, self.ai.run_model
        self.addDockWidget(RIGHT, self.models_dock)
        self.tabifyDockWidget(self.measure_dock, self.models_dock)
        self.segment_dock = SegmentEditorDock(
            self.session, self.controller, self.runner, self.notify, self._progress, self
        )
        self.addDockWidget(RIGHT, self.segment_dock)
        self.tabifyDockWidget(self.models_dock, self.segment_dock)
        self.tools.stop_painting = self.segment_dock.stop_brush
        self.risk_dock = RiskDock(
            self.session, self.runner, self.settings, self.measure_dock.selected_figures, self
        )
        self.risk_panel = self.risk_dock.panel
        self.addDockWidget(RIGHT, self.risk_dock)
        self.tabifyDockWidget(self.models_dock, self.risk_dock)
        self.pacs_panel = PacsPanel(
            self.runner, self.settings, self._progress, self.notify, str(self.db.path)
        )
        self.pacs_dock = self._dock("PACS", "pacs", self.pacs_panel)
        self.addDockWidget(RIGHT, self.pacs_dock)
        self.tabifyDockWidget(self.models_dock, self.pacs_dock)
        self.pacs_panel.retrieved.connect(self.opener.retrieved)
        self.report_dock = ReportDock(self.session, self.runner, self.settings, self.notify, self)
        self.addDockWidget(RIGHT, self.report_dock)
        self.tabifyDockWidget(self.models_dock, self.report_dock)
        # the six tabs' titles must not widen the dock area beyond its widest panel
        for bar in self.findChildren(QTabBar):
            bar.setUsesScrollButtons(True)
        self.resizeDocks([self.segment_dock], [self.segment_dock.sizeHint().width()], HORIZONTAL)
        self.report = ReportActions(
            self,
            self.session,
            self.controller,
            self.viewer,
            self.runner,
            self.pacs_panel,
            self.settings,
            self.notify,
            self._progress,
        )
        self.export_report, self.send_to_pacs = self.report.export_report, self.report.send_to_pacs
        self.view3d.key_image.connect(self.report.add_rendering)
        self.view3d.data_key = self._labels_key

        sb = self.statusBar()
        sb.addWidget(self.hover_label, 1)
        for w in (self.task_label, self.progress, self.cancel_button):
            sb.addPermanentWidget(w)
        self._set_busy(False)
        self.cancel_button.clicked.connect(self.cancel_all)
        for view in self.viewer.views.values():
            view.series_dropped.connect(lambda d: self.open_stack(d["uid"], d["key"]))
        for view in self.compare_viewer.views.values():
            view.series_dropped.connect(lambda d: self.open_stack(d["uid"], d["key"], True))
        for view in [*self.viewer.views.values(), *self.compare_viewer.views.values()]:
            view.hovered.connect(self.hover_label.setText)
        for runner in (self.runner, self.keeper, self.inference):
            runner.task_started.connect(lambda t: self._set_busy(True, t))
            runner.task_ended.connect(lambda t: self._set_busy(self._busy()))
        build_menus(self)
        self._typing_guard = TypingGuard(self)
        QApplication.instance().installEventFilter(self._typing_guard)  # type: ignore[union-attr]
        self.browser.refresh()
        self.opener.refresh_recent()
        self._restore()

    def _dock(self, title: str, name: str, widget: Any) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        return dock

    @property
    def current_series(self) -> SeriesRecord | None:
        return self.session.series

    def _keep(self, what: str, job: Any) -> None:
        """The session's database writes run here: in order, in the keeper's worker."""
        self.keeper.submit(
            f"Keeping {what}",
            lambda *, cancel, progress: job(),
            on_error=lambda m: self.notify(f"{what[0].upper()}{what[1:]} could not be kept: {m}"),
        )

    def _segmentation_changed(self, session: StudySession) -> None:
        if session.unsaved:
            self.autosave.start()

    def _labels_key(self, overlay: Any) -> tuple[int, int, int]:
        """The voxels of the overlay now: its label map and the editor's last step (showing or
        hiding a segment takes no step, so its surfaces stay)."""
        editor = self.session.editor
        done = editor.history.done if editor is not None else []
        address = overlay.labels.array.__array_interface__["data"][0]  # views share it
        return address, len(done), id(done[-1]) if done else 0

    def undo(self) -> None:
        """Undo the reading's last step: a measurement, an edit or a model's segmentation."""
        try:
            done = self.session.undo()
        except RuntimeError:
            done = None
        self.statusBar().showMessage(f"Undone: {done}" if done else "Nothing to undo", 2000)

    def redo(self) -> None:
        done = self.session.redo()
        self.statusBar().showMessage(f"Redone: {done}" if done else "Nothing to redo", 2000)

    def _series_shown(self, session: StudySession) -> None:
        """Render the series the session now shows (its results follow as their own events)."""
        s, volume = session.series, session.volume
        assert s is not None and volume is not None
        info = {
            "patient_name": s.first.patient_name,
            "patient_id": s.first.patient_id,
            "study_date": s.first.study_date,
            "modality": volume.modality,
            "volume": volume.volume_label,
        }
        before = self.controller.state
        keep = (  # another volume of the same 4-D series on the same grid: keep the view
            self.opener.keep_view
            and before is not None
            and before.volume.geometry.almost_equal(volume.geometry)
        )
        self.opener.keep_view = False
        self.controller.set_volume(volume, info, session.measurements)
        self.measure_dock.refresh()
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
            for w in volume.warnings:  # stepping through the volumes of one series: said once
                self.notify(f"Series warning: {w}")
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus) or focus is self.browser.tree:
            # the keys (slices, presets) work at once; a form being typed in keeps the focus
            self.viewer.views[self.tools.active_view()].setFocus()

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
        """Load ``series`` (from the database or not) into the comparison viewer."""
        from medview.io.loader import load_series

        return self.runner.submit(
            "Loading comparison",
            load_series,
            series,
            on_done=self._show_compare,
            on_error=self.notify,
            on_progress=self._progress,
            slot="compare",
        )

    def close_compare(self) -> None:
        self.compare_viewer.hide()
        self.compare_controller.state = None

    def toggle_sync(self) -> None:
        self.sync.enabled = self.sync_action.isChecked()

    # -- drops, preferences, help ---------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

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

    def show_shortcuts(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(shortcut_sheet(self.shortcut_rows()))
        box.setModal(False)
        box.show()

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        return shortcut_rows(self.menuBar())

    def show_about(self) -> None:
        QMessageBox.about(self, "About MedView", about_text())

    # -- status ---------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return bool(self.runner.running or self.keeper.running or self.inference.running)

    def cancel_all(self) -> None:
        self.runner.cancel_all()
        self.inference.cancel_all()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.task_label.setText(message)

    def _set_busy(self, busy: bool, task: Task | None = None) -> None:
        for widget in (self.progress, self.cancel_button, self.task_label):
            widget.setVisible(busy)
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

    # -- lifetime -------------------------------------------------------------------------------
    def _restore(self) -> None:
        for key, restore in (
            ("geometry", self.restoreGeometry),
            ("window_state", self.restoreState),
            ("splitter", self.splitter.restoreState),
        ):
            value = self.settings.value(key)
            if value is not None:
                restore(value)
        default = str(self.settings.value("default_layout", "1x3"))
        self.tools.set_layout(str(self.settings.value("layout", default)))
        from medview.ui.preferences import ct_presets

        self.controller.ct_presets = ct_presets(self.settings)

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            self.models_dock.raise_()  # the window opens on the Models tab

    def closeEvent(self, event: object) -> None:
        if getattr(self, "_shut_down", False):  # closed already (File > Quit, then a signal)
            super().closeEvent(event)  # type: ignore[arg-type]
            return
        self._shut_down = True
        QApplication.instance().removeEventFilter(self._typing_guard)  # type: ignore[union-attr]
        self.ai.shutdown()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.tools.cine.stop()
        self.view3d.shutdown()
        self.pacs_panel.shutdown()
        self.risk_panel.flush()  # a result edited just now is kept before the database closes
        self.session.keep_segmentation()  # and an edit not yet kept
        self.runner.shutdown()
        self.keeper.shutdown(cancel=False)  # every write asked for is made
        super().closeEvent(event)  # type: ignore[arg-type]
