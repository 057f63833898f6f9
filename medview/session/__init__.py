"""StudySession: one reading of one series, without Qt.

It holds what a reading produces (the shown series and volume, measurements, key images, the
AI segmentation and classification, the study's risk results) and the operations on it (open
a series, measure, mark key images, run a model, accept a result, export). It keeps what a
reader expects kept in the study database, and tells its subscribers what changed through
plain callbacks. The window subscribes and renders; the command line and headless tests call
the same operations, so a whole reading runs with no display.

Compute runs where the caller runs it: the window calls these operations from its worker
threads (each takes ``cancel`` and ``progress``), a script calls them directly.
"""

from __future__ import annotations

import datetime as _dt
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
from medview.viewer.annotations import Measurement, MeasurementList, evaluate

log = logging.getLogger("medview")

# what subscribers can hear about; each callback gets the session
EVENTS = ("series", "measurements", "key_images", "segmentation", "classification")


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


class StudySession:
    """One reading. ``db`` (a `StudyDatabase`) keeps measurements and AI results with their
    series and gives the study's risk results; without one, nothing is kept."""

    def __init__(self, db: Any = None) -> None:
        self.db = db
        self.series: SeriesRecord | None = None
        self.volume: Volume | None = None
        self.measurements = MeasurementList()
        self.key_images: list[KeyImage] = []
        self.segmentation: Segmentation | None = None
        self.classification: Classification | None = None
        self.kept_on: dict[str, str] = {}  # "segmentation"/"classification" -> date kept
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
    def open(
        self,
        series: SeriesRecord,
        volume: Volume | None = None,
        *,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> Volume:
        """Show ``series`` (loading its volume unless given): its kept measurements and AI
        results come back with it; a kept result that no longer fits the grid is dropped with
        a log line, never shown on the wrong grid."""
        if volume is None:
            from medview.io.loader import load_series

            volume = load_series(series, cancel=cancel, progress=progress)
        self.series, self.volume = series, volume
        self.key_images = []
        self.segmentation = self.classification = None
        self.kept_on = {}
        items: list[Measurement] = []
        if self.db is not None:
            items = [Measurement.from_dict(d) for d in self.db.load_measurements(series.key)]
        self.measurements = MeasurementList(items)
        self._emit("series")
        if self.db is not None:
            self._restore_results(volume)
        return volume

    def _restore_results(self, volume: Volume) -> None:
        from medview.inference.kept import kept_results

        assert self.series is not None
        for kind, result, date in kept_results(self.db.ai_results(self.series.key), volume):
            if result is None:
                log.warning("a kept %s no longer fits its series; not shown", kind)
                continue
            self.accept(result, kept_on=date)

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
        if self.db is not None and self.series is not None:
            self.db.save_measurements(
                self.series.key, [m.to_dict() for m in self.measurements.items]
            )
        self._emit("measurements")

    def add_key_image(self, key: KeyImage) -> None:
        self._require()
        if key not in self.key_images:
            self.key_images.append(key)
            self._emit("key_images")

    # -- AI results -----------------------------------------------------------------------------
    def run_model(
        self,
        manifest: Any,
        *,
        device: str = "auto",
        anyway: bool = False,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> Segmentation | Classification:
        """Run a segmentation or classification model on the shown volume, in this process,
        checking its domain first (``anyway`` runs it outside, marked); the result is
        accepted and kept."""
        from medview.inference.domain import SeriesFacts, run_in_domain

        series, volume = self._require()
        run: Callable[..., Any]
        if manifest.task == "classification":
            from medview.inference.classify import classify as run
        else:
            from medview.inference.runner import segment as run
        result: Segmentation | Classification = run_in_domain(
            run,
            volume,
            manifest,
            SeriesFacts.of(series),
            anyway=anyway,
            device=device,
            cancel=cancel,
            progress=progress,
        )
        self.accept(result)
        return result

    def accept(self, result: Segmentation | Classification, kept_on: str | None = None) -> None:
        """Make ``result`` the session's segmentation or classification. A new result
        (``kept_on`` None) is kept with the series; ``kept_on`` is the date of a restored
        one."""
        from medview.inference.kept import result_record

        _, volume = self._require()
        kind = "segmentation" if isinstance(result, Segmentation) else "classification"
        grid = result.labels if isinstance(result, Segmentation) else result.heatmap
        if grid is not None and grid.shape != volume.shape:
            raise ValueError(f"the {kind} is not on the shown series' grid")
        if isinstance(result, Segmentation):
            self.segmentation = result
        else:
            self.classification = result
        self.kept_on[kind] = kept_on or _now()
        if kept_on is None and self.db is not None and self.series is not None:
            _, data, arrays = result_record(result, self.kept_on[kind])
            self.db.save_ai_result(self.series.key, kind, data, arrays)
        self._emit(kind)

    # -- the report -----------------------------------------------------------------------------
    def risk_results(self) -> dict[str, dict[str, Any]]:
        if self.db is None or self.series is None:
            return {}
        return dict(self.db.risk_results(self.series.study_uid))

    def export_content(self) -> ExportContent:
        """What the report of this reading shows, from the session's own objects."""
        self._require()
        return ExportContent(
            segmentation=self.segmentation,
            measurements=[m.to_dict() for m in self.measurements.items],
            classifications=[self.classification] if self.classification is not None else [],
            risk=self.risk_results(),
            key_images=list(self.key_images),
        )

    def export(
        self,
        out_dir: str | Path,
        options: ExportOptions | None = None,
        *,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> BundleResult:
        """Write the report bundle (SEG, SR, NIfTI, key images, PDF) of this reading."""
        series, volume = self._require()
        options = options or ExportOptions()
        study = []  # a de-identified bundle copies the whole study
        if options.deidentify and self.db is not None:
            study = self.db.study_series(series.study_uid)
        return export_bundle(
            series,
            volume,
            self.export_content(),
            out_dir,
            options,
            study_series=study,
            cancel=cancel,
            progress=progress,
        )
