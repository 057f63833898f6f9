"""StudySession: one reading of one series, without Qt.

It holds what a reading produces (the shown series and volume, measurements, key images, the
AI segmentation and classification, the study's risk results and report: operations on the
report are in `medview.session.reporting`) and the operations on it. It keeps what a reader
expects kept in the study database and tells its subscribers what changed through plain
callbacks. The window subscribes and renders; the command line and headless tests call the
same operations, so a whole reading runs with no display.

Threads: the operations that change the session (`show`, `accept`, `add_measurement`, ...)
run on the caller's thread and call the subscribers there. What takes time has a side with no
state change, safe in a worker: `read`, `compute` (run a model) and `export`. Database writes
go through ``keep`` (by default at once; the window's runs them in order on a worker thread).
`read` waits for the writes asked for before it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medview.core.records import SeriesRecord
from medview.core.results import Classification, Segmentation
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.export.bundle import BundleResult, export_bundle
from medview.export.content import ExportContent, ExportOptions, KeyImage
from medview.report.model import Report
from medview.segedit.editor import SegmentationEditor, StaleError
from medview.session.objects import Keeper, Opened, Prepared, Result, Writes, at_once
from medview.session.objects import now as _now
from medview.viewer.annotations import Measurement, MeasurementList, evaluate

log = logging.getLogger("medview")

# what subscribers can hear about; each callback gets the session
EVENTS = (
    "series",
    "measurements",
    "key_images",
    "segmentation",
    "classification",
    "risk",
    "report",
)
__all__ = ["EVENTS", "Opened", "Prepared", "Result", "StudySession"]


class StudySession:
    """One reading. ``db`` (a `StudyDatabase`) keeps measurements and AI results with their
    series and risk results with their study; without one, nothing is kept. ``keep`` runs
    each database write (default: at once, on the caller's thread)."""

    def __init__(self, db: Any = None, keep: Keeper | None = None) -> None:
        self.db = db
        # runs each database write, counted until it ends (`read` waits for them)
        self.keep = Writes(keep or at_once)
        self.series: SeriesRecord | None = None
        self.volume: Volume | None = None
        self.measurements = MeasurementList()
        self.key_images: list[KeyImage] = []
        # the working segmentation (a model's result, corrected, or drawn): None until there
        # is one; `segmentation` is its current state as a result object
        self.editor: SegmentationEditor | None = None
        self.classification: Classification | None = None
        # "segmentation"/"classification" -> the date a result restored from the study was
        # kept on (a result made in this reading has none)
        self.kept_on: dict[str, str] = {}
        self.risk: dict[str, dict[str, Any]] = {}  # model id -> kept risk result of the study
        self.report: Report | None = None  # the study's report (`medview.session.reporting`)
        self.last_export: BundleResult | None = None
        # scripts keep the segmentation after every edit; the window keeps it on a timer
        # (`keep_segmentation`), so a stroke never waits for a compressed write
        self.autosave = True
        self.unsaved = False
        # one undo history: which list each step went to ("segmentation" or "measurements")
        self._undo: list[str] = []
        self._redo: list[str] = []
        self._undoing = False
        self._listeners: dict[str, list[Callable[[StudySession], None]]] = defaultdict(list)

    # -- events ---------------------------------------------------------------------------------
    def subscribe(self, event: str, callback: Callable[[StudySession], None]) -> Callable[[], None]:
        """Call ``callback(session)`` after each ``event``; returns the unsubscriber."""
        if event not in EVENTS:
            raise ValueError(f"unknown session event {event!r} (known: {', '.join(EVENTS)})")
        self._listeners[event].append(callback)
        return lambda: self._listeners[event].remove(callback)

    def _emit(self, event: str) -> None:
        for callback in list(self._listeners[event]):
            callback(self)

    # -- the series -----------------------------------------------------------------------------
    def read(
        self,
        series: SeriesRecord,
        volume: Volume | None = None,
        *,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> Opened:
        """Load ``series`` (unless ``volume`` is given) with what is kept with it; changes
        nothing in the session, so it may run in a worker."""
        if volume is None:
            from medview.io.loader import load_series

            volume = load_series(series, cancel=cancel, progress=progress)
        opened = Opened(series, volume)
        if self.db is not None:
            from medview.inference.kept import kept_results

            self.keep.wait(cancel)  # what this reading kept a moment ago is read back

            opened.measurements = [
                Measurement.from_dict(d) for d in self.db.load_measurements(series.key)
            ]
            opened.kept = kept_results(self.db.ai_results(series.key), volume)
            opened.risk = dict(self.db.risk_results(series.study_uid))
            kept_report = self.db.report(series.study_uid)
            opened.report = Report.from_dict(kept_report) if kept_report else None
        return opened

    def show(self, opened: Opened) -> list[str]:
        """Make ``opened`` the session's series: its kept measurements and AI results come
        back with it. Returns notices: a kept result that no longer fits the grid is said, and
        never shown on the wrong grid. Key images are the series' own: another series (or
        volume of a 4-D series) starts with none."""
        self.keep_segmentation()  # an edit not yet kept goes with its own series
        before = self.series
        self.series, self.volume = opened.series, opened.volume
        if before is None or before.key != opened.series.key:
            self.key_images = []
        if before is None or before.study_uid != opened.series.study_uid:
            self.risk = dict(opened.risk)  # within one study the session's own are newest
            self.report = opened.report
        self.editor, self.classification = None, None
        self._undo, self._redo = [], []
        self.kept_on = {}
        self.measurements = MeasurementList(opened.measurements)
        self._emit("series")
        notices = []
        for kind, result, date in opened.kept:
            if result is None:
                log.warning("a kept %s no longer fits its series; not shown", kind)
                notices.append(f"A kept {kind} no longer fits this series; it is not shown.")
            else:
                self.accept(result, kept_on=date)
        return notices

    def open(
        self,
        series: SeriesRecord,
        volume: Volume | None = None,
        *,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> Volume:
        """`read` and `show` in one call (a script's way)."""
        opened = self.read(series, volume, cancel=cancel, progress=progress)
        self.show(opened)
        return opened.volume

    @property
    def segmentation(self) -> Segmentation | None:
        """The working segmentation now (sharing the editor's label map: take
        `export_content` for a copy that stays as it is)."""
        if self.editor is None or not self.editor.table:
            return None
        return self.editor.segmentation(copy=False)

    def snapshot(self) -> Opened | None:
        """The shown series as it stands now, as `show` takes it back (the window's 4-D
        volume cache): measurements and results as edited in this reading, all kept."""
        if self.series is None or self.volume is None:
            return None
        kept: list[tuple[str, Result | None, str]] = []
        for kind, result in (
            ("segmentation", self.segmentation),
            ("classification", self.classification),
        ):
            if result is not None:
                date = self.kept_on.get(kind) or (result.provenance and result.provenance.date)
                kept.append((kind, result, date or _now()))
        return Opened(
            self.series, self.volume, list(self.measurements.items), kept, self.risk, self.report
        )

    def _require(self) -> tuple[SeriesRecord, Volume]:
        if self.series is None or self.volume is None:
            raise RuntimeError("no series is open in this session")
        return self.series, self.volume

    # -- measurements and key images ------------------------------------------------------------
    def add_measurement(self, m: Measurement) -> dict[str, float]:
        """Add a measurement; returns its figures on the shown volume."""
        _, volume = self._require()
        self.measurements.add(m)
        self.measurements_changed()
        return evaluate(m, volume)

    def measurements_changed(self) -> None:
        """Keep the measurement list (after any edit) and tell the subscribers."""
        if not self._undoing:
            self._undo.append("measurements")
            self._redo.clear()
        if self.db is not None and self.series is not None:
            key, items = self.series.key, [m.to_dict() for m in self.measurements.items]
            self.keep("the measurements", lambda: self.db.save_measurements(key, items))
        self._emit("measurements")

    def add_key_image(self, key: KeyImage) -> bool:
        """Mark a key image; False when that slice of that view is marked already."""
        self._require()
        if any((k.view, k.index) == (key.view, key.index) for k in self.key_images):
            return False
        self.key_images.append(key)
        self._emit("key_images")
        return True

    # -- AI results -----------------------------------------------------------------------------
    def compute(
        self,
        manifest: Any,
        *,
        volume: Volume | None = None,
        series: SeriesRecord | None = None,
        device: str = "auto",
        anyway: bool = False,
        run: Callable[..., Any] | None = None,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
        **options: Any,
    ) -> Result:
        """Run a segmentation or classification model (``run``: another engine with the same
        signature, e.g. one in a worker process) on the shown volume, checking its domain first
        (``anyway`` runs it outside, marked). Changes nothing: `accept` shows the result."""
        from medview.inference.domain import SeriesFacts, run_in_domain

        if volume is None or series is None:
            series, volume = self._require()
        engine: Callable[..., Any] | None = run
        if engine is None:
            if manifest.task == "classification":
                from medview.inference.classify import classify as engine
            else:
                from medview.inference.runner import segment as engine
        assert engine is not None
        result: Result = run_in_domain(
            engine,
            volume,
            manifest,
            SeriesFacts.of(series),
            anyway=anyway,
            device=device,
            cancel=cancel,
            progress=progress,
            **options,
        )
        return result

    def run_model(self, manifest: Any, **kw: Any) -> Result:
        """`compute` and `accept` in one call: the result is shown and kept."""
        result = self.compute(manifest, **kw)
        self.accept(result)
        return result

    def run_click(self, manifest: Any, positives: Any, negatives: Any = (), **kw: Any) -> Any:
        """A click model (`medview.inference.clickrun.run_click`) on the shown volume; changes
        nothing: `medview.segedit.nodule.take_nodule` writes its nodule as one step."""
        from medview.inference.clickrun import run_click

        _, volume = self._require()
        return run_click(manifest, volume, positives, negatives, **kw)

    def prepare(self, result: Result) -> Prepared | None:
        """The costly part of accepting a new segmentation (what changed, packed for undo),
        changing nothing, so it may run in the worker that computed it: the step is made
        against the working segmentation as it is now (or a new, empty one). `accept` takes
        it, or makes the step again when the segmentation changed meanwhile."""
        volume = self.volume
        if not isinstance(result, Segmentation) or volume is None:
            return None
        editor = self.editor
        fresh = editor is None
        if editor is None:
            editor = SegmentationEditor(volume)
        if result.labels.shape != editor.volume.shape:
            return None
        return Prepared(result, editor, fresh, editor.prepare_replace(result))

    def accept(
        self, result: Result, kept_on: str | None = None, prepared: Prepared | None = None
    ) -> None:
        """Make ``result`` the session's segmentation or classification. A new result
        (``kept_on`` None) is kept with the series; a new segmentation replaces the working
        one as one step of the undo history (``prepared``: its step, from `prepare`).
        ``kept_on`` is the date of a restored one."""
        series, volume = self._require()
        kind = "segmentation" if isinstance(result, Segmentation) else "classification"
        grid = result.labels if isinstance(result, Segmentation) else result.heatmap
        if grid is not None and grid.shape != volume.shape:
            raise ValueError(f"the {kind} is not on the shown series' grid")
        if kept_on is not None:
            self.kept_on[kind] = kept_on
        else:
            self.kept_on.pop(kind, None)
        if isinstance(result, Segmentation):
            if kept_on is not None:  # restored: the starting point, with no history
                self.editor = SegmentationEditor.of(volume, result)
                self.editor.listeners.append(self._edited)
                self._emit("segmentation")
            else:
                self._take(result, prepared)
            return
        self.classification = result
        if kept_on is None and self.db is not None:
            key, date = series.key, _now()

            def job() -> None:
                from medview.inference.kept import result_record

                _, data, arrays = result_record(result, date)  # compresses: off the GUI
                self.db.save_ai_result(key, kind, data, arrays)

            self.keep(f"the {kind}", job)
        self._emit(kind)

    def _take(self, result: Segmentation, prepared: Prepared | None) -> None:
        """A new segmentation as one step: the prepared one when it still fits."""
        if prepared is not None and prepared.result is result:
            editor = prepared.editor
            if prepared.fresh and self.editor is None and editor.volume is self.volume:
                self.editor = editor  # made in the worker, empty until the step is pushed
                editor.listeners.append(self._edited)
            if editor is self.editor:
                if prepared.pending is None:
                    return  # nothing changes
                try:
                    self.edit(lambda e: e.push(prepared.pending))
                    return
                except StaleError:
                    log.info("the segmentation changed while a result was prepared; again")
        self.edit(lambda editor: editor.replace_with(result))

    # -- editing the segmentation ---------------------------------------------------------------
    def segment_editor(self) -> SegmentationEditor:
        """The working segmentation's editor (an empty segmentation of the shown series when
        there is none yet)."""
        _, volume = self._require()
        if self.editor is None:
            self.editor = SegmentationEditor(volume)
            self.editor.listeners.append(self._edited)
        return self.editor

    def edit(self, tool: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run a segment-editor tool (``tool(editor, *args, **kw)``, e.g. from
        `medview.segedit.tools`) as one step of the reading's undo history. Returns what the
        tool returns; an `EditError` says why nothing changed."""
        return tool(self.segment_editor(), *args, **kw)

    def _edited(self, name: str) -> None:
        """Every change of the editor: a new step joins the reading's undo history (so do
        table changes made on the editor directly); undo, redo and visibility do not."""
        if name not in ("visibility", "dab") and not name.startswith(("undo ", "redo ")):
            self._undo.append("segmentation")
            self._redo.clear()
        self.unsaved = True
        if self.autosave:
            self.keep_segmentation()
        self._emit("segmentation")

    def keep_segmentation(self) -> None:
        """Keep the working segmentation with its series (a copy taken now, written by
        ``keep``); nothing when it is kept already."""
        if not self.unsaved or self.editor is None or self.db is None or self.series is None:
            return
        self.unsaved = False
        key = self.series.key
        if not self.editor.table:
            self.keep("the segmentation", lambda: self.db.forget_ai_result(key, "segmentation"))
            return
        seg, date = self.editor.segmentation(copy=True), _now()

        def job() -> None:
            from medview.inference.kept import result_record

            _, data, arrays = result_record(seg, date)  # compresses: off the GUI
            self.db.save_ai_result(key, "segmentation", data, arrays)

        self.keep("the segmentation", job)

    def undo(self) -> str | None:
        """Undo the reading's last step (an edit of the segmentation, a model's segmentation,
        or a measurement); what was undone, or None."""
        if not self._undo:
            return None
        kind = self._undo.pop()
        self._redo.append(kind)
        return self._step(kind, undo=True)

    def redo(self) -> str | None:
        if not self._redo:
            return None
        kind = self._redo.pop()
        self._undo.append(kind)
        return self._step(kind, undo=False)

    def _step(self, kind: str, undo: bool) -> str | None:
        if kind == "segmentation":
            assert self.editor is not None
            return self.editor.undo() if undo else self.editor.redo()
        self._undoing = True
        try:
            ok = self.measurements.undo() if undo else self.measurements.redo()
            self.measurements_changed()
        finally:
            self._undoing = False
        return "measurement" if ok else None

    # -- risk -----------------------------------------------------------------------------------
    def keep_risk_result(self, model_id: str, record: dict[str, Any]) -> None:
        """A risk result for the shown study, kept with it."""
        series, _ = self._require()
        self.risk[model_id] = record
        if self.db is not None:
            uid = series.study_uid
            self.keep("the risk result", lambda: self.db.save_risk_result(uid, model_id, record))
        self._emit("risk")

    # -- the report -----------------------------------------------------------------------------
    def export_content(self) -> ExportContent:
        """What the report of this reading shows, from the session's own objects."""
        self._require()
        seg = None
        if self.editor is not None and self.editor.table:
            seg = self.editor.segmentation(copy=True)
        return ExportContent(
            segmentation=seg,
            measurements=[m.to_dict() for m in self.measurements.items],
            classifications=[self.classification] if self.classification is not None else [],
            risk=dict(self.risk),
            key_images=list(self.key_images),
            report=Report.from_dict(self.report.to_dict()) if self.report is not None else None,
        )

    def export_job(
        self,
        out_dir: str | Path,
        options: ExportOptions | None = None,
        *,
        study_series: list[SeriesRecord] | None = None,
    ) -> Callable[..., BundleResult]:
        """The export of this reading as it is now, as a job ``(cancel=, progress=)`` that
        may run in a worker while the reading goes on (the caller sets ``last_export`` to its
        result, on its own thread). A de-identified bundle copies
        ``study_series`` (default: the study's series in the database)."""
        series, volume = self._require()
        options = options or ExportOptions()
        content = self.export_content()

        def job(
            *, cancel: CancelToken = NEVER_CANCELLED, progress: Progress = no_progress
        ) -> BundleResult:
            study = study_series
            if study is None:
                study = []
                if options.deidentify and self.db is not None:
                    study = self.db.study_series(series.study_uid)
            return export_bundle(
                series,
                volume,
                content,
                out_dir,
                options,
                study_series=study,
                cancel=cancel,
                progress=progress,
            )

        return job

    def export(
        self,
        out_dir: str | Path,
        options: ExportOptions | None = None,
        *,
        study_series: list[SeriesRecord] | None = None,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> BundleResult:
        """Write the report bundle (SEG, SR, NIfTI, key images, PDF) of this reading."""
        job = self.export_job(out_dir, options, study_series=study_series)
        self.last_export = job(cancel=cancel, progress=progress)
        return self.last_export
