"""Report actions of the window: key images, the report bundle export, sending to the PACS,
and the active view as an image (clipboard or PNG). The content comes from the session; the
writing runs in a worker with progress and Cancel."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QMainWindow,
    QMessageBox,
)

from medview.export.bundle import BundleResult
from medview.export.content import ExportOptions, KeyImage
from medview.session import StudySession
from medview.ui.bridge import Task, TaskRunner
from medview.ui.controller import ViewerController
from medview.ui.pacs_panel import PacsPanel, send_request
from medview.ui.viewer_panel import ViewerPanel
from medview.viewer.mpr import View


def dialog_folder(settings: QSettings, dialog: str) -> str:
    """The folder a file dialog last used (the home folder the first time)."""
    return str(settings.value(f"dialogs/{dialog}", os.path.expanduser("~")))


def remember_folder(settings: QSettings, dialog: str, path: str) -> None:
    if path:
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        settings.setValue(f"dialogs/{dialog}", folder)


class ReportActions:
    def __init__(
        self,
        window: QMainWindow,
        session: StudySession,
        controller: ViewerController,
        viewer: ViewerPanel,
        runner: TaskRunner,
        pacs: PacsPanel,
        settings: QSettings,
        notify: Callable[[str], None],
        progress: Callable[[int, int, str], None],
    ) -> None:
        self.window, self.session, self.controller = window, session, controller
        self.viewer = viewer
        self.runner, self.pacs, self.settings = runner, pacs, settings
        self.notify, self.progress = notify, progress

    def _active(self) -> View:
        active = self.controller.active_view
        return active.view if active is not None else View.AXIAL

    # -- key images and the export --------------------------------------------------------------
    def add_key_image(self) -> None:
        """Mark the active view's current slice as a key image for the report; with the
        3-D view in use (it has the focus, or it is the only view), its rendering."""
        state = self.controller.state
        if state is None or self.session.volume is None:
            return
        view3d = self.viewer.view3d
        if view3d is not None and self.viewer.showing_3d():
            focus = self.window.focusWidget()
            if not self.viewer.visible_views() or (
                focus is not None and view3d.isAncestorOf(focus)
            ):
                view3d.add_key_image()
                return
        view = self._active()
        k = state.slice_index(view)
        count = len(self.session.key_images)
        self.session.add_key_image(KeyImage(view.value, k, f"key image {count + 1}"))
        self.notify(f"Key image {len(self.session.key_images)}: {view.value} slice {k + 1}")

    def add_rendering(self, png: bytes) -> None:
        """A rendering of the 3-D view as a key image for the report."""
        if self.session.volume is None:
            return
        n = sum(1 for k in self.session.key_images if k.view == "3d")
        count = len(self.session.key_images)
        self.session.add_key_image(KeyImage("3d", n, f"key image {count + 1}", png))
        self.notify(f"Key image {len(self.session.key_images)}: 3-D rendering")

    def ask_export_dir(self) -> str:
        folder = QFileDialog.getExistingDirectory(
            self.window, "Export the report bundle into", dialog_folder(self.settings, "export")
        )
        remember_folder(self.settings, "export", folder)
        return folder

    def export_report(
        self,
        deidentify: bool = False,
        out_dir: str | None = None,
        narrative_confirmed: bool | None = None,
    ) -> Task | None:
        """Write the report bundle of the shown series in the background (progress, cancel).
        A de-identified bundle carries the report's narrative only when the user confirms it
        holds no identifiers (``narrative_confirmed``; None: ask)."""
        state = self.controller.state
        if state is None or self.session.volume is None:
            self.notify("Open a series before exporting a report.")
            return None
        out = out_dir or self.ask_export_dir()
        if not out:
            return None
        if deidentify and self.session.report is not None and narrative_confirmed is None:
            answer = QMessageBox.question(
                self.window,
                "Report text in a de-identified export",
                "The report's text is free text: the de-identification profile does not "
                "change it. Include the report text in this de-identified bundle?\n\n"
                "Answer Yes only if it holds no names, identifiers, dates or places.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            narrative_confirmed = answer == QMessageBox.StandardButton.Yes
        w = state.window
        options = ExportOptions(
            deidentify=deidentify,
            window=(w.center, w.width),
            narrative_confirmed=bool(narrative_confirmed),
        )

        def done(result: BundleResult) -> None:
            self.session.last_export = result
            errors = sum(len(v["errors"]) for v in result.validation.values())
            checked = f"; dciodvfy: {errors} error(s)" if result.validation else ""
            self.notify(f"Report written: {result.path} ({len(result.files)} files{checked})")
            for warning in result.warnings:
                self.notify(f"  {warning}")

        return self.runner.submit(
            "Exporting the report",
            self.session.export_job(out, options),
            on_done=done,
            on_error=lambda message: self.notify(f"Export failed: {message}"),
            on_progress=self.progress,
            slot="export",
        )

    # -- the PACS -------------------------------------------------------------------------------
    def send_to_pacs(self, node_name: str | None = None, what: str | None = None) -> Task | None:
        """Send the shown series, or the last export (SEG, SR, de-identified copies), to a
        configured node in the background."""
        nodes = {n.name: n for n in self.pacs.nodes}
        if not nodes:
            self.notify("Configure a PACS node first (File > PACS nodes…).")
            return None
        if node_name is None:
            node_name, ok = QInputDialog.getItem(
                self.window, "Send to PACS", "Node", list(nodes), 0, False
            )
            if not ok:
                return None
        last = self.session.last_export
        choices = {"The shown series": "series"}
        if last is not None:
            choices["The last export (SEG, SR and any de-identified copies)"] = "export"
        if what is None:
            label, ok = QInputDialog.getItem(
                self.window, "Send to PACS", "What", list(choices), 0, False
            )
            if not ok:
                return None
            what = choices[label]
        if what == "export" and last is not None:
            paths = [str(last.path)]
        elif self.session.series is not None:
            paths = [i.path for i in self.session.series.instances]
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
            on_progress=self.progress,
            slot="pacs-send",
        )

    # -- the view as an image -------------------------------------------------------------------
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
        self.window.statusBar().showMessage("View copied to the clipboard", 3000)

    def save_view(self, path: str, annotations: bool = True) -> bool:
        from medview.core.atomic import atomic_path

        with atomic_path(path, ".png") as tmp:
            ok = bool(self.view_image(annotations).save(tmp, "PNG"))
        return ok

    def save_view_dialog(self, annotations: bool = True) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            "Save view as PNG",
            os.path.join(dialog_folder(self.settings, "png"), "view.png"),
            "PNG (*.png)",
        )
        remember_folder(self.settings, "png", path)
        if path:
            self.save_view(path, annotations)
