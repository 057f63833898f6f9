"""The Risk dock: the risk panel fed by the session (study header facts read in a worker,
the study's kept risk results, measurement and segment figures) and keeping its results
through the session."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDockWidget, QWidget

from medview.core.records import SeriesRecord
from medview.risk.study import SegmentStat, StudyFacts, facts_from_file
from medview.session import StudySession
from medview.ui.bridge import TaskRunner
from medview.ui.risk_panel import RiskPanel


class RiskDock(QDockWidget):
    def __init__(
        self,
        session: StudySession,
        runner: TaskRunner,
        settings: QSettings,
        measurement_figures: Callable[[], dict[str, float] | None],
        parent: QWidget,
    ) -> None:
        super().__init__("Risk", parent)
        self.setObjectName("risk")
        self.session, self.runner, self.settings = session, runner, settings
        self.panel = RiskPanel()
        self.setWidget(self.panel)
        self.segments: list[SegmentStat] = []  # of the shown segmentation, for the panel
        self.panel.keep_requested.connect(session.keep_risk_result)
        settings.beginGroup("risk_last_used")
        self.panel.last_used = {
            k.replace("|", "/"): str(settings.value(k)) for k in settings.childKeys()
        }
        settings.endGroup()
        self.panel.model_used.connect(self._model_used)
        self.panel.measurement_provider = measurement_figures
        self.panel.segment_provider = lambda: list(self.segments)
        session.subscribe("series", self._series_shown)
        session.subscribe("segmentation", self._segmentation_shown)

    def _model_used(self, kind: str, model_id: str) -> None:
        """Remember the risk model chosen for this kind of study (modality/body part)."""
        self.settings.setValue(f"risk_last_used/{kind.replace('/', '|')}", model_id)

    def _segmentation_shown(self, session: StudySession) -> None:
        seg = session.segmentation
        self.segments = [SegmentStat(s.name, s.volume_ml, s.mean) for s in seg.stats] if seg else []

    def _series_shown(self, session: StudySession) -> None:
        self.segments = []
        s = session.series
        if s is None or self.panel.study_uid != s.study_uid:
            self.study_changed(s)

    def study_changed(self, series: SeriesRecord | None) -> None:
        """Header facts (age, sex, weight, size) for the risk panel, read off the GUI thread;
        the study's kept results come with the session."""
        if series is None:
            self.panel.set_study(None, None)
            return
        study_uid = series.study_uid
        kept = dict(self.session.risk)
        kind = (series.modality, series.first.body_part)

        def done(facts: StudyFacts) -> None:
            current = self.session.series
            if current is not None and current.study_uid == study_uid:
                self.panel.set_study(study_uid, facts, kept, *kind)

        self.runner.submit(
            "Reading the study header",
            lambda *, cancel, progress: facts_from_file(series.first.path),
            on_done=done,
            on_error=lambda message: self.panel.set_study(study_uid, None, kept, *kind),
            slot="study-facts",
        )
