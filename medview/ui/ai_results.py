"""Model runs and their results in the window: the Models dock, the device queues and worker
processes, and the session's segmentation and classification drawn as overlays with their
legend, finding and per-slice probabilities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox

from medview.core.results import Classification, Segmentation
from medview.core.tasks import CancelToken, Progress
from medview.core.volume import Volume
from medview.inference.domain import SeriesFacts, input_problems
from medview.inference.worker import InferenceProcess, on_source_grid
from medview.session import StudySession
from medview.ui.bridge import DeviceQueues, Task
from medview.ui.controller import ViewerController
from medview.ui.models_panel import ModelsPanel

# segmentations opened from another system's object: where from, not a MedView model run
OPENED_FROM = {
    "dicom-seg": "a DICOM SEG",
    "dicom-rtstruct": "an RT structure set",
    "nifti-labels": "a label map file",
}


def opened_line(result: Segmentation) -> str | None:
    """ "Opened from a DICOM SEG: <algorithm or creator> <version>, <date>", or None for a
    result MedView made."""
    p = result.provenance
    if p is None or p.model_id not in OPENED_FROM:
        return None
    date = f"{p.date[:4]}-{p.date[4:6]}-{p.date[6:8]}" if len(p.date) == 8 else p.date
    made = " ".join(x for x in (p.name, p.version) if x)
    return f"Opened from {OPENED_FROM[p.model_id]}: {made}" + (f", {date}" if date else "")


def run_line(result: Segmentation | Classification) -> str:
    p = result.provenance
    assert p is not None
    return f"{p.name} {p.version} · {p.device} · {p.seconds:.1f} s"


class AiResults(QObject):
    """Runs models on the session's volume (one queue per device, each with its own worker
    process) and shows what the session accepts."""

    def __init__(
        self,
        session: StudySession,
        controller: ViewerController,
        settings: QSettings,
        notify: Callable[[str], None],
        progress: Callable[[int, int, str], None],
        parent: QMainWindow,
    ) -> None:
        super().__init__(parent)
        self.session, self.controller = session, controller
        self.notify, self.progress = notify, progress
        self.window = parent
        self.inference = DeviceQueues(self)
        self._processes: dict[str, InferenceProcess] = {}
        self.model_function: Callable[..., object] | None = None  # tests swap the compute
        self.run_anyway_answer: bool | None = None  # tests answer the outside-domain question
        self.panel = ModelsPanel()
        self.dock = QDockWidget("Models", parent)
        self.dock.setObjectName("models")
        self.dock.setWidget(self.panel)
        self.panel.run_requested.connect(self.run_model)
        self.panel.overlay_changed.connect(self.overlay_look_changed)
        self.panel.label_activated.connect(self._jump_to_label)
        self.panel.label_shown.connect(self._show_label)
        self.panel.slice_activated.connect(self.go_to_slice)
        controller.changed.connect(self._follow_slice)
        self._said: tuple[Any, ...] | None = None  # the result whose notes were said
        self.panel.refresh(None)
        self.panel.device.setCurrentText(str(settings.value("compute_device", "auto")))
        session.subscribe("series", self._series_shown)
        session.subscribe("segmentation", self._show_segmentation)
        session.subscribe("classification", self._show_classification)

    # -- running --------------------------------------------------------------------------------
    def run_model(self, manifest: object, device: str = "auto") -> Task | None:
        """Queue a model run on the shown series; the overlay appears when it finishes."""
        from medview.inference.manifest import ModelManifest

        assert isinstance(manifest, ModelManifest)
        session = self.session
        series, volume = session.series, session.volume
        if series is None or volume is None:
            self.notify("Open a series before running a model.")
            return None
        if manifest.takes_click:
            self.notify(
                f"{manifest.name} segments what you click on: turn on 'Nodule (AI click)' in "
                "the Segment editor and click on the nodule."
            )
            return None
        problems = input_problems(volume, manifest, SeriesFacts.of(series))
        anyway = bool(problems) and self._run_anyway(manifest, problems)
        if problems and not anyway:
            self.notify(f"{manifest.name} was not run: " + "; ".join(problems) + ".")
            return None
        engine = self.model_function
        worker = self._process(device)

        def in_worker(*args: Any, **kw: Any) -> Any:
            # in a worker process: a native crash there costs this run, not the window
            if engine is None:
                return worker.run(_engine_for(manifest.task), *args, **kw)
            return worker.run(engine, *args, **kw)

        def work(*, cancel: CancelToken, progress: Progress) -> object:
            result = session.compute(
                manifest,
                volume=volume,
                series=series,
                device=device,
                anyway=anyway,
                run=in_worker,
                cancel=cancel,
                progress=progress,
            )
            result = on_source_grid(result, volume)
            # the undo step of a segmentation (a pass over the whole map) is made here too:
            # taking it on the GUI thread cost 0.6 s on a 300 x 512 x 512 CT
            return result, session.prepare(result)

        return self.inference.submit(
            device,
            f"Running {manifest.name}",
            work,
            on_done=lambda r: self._finished(volume, r),
            on_error=self.notify,
            on_progress=self.progress,
        )

    def _finished(self, volume: Volume, done: tuple[Any, Any]) -> None:
        result, prepared = done
        if self.session.volume is not volume:
            self.notify(f"{result.provenance.name}: finished for a series that is no longer shown.")
            return
        self.session.accept(result, prepared=prepared)

    def _run_anyway(self, manifest: Any, problems: list[str]) -> bool:
        """Ask whether to run a model outside its domain (tests answer with
        ``run_anyway_answer``)."""
        if self.run_anyway_answer is not None:
            return self.run_anyway_answer
        box = QMessageBox(self.window)
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

    def _process(self, device: str) -> InferenceProcess:
        """The worker process of one device queue (started on its first run)."""
        if device not in self._processes:
            self._processes[device] = InferenceProcess()
        return self._processes[device]

    def shutdown(self) -> None:
        self.inference.cancel_all()
        for process in self._processes.values():
            process.shutdown()
        self.inference.shutdown()

    # -- showing --------------------------------------------------------------------------------
    def _series_shown(self, session: StudySession) -> None:
        self._said = None
        self.panel.refresh(session.volume)
        self.panel.clear_results()

    def _caption(self, kind: str, text: str) -> str:
        kept_on = self.session.kept_on.get(kind)
        return text + (f" · kept with the study ({kept_on})" if kept_on else "")

    def _show_segmentation(self, session: StudySession) -> None:
        from medview.viewer.overlay import LabelOverlay

        result = session.segmentation
        assert session.volume is not None
        if result is None:  # undone back to no segmentation
            self.controller.set_overlay(None)
            self.panel.legend.setRowCount(0)
            return
        opened = opened_line(result)
        if result.provenance is None:
            caption = "Segmentation drawn in MedView"
        elif opened is not None:  # another system's object, as it says it was made
            caption = opened
        else:
            caption = f"{run_line(result)} · {result.research_use}"
            edited = [s.name for s in result.segments if s.algorithm_type == "SEMIAUTOMATIC"]
            if edited:
                caption += f" · edited by hand: {', '.join(edited)}"
        caption = self._caption("segmentation", caption)
        overlay = LabelOverlay(
            result.labels,
            {s.value: s.color for s in result.segments},
            {s.value: s.name for s in result.segments},
            caption=caption,
        )
        self.controller.set_overlay(overlay)
        self.overlay_look_changed()
        colours = {s.value: s.color for s in result.segments}
        self.panel.show_result(
            [(s.value, s.name, colours[s.value], s.volume_ml, s.mean) for s in result.stats],
            caption + ("\n" + "; ".join(result.notes) if result.notes else ""),
            session.volume.units,
            self._hidden(),
        )
        if (result.provenance, result.notes) != self._said:  # a new result, not an edit
            self._said = (result.provenance, result.notes)
            name = result.provenance.name if result.provenance else "Segmentation"
            for note in result.notes:
                self.notify(f"{name}: {note}")
            self.dock.raise_()

    def _show_classification(self, session: StudySession) -> None:
        from medview.viewer.overlay import HeatmapOverlay

        result = session.classification
        state = self.controller.state
        assert result is not None and state is not None
        caption = self._caption(
            "classification",
            f"{run_line(result)} · series figure: {result.aggregation}; heat map: "
            f"Grad-CAM for '{result.target_class}', "
            f"{'inside the nodule box' if result.interval else 'masked to the body'} · "
            f"{result.research_use}",
        )
        if result.notes:
            caption += "\n⚠ " + "\n⚠ ".join(result.notes)
        state.heatmap = (
            HeatmapOverlay(result.heatmap, caption=caption, threshold=result.heatmap_threshold)
            if result.heatmap is not None
            else None
        )
        how = result.aggregation + (f" ({result.series_note})" if result.series_note else "")
        self.panel.show_finding(
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
            self.panel.show_slice_probabilities(per_slice, result.target_class)
            self.go_to_slice(int(np.argmax(per_slice)))  # the most probable slice first
        else:
            self.panel.show_slice_probabilities(None, "")
        self.overlay_look_changed()
        self.dock.raise_()

    def overlay_look_changed(self) -> None:
        state = self.controller.state
        if state is None:
            return
        if state.heatmap is not None:
            state.heatmap.opacity = self.panel.heat_opacity.value() / 100
            state.heatmap.threshold = self.panel.heat_threshold.value() / 100
        if state.overlay is not None:
            state.overlay.opacity = self.panel.opacity.value() / 100
            state.overlay.outline = self.panel.outline.isChecked()
            state.overlay.hidden = self._hidden()
        self.controller.changed.emit()

    def _hidden(self) -> set[int]:
        """The segments hidden: one setting, the segment table's (the Segment editor's
        "Shown" and this legend's "Show" boxes both change it)."""
        editor = self.session.editor
        return editor.hidden_values() if editor else set()

    def _show_label(self, value: int, shown: bool) -> None:
        def change() -> None:  # after the legend's own signal: the change refills the legend
            editor = self.session.editor
            if editor is not None and editor.entry(value) is not None:
                editor.update_entry(value, "visibility", visible=shown)

        QTimer.singleShot(0, change)

    def go_to_slice(self, index: int) -> None:
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
            self.panel.set_current_slice(round(float(state.crosshair[0])))

    def _jump_to_label(self, value: int) -> None:
        state = self.controller.state
        if state is None or state.overlay is None:
            return
        where = state.overlay.largest_section(value)
        if where is not None:
            state.crosshair = np.array(where, dtype=np.float64)
            self.controller.changed.emit()


def _engine_for(task: str) -> Callable[..., Any]:
    if task == "classification":
        from medview.inference.classify import classify

        return classify
    from medview.inference.runner import segment

    return segment
