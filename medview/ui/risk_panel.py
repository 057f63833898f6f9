"""The risk panel: a tabular risk model beside the images.

A form with each feature's unit, range and description; values from the study are marked
"from study" and can be overridden; problems are highlighted and explained under the field
(values are never clipped); the result shows the probability with its 95 % interval, the risk
band and the per-feature contributions as bars. Prediction is numpy on ~30 numbers (0.2-0.3 ms
measured), so it runs on the GUI thread as the user types.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.core.errors import RiskInputError
from medview.risk.model import FeatureKind, RiskModel
from medview.risk.predict import (
    RESEARCH_USE,
    RiskResult,
    Severity,
    check_inputs,
    predict_checked,
)
from medview.risk.registry import list_risk_models
from medview.risk.rows import read_rows
from medview.risk.study import Prefill, SegmentStat, StudyFacts, prefill
from medview.ui.risk_chart import (
    ERROR_BG,
    STUDY_COLOUR,
    WARNING_BG,
    ContributionChart,
    _Row,
    is_number,
    model_card,
    result_texts,
    value_menu,
)


class RiskPanel(QWidget):
    """Pick a risk model, fill in the form, read the result."""

    result_changed = Signal(object)  # RiskResult | None
    keep_requested = Signal(str, dict)  # model id, record (inputs, origins, result)
    model_used = Signal(str, str)  # kind of study ("CT/CHEST"), model id the reader chose

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models: dict[str, RiskModel] = {}
        self._rows: dict[str, _Row] = {}
        self._model: RiskModel | None = None
        self._facts: StudyFacts | None = None
        self._study_uid: str | None = None
        self._kept: dict[str, dict[str, Any]] = {}
        self._kind = ""  # "MODALITY/BODY PART" of the open study
        self.last_used: dict[str, str] = {}  # kind of study -> model id (kept by the window)
        self._choosing = False
        self._loading = False
        self.result: RiskResult | None = None
        self.measurement_provider: Callable[[], dict[str, float] | None] = lambda: None
        self.segment_provider: Callable[[], list[SegmentStat]] = list

        self.model_box = QComboBox()
        self.card_button = QPushButton("Model card…")
        self.csv_button = QPushButton("Import CSV row…")
        self.study_button = QPushButton("Fill from study")
        self.clear_button = QPushButton("Clear")
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #b26a00")
        self.form = QWidget()
        self.grid = QGridLayout(self.form)
        self.grid.setColumnStretch(2, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.form)
        # the form keeps its room when a result appears below it (at least ~8 rows)
        scroll.setMinimumHeight(8 * 30)
        self.form_area = scroll

        self.probability = QLabel("—")
        big = QFont(self.probability.font())
        big.setPointSizeF(big.pointSizeF() * 1.6)
        big.setBold(True)
        self.probability.setFont(big)
        self.band = QLabel()
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.detail.setMinimumHeight(4 * self.detail.fontMetrics().lineSpacing())
        self.chart = ContributionChart()
        self.research = QLabel(RESEARCH_USE)
        self.research.setStyleSheet("color: #e53935; font-weight: bold")  # light and dark themes
        self.kept_label = QLabel()

        top = QHBoxLayout()
        top.addWidget(self.model_box, 1)
        top.addWidget(self.card_button)
        buttons = QHBoxLayout()
        for b in (self.csv_button, self.study_button, self.clear_button):
            buttons.addWidget(b)
        result_row = QHBoxLayout()
        result_row.addWidget(self.probability)
        result_row.addWidget(self.band)
        result_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.notes)
        layout.addWidget(scroll, 1)
        layout.addLayout(result_row)
        layout.addWidget(self.detail)
        layout.addWidget(self.chart)
        layout.addWidget(self.research)
        layout.addWidget(self.kept_label)

        self._keep_timer = QTimer(self)
        self._keep_timer.setSingleShot(True)
        self._keep_timer.setInterval(400)
        self._keep_timer.timeout.connect(self._keep)
        self.model_box.currentIndexChanged.connect(self._model_chosen)
        self.card_button.clicked.connect(self.show_card)
        self.csv_button.clicked.connect(self._import_csv_dialog)
        self.study_button.clicked.connect(self.fill_from_study)
        self.clear_button.clicked.connect(self.clear)
        self.reload_models()

    # -- models ---------------------------------------------------------------------------------
    def reload_models(self) -> None:
        self.model_box.blockSignals(True)
        self.model_box.clear()
        self._models.clear()
        self.model_box.addItem("— choose a risk model —", None)
        for entry in list_risk_models():
            if entry.model is not None:
                self._models[entry.model.id] = entry.model
                self.model_box.addItem(entry.model.name, entry.model.id)
                self.model_box.setItemData(
                    self.model_box.count() - 1,
                    f"{entry.model.outcome}\n{entry.model.description}",
                    Qt.ItemDataRole.ToolTipRole,
                )
            else:
                self.model_box.addItem(f"refused: {entry.folder.name}", None)
                i = self.model_box.count() - 1
                self.model_box.setItemData(i, entry.error, Qt.ItemDataRole.ToolTipRole)
                item = self.model_box.model().item(i)  # type: ignore[attr-defined]
                item.setEnabled(False)
        self.model_box.blockSignals(False)
        self._model_chosen()

    def select(self, model_id: str) -> None:
        i = self.model_box.findData(model_id)
        if i >= 0:
            self.model_box.setCurrentIndex(i)

    @property
    def study_uid(self) -> str | None:
        return self._study_uid

    @property
    def model(self) -> RiskModel | None:
        return self._model

    def _model_chosen(self, *_args: object) -> None:
        self._model = self._models.get(self.model_box.currentData())
        if self._model is not None and self._kind and not self._choosing:
            self.last_used[self._kind] = self._model.id
            self.model_used.emit(self._kind, self._model.id)
        self._build_form()
        kept = self._kept.get(self._model.id) if self._model else None
        if kept:
            self._restore(kept)
        else:
            self.fill_from_study()

    def _build_form(self) -> None:
        while (item := self.grid.takeAt(0)) is not None:
            w = item.widget()
            if w is not None:
                w.deleteLater()
        self._rows.clear()
        if self._model is None:
            return
        for i, f in enumerate(self._model.features):
            unit = f" ({f.unit})" if f.unit else ""
            name = QLabel(f"{f.label}{unit}")
            name.setWordWrap(True)
            tip = (
                f"<b>{f.label}</b>{unit}<br>{f.description}<br>"
                f"trained on {f.plausible[0]:g}–{f.plausible[1]:g}; possible "
                f"{f.possible[0]:g}–{f.possible[1]:g}<br>column name: <code>{f.name}</code>"
            )
            name.setToolTip(tip)
            editor: QLineEdit | QComboBox
            if f.levels and f.kind in (FeatureKind.BINARY, FeatureKind.ORDINAL):
                editor = QComboBox()
                editor.addItem("— missing —", None)
                for value, level in sorted(f.levels.items()):
                    editor.addItem(f"{level} ({value})", value)
                editor.currentIndexChanged.connect(lambda _i, n=f.name: self._edited(n))
            else:
                editor = QLineEdit()
                editor.setPlaceholderText(f"missing · {f.plausible[0]:g}–{f.plausible[1]:g}")
                editor.textEdited.connect(lambda _t, n=f.name: self._edited(n))
            editor.setToolTip(tip)
            editor.setObjectName(f"risk-{f.name}")
            editor.setMinimumWidth(90)
            editor.setMaximumWidth(190)
            origin = QLabel()
            origin.setStyleSheet(f"color: {STUDY_COLOUR}")
            more = QToolButton()
            more.setText("⋯")
            more.setToolTip("Take the value from the study")
            menu = QMenu(more)
            menu.aboutToShow.connect(lambda n=f.name, m=menu: self._fill_menu(n, m))
            more.setMenu(menu)
            more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            message = QLabel()
            message.setWordWrap(True)
            # wrap inside the panel instead of widening the form past it
            message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            message.hide()
            self.grid.addWidget(name, 2 * i, 0)
            self.grid.addWidget(editor, 2 * i, 1)
            self.grid.addWidget(origin, 2 * i, 2)
            self.grid.addWidget(more, 2 * i, 3)
            self.grid.addWidget(message, 2 * i + 1, 0, 1, 4)
            self._rows[f.name] = _Row(editor, origin, message)
        self.grid.setRowStretch(2 * len(self._model.features), 1)  # rows keep their height

    # -- values ---------------------------------------------------------------------------------
    def text(self, name: str) -> str:
        editor = self._rows[name].editor
        if isinstance(editor, QComboBox):
            data = editor.currentData()
            return "" if data is None else str(data)
        return editor.text().strip()

    def values(self) -> dict[str, str]:
        return {name: self.text(name) for name in self._rows}

    def origin(self, name: str) -> str:
        """Where the value came from, in full ("from study: DICOM PatientAge" ...)."""
        return self._rows[name].origin.toolTip()

    def _set_origin(self, name: str, text: str) -> None:
        label = self._rows[name].origin
        label.setToolTip(text)
        label.setText(text.split(":")[0].split(" (")[0])

    def set_value(self, name: str, text: str, origin: str = "") -> None:
        """Put ``text`` in a field (``origin``, e.g. "from study: ...", marks it)."""
        row = self._rows[name]
        self._loading = True
        try:
            if isinstance(row.editor, QComboBox):
                i = row.editor.findData(int(float(text))) if is_number(text) else -1
                if i < 0 and text.strip():
                    # a code the form has no level for: show it as typed, flagged
                    row.editor.addItem(f"{text} (not a level)", text)
                    i = row.editor.count() - 1
                row.editor.setCurrentIndex(max(i, 0))
            else:
                row.editor.setText(text)
        finally:
            self._loading = False
        if origin.startswith("from study"):
            row.study_text, row.study_origin = text, origin
        self._set_origin(name, origin)
        self.recompute()

    def _edited(self, name: str) -> None:
        if self._loading:
            return
        row = self._rows[name]
        if row.study_text is not None and self.text(name) != row.study_text:
            self._set_origin(name, f"overridden (study: {row.study_text})")
        elif row.study_text is not None:
            self._set_origin(name, row.study_origin)
        else:
            self._set_origin(name, "entered")
        self.recompute()

    def clear(self) -> None:
        for name, row in self._rows.items():
            row.study_text = None
            self.set_value(name, "", "")
        self.recompute()

    # -- the study ------------------------------------------------------------------------------
    def set_study(
        self,
        study_uid: str | None,
        facts: StudyFacts | None,
        kept: dict[str, dict[str, Any]] | None = None,
        modality: str = "",
        body_part: str = "",
    ) -> None:
        """A study was opened: its header facts, the results kept with it and its kind
        (``modality``, ``body_part``), which chooses the model shown first: one with a result
        kept for this study, else the one last used for this kind of study, else the first
        made for it, else none (the reader picks)."""
        self._study_uid, self._facts, self._kept = study_uid, facts, dict(kept or {})
        self._kind = f"{modality.upper()}/{body_part.upper()}" if modality else ""
        wanted = next(iter(self._kept), None)
        if wanted is None and self._kind:
            wanted = self.last_used.get(self._kind)
        if wanted is None:
            wanted = next(
                (m.id for m in self._models.values() if m.suits(modality, body_part)), None
            )
        i = self.model_box.findData(wanted) if wanted is not None else 0
        self._choosing = True
        try:
            if i != self.model_box.currentIndex() and i >= 0:
                self.model_box.setCurrentIndex(i)  # rebuilds the form
            else:
                self._model_chosen()
        finally:
            self._choosing = False

    def fill_from_study(self) -> None:
        if self._model is None:
            return
        filled: Prefill = prefill(self._model, self._facts, self.segment_provider())
        for name, row in self._rows.items():
            row.study_text = None
            value = filled.values.get(name)
            if value is not None:
                self.set_value(name, f"{value.value:g}", value.origin)
            elif self.origin(name).startswith("from study"):
                self.set_value(name, "", "")
        labels = {f.name: f.label for f in self._model.features}
        got = [labels[n] for n in self._rows if n in filled.values]
        study_kinds = ("dicom", "derived", "segmentation")
        sources = {
            f.name for f in self._model.features if any(x.kind in study_kinds for x in f.sources)
        }
        absent = [labels[n] for n in self._rows if n in sources and n not in filled.values]
        report = [
            "Filled from the study: " + (", ".join(got) if got else "nothing") + ".",
        ]
        if absent:
            report.append("Not in the study's headers or segments: " + ", ".join(absent) + ".")
        rest = len(self._rows) - len(got) - len(absent)
        if rest:
            report.append(f"{rest} other input(s) are entered by hand or from a CSV row.")
        self._show_note("\n".join([*report, *filled.notes]))
        self.recompute()

    def _fill_menu(self, name: str, menu: QMenu) -> None:
        value_menu(
            menu,
            self.measurement_provider() or {},
            self.segment_provider(),
            lambda text, origin: self.set_value(name, text, origin),
        )

    # -- CSV ------------------------------------------------------------------------------------
    def _import_csv_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import one CSV row", "", "CSV (*.csv *.txt)")
        if path:
            self.import_csv(path)

    def import_csv(self, path: str) -> str:
        """Fill the form from the first data row of a CSV whose header names the features.
        Returns the note shown (what was imported, or why not)."""
        try:
            rows = read_rows(path)
        except RiskInputError as e:
            note = f"CSV not imported: {e.message}"
            self._show_note(note)
            return note
        row = rows[0]
        unknown = [k for k in row if k not in self._rows]
        for name in self._rows:
            if name in row:
                self._rows[name].study_text = None
                self.set_value(name, row[name], "from CSV")
        note = f"Imported row 1 of {len(rows)}" + (
            f"; columns not in this model ignored: {', '.join(unknown)}" if unknown else ""
        )
        self._show_note(note)
        return note

    def _show_note(self, text: str) -> None:
        self.notes.setText(text)
        self.notes.setVisible(bool(text))

    # -- result ---------------------------------------------------------------------------------
    def recompute(self) -> None:
        if self._loading:
            return
        model = self._model
        self.result = None
        if model is None:
            self._show_result(None, "")
            return
        raw = {k: v for k, v in self.values().items() if v != ""}
        values, issues = check_inputs(model, raw)
        by_feature = {i.feature: i for i in issues}
        for name, row in self._rows.items():
            issue = by_feature.get(name)
            colour = ""
            if issue is not None:
                colour = ERROR_BG if issue.severity is Severity.ERROR else WARNING_BG
            row.editor.setStyleSheet(f"background: {colour}" if colour else "")
            row.message.setText(issue.message if issue else "")
            row.message.setStyleSheet(
                "color: #b00020" if issue and issue.severity is Severity.ERROR else "color: #8a5a00"
            )
            row.message.setVisible(issue is not None)
        errors = [i for i in issues if i.severity is Severity.ERROR]
        if errors:
            unplaced = [i.message for i in errors if i.feature not in self._rows]
            if unplaced:  # not about one field: say it here
                self._show_result(None, f"No prediction: {'; '.join(unplaced)}.")
            else:
                self._show_result(None, f"No prediction: {len(errors)} value(s) to correct.")
            return
        self.result = predict_checked(model, values, tuple(issues))
        self._show_result(self.result, "")
        self._keep_timer.start()

    def _show_result(self, result: RiskResult | None, why: str) -> None:
        self.chart.set_contributions(result.contributions if result else None)
        probability, band, style, detail = result_texts(result, self._model, why)
        self.probability.setText(probability)
        self.band.setText(band)
        self.band.setStyleSheet(style)
        self.detail.setText(detail)
        self.result_changed.emit(result)

    def record(self) -> dict[str, Any] | None:
        """What is kept with the study: inputs, where each came from, the result."""
        if self.result is None or self._model is None:
            return None
        return {
            "model": self._model.id,
            "model_name": self._model.name,
            "inputs": self.values(),
            "origins": {n: self.origin(n) for n in self._rows},
            "result": self.result.to_dict(),
            "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def flush(self) -> None:
        """Keep a pending result now (the window is closing)."""
        if self._keep_timer.isActive():
            self._keep_timer.stop()
            self._keep()

    def _keep(self) -> None:
        record = self.record()
        if record is None or self._model is None or self._study_uid is None:
            return
        self._kept[self._model.id] = record
        self.keep_requested.emit(self._model.id, record)
        self.kept_label.setText(f"Kept with the study ({record['saved']} UTC)")

    def _restore(self, record: dict[str, Any]) -> None:
        inputs = record.get("inputs", {})
        origins = record.get("origins", {})
        for name, row in self._rows.items():
            row.study_text = None
            self.set_value(name, str(inputs.get(name, "")), str(origins.get(name, "")))
        self.kept_label.setText(f"Restored from the study ({record.get('saved', '')} UTC)")
        self.recompute()

    # -- card -----------------------------------------------------------------------------------
    def show_card(self) -> QDialog | None:
        return model_card(self._model, self) if self._model is not None else None
