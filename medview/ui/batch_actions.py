"""The window's cohort actions: File > Run on many studies... and Save reading as
pipeline..."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

from medview.batch.pipeline import pipeline_toml
from medview.batch.reading import pipeline_from_reading
from medview.core.atomic import atomic_path
from medview.core.errors import MedviewError
from medview.ui.batch_dialog import BatchDialog
from medview.ui.report_actions import dialog_folder, remember_folder


def run_on_many_studies(w: Any) -> BatchDialog:
    dialog = getattr(w, "batch_dialog", None)
    if dialog is None:
        dialog = w.batch_dialog = BatchDialog(w.settings, w)
    dialog.show()
    dialog.raise_()
    return dialog


def save_reading_as_pipeline(w: Any, path: str | None = None) -> str | None:
    """Write the reading's pipeline (the models run, the risk models scored) as TOML."""
    try:
        pipeline = pipeline_from_reading(w.session)
    except MedviewError as e:
        QMessageBox.information(w, "Save reading as pipeline", e.message)
        return None
    if path is None:
        start = f"{dialog_folder(w.settings, 'pipeline')}/pipeline.toml"
        path, _ = QFileDialog.getSaveFileName(
            w, "Save reading as pipeline", start, "Pipelines (*.toml)"
        )
        if not path:
            return None
    remember_folder(w.settings, "pipeline", path)
    w.settings.setValue("batch/pipeline", path)  # what the cohort dialog offers next
    with atomic_path(path, ".toml") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(pipeline_toml(pipeline))
    w.notify(f"Pipeline saved: {path}. File > Run on many studies… runs it on a cohort.")
    if getattr(w, "batch_dialog", None) is not None:
        w.batch_dialog.pipeline.setText(path)
    return path
