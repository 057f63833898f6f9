"""The Report dock: the study's narrative report beside the viewer.

A template starts it (Technique filled from the headers); five plain-text sections with undo
(no spell-checker); live fields and template phrases inserted at the cursor; "Sign" makes it
final and read-only; later changes go into dated addenda. Every change goes to the session
(`medview.session.reporting`), which keeps it with the study; text the report cannot hold is
refused there, and the dock says why."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QSettings, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.core.errors import MedviewError, ReportError
from medview.core.notices import RESEARCH_USE
from medview.report.fields import FIELD_HELP
from medview.report.model import SECTIONS, TITLES
from medview.report.templates import Templates, templates
from medview.session import StudySession, reporting
from medview.ui.bridge import TaskRunner
from medview.ui.preferences import reader

HEIGHTS = {"clinical": 50, "technique": 70, "comparison": 40, "findings": 200, "impression": 90}


class ReportPanel(QWidget):
    def __init__(
        self,
        session: StudySession,
        runner: TaskRunner,
        settings: QSettings,
        notify: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.session, self.runner = session, runner
        self.settings, self.notify = settings, notify
        # the live fields' values, measured in a worker when the reading changes
        self.values: dict[str, str] | None = None
        self.templates: Templates = templates()
        self.template_box = QComboBox()
        self.start_button = QPushButton("Start report")
        self.start_button.clicked.connect(self.start)
        top = QHBoxLayout()
        top.addWidget(QLabel("Template"))
        top.addWidget(self.template_box, 1)
        top.addWidget(self.start_button)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #e05050")
        self.editors: dict[str, QPlainTextEdit] = {}
        form = QFormLayout()
        for key in SECTIONS:
            edit = QPlainTextEdit()
            edit.setTabChangesFocus(True)
            edit.setMinimumHeight(HEIGHTS[key])
            edit.setPlaceholderText(TITLES[key])
            edit.textChanged.connect(lambda k=key: self._typed(k))
            self.editors[key] = edit
            form.addRow(TITLES[key], edit)
        self.addenda = QPlainTextEdit()
        self.addenda.setReadOnly(True)
        self.addenda.setMaximumHeight(110)
        self.addenda.setPlaceholderText("Addenda appear here after signing")
        form.addRow("Addenda", self.addenda)
        body = QWidget()
        body.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.field_button = QToolButton()
        self.field_button.setText("Insert field")
        self.field_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.field_menu = QMenu(self.field_button)
        self.field_menu.aboutToShow.connect(self._fill_fields)
        self.field_button.setMenu(self.field_menu)
        self.phrase_button = QToolButton()
        self.phrase_button.setText("Insert phrase")
        self.phrase_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.phrase_menu = QMenu(self.phrase_button)
        self.phrase_menu.aboutToShow.connect(self._fill_phrases)
        self.phrase_button.setMenu(self.phrase_menu)
        self.sign_button = QPushButton("Sign…")
        self.sign_button.clicked.connect(lambda: self.sign())
        self.addendum_button = QPushButton("Addendum…")
        self.addendum_button.clicked.connect(lambda: self.add_addendum())
        buttons = QHBoxLayout()
        for b in (self.field_button, self.phrase_button, self.sign_button, self.addendum_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self._last_editor = self.editors["findings"]
        for edit in self.editors.values():
            edit.installEventFilter(self)
        self._loading = False
        self._refused: dict[str, str] = {}  # section -> why its text as typed is not kept
        session.subscribe("report", lambda _s: self.refresh())
        session.subscribe("series", lambda _s: self._series_shown())
        for event in ("measurements", "segmentation", "classification", "risk"):
            session.subscribe(event, lambda _s: self.measure_fields())
        self._series_shown()

    # -- showing the session's report -----------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if isinstance(obj, QPlainTextEdit) and event.type() == QEvent.Type.FocusIn:
            self._last_editor = obj  # where "Insert" puts its text
        return False

    def _fill_templates(self) -> None:
        volume = self.session.volume
        modality = volume.modality if volume is not None else ""
        best = self.templates.best(modality, self._body_part())
        self.template_box.clear()
        for t in sorted(self.templates.by_id.values(), key=lambda t: t.name.lower()):
            self.template_box.addItem(t.name + (" (yours)" if t.source == "user" else ""), t.id)
        self.template_box.setCurrentIndex(self.template_box.findData(best.id))

    def _body_part(self) -> str:
        series = self.session.series
        if series is None or not series.instances:
            return ""
        return str(getattr(series.instances[0], "body_part", "") or "")

    def _series_shown(self) -> None:
        self._refused.clear()
        self._fill_templates()
        self.refresh()
        self.measure_fields()

    def measure_fields(self, then: Callable[[dict[str, str]], None] | None = None) -> None:
        """Measure the fields' values in a worker (a newer request replaces an older one;
        the one for signing is never replaced); ``then`` runs with them on the GUI thread."""
        self.values = None
        if self.session.volume is None or (self.session.report is None and then is None):
            return

        def done(values: dict[str, str]) -> None:
            self.values = values
            if then is not None:
                then(values)

        self.runner.submit(
            "Measuring the report's fields",
            reporting.values_job(self.session),
            on_done=done,
            on_error=lambda message: self.problem.setText(f"Fields not measured: {message}"),
            slot="report-sign" if then is not None else "report-fields",
        )

    def refresh(self) -> None:
        """Show the session's report as it is (editors untouched where they already agree,
        or where their text was refused: the reader's text stays to be corrected)."""
        report = self.session.report
        has_series = self.session.volume is not None
        self._loading = True
        try:
            for key, edit in self.editors.items():
                text = report.sections.get(key, "") if report is not None else ""
                if key not in self._refused and edit.toPlainText() != text:
                    edit.setPlainText(text)
                edit.setReadOnly(report is None or report.final)
            self.addenda.setPlainText(
                "\n\n".join(
                    f"{a.date.replace('T', ' ')}, {a.reader}"
                    + (f", {a.credentials}" if a.credentials else "")
                    + f":\n{a.text}"
                    for a in (report.addenda if report is not None else [])
                )
            )
        finally:
            self._loading = False
        final = report is not None and report.final
        self.start_button.setEnabled(has_series and not final)
        self.template_box.setEnabled(has_series and not final)
        self.field_button.setEnabled(report is not None and not final)
        self.phrase_button.setEnabled(report is not None and not final)
        self.sign_button.setEnabled(report is not None and not final)
        self.addendum_button.setEnabled(final)
        if report is None:
            self.status.setText(
                "No report for this study yet: pick a template and start it."
                if has_series
                else "Open a series to write its study's report."
            )
        elif final:
            who = report.reader + (f", {report.credentials}" if report.credentials else "")
            self.status.setText(
                f"<b>FINAL</b>: signed by {_esc(who)} on {report.signed.replace('T', ' ')}. "
                "Read-only; add an addendum for changes."
            )
        else:
            self.status.setText(
                f"<b>PRELIMINARY</b> ({_esc(report.template_name)}). Fields such as "
                "{{lesions}} stay live until signing. AI values: " + RESEARCH_USE
            )
        self._say_problems()

    def _say_problems(self) -> None:
        lines = [f"Not kept: {why}" for why in self._refused.values()]
        if self.templates.refused:
            refused = "; ".join(f"{n}: {r}" for n, r in self.templates.refused)
            lines.append(f"Templates refused: {refused}")
        self.problem.setText("\n".join(lines))

    # -- editing --------------------------------------------------------------------------------
    def _typed(self, key: str) -> None:
        """Each change goes to the session as it is typed (kept by the session's writer
        thread), so nothing typed waits in the dock when the study changes."""
        report = self.session.report
        if self._loading or report is None or report.final:
            return
        try:
            reporting.edit_section(self.session, key, self.editors[key].toPlainText())
            self._refused.pop(key, None)
        except ReportError as e:
            self._refused[key] = str(e)
        self._say_problems()

    def start(self, template_id: str | None = None) -> None:
        tid = template_id or self.template_box.currentData()
        template = self.templates.by_id.get(str(tid))
        if template is None or self.session.volume is None:
            return
        report = self.session.report
        if report is not None and not report.final and template_id is None:
            answer = QMessageBox.question(
                self,
                "Start the report again",
                f"Replace this study's report text with the template '{template.name}'?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            reporting.start_report(self.session, template)
        except MedviewError as e:
            self.problem.setText(str(e))
        self.measure_fields()
        self.editors["findings"].setFocus()

    def insert(self, text: str) -> None:
        """Insert ``text`` at the cursor of the section last written in."""
        edit = self._last_editor
        if edit.isReadOnly():
            return
        cursor = edit.textCursor()
        cursor.insertText(text)
        edit.setTextCursor(cursor)
        edit.setFocus()

    def _fill_fields(self) -> None:
        self.field_menu.clear()
        values = self.values
        if values is None:
            self.field_menu.addAction("Measuring the fields…").setEnabled(False)
            self.measure_fields()
            return
        for key, value in values.items():
            kind = key.split(":")[0]
            first = value.splitlines()[0] if value else ""
            label = f"{{{{{key}}}}}  {first[:70]}" + ("…" if len(first) > 70 else "")
            action = self.field_menu.addAction(label)
            action.setToolTip(FIELD_HELP.get(kind, value))
            action.triggered.connect(lambda _=False, k=key: self.insert(f"{{{{{k}}}}}"))

    def _fill_phrases(self) -> None:
        self.phrase_menu.clear()
        report = self.session.report
        template = self.templates.by_id.get(report.template_id) if report is not None else None
        section = next((k for k, e in self.editors.items() if e is self._last_editor), "findings")
        phrases = template.choices.get(section, ()) if template is not None else ()
        if not phrases:
            self.phrase_menu.addAction(f"No phrases for {TITLES[section]}").setEnabled(False)
        for phrase in phrases:
            action = self.phrase_menu.addAction(phrase[:90])
            action.triggered.connect(lambda _=False, p=phrase: self.insert(p + " "))

    # -- sign-off -------------------------------------------------------------------------------
    def sign(self, confirm: bool = True) -> bool:
        name, credentials, institution = reader(self.settings)
        if not name:
            self.problem.setText("Set your name in Preferences (Reader name) to sign reports.")
            return False
        if self._refused:
            return False  # text the report refused would be lost
        if confirm:
            answer = QMessageBox.question(
                self,
                "Sign the report",
                f"Sign this report as {name}? It becomes final and read-only; live fields "
                "are written in with their values now. Later changes go into addenda.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        report = self.session.report

        def signed(values: dict[str, str]) -> None:
            if self.session.report is not report or report is None or report.final:
                return  # the study changed meanwhile: nothing is signed unseen
            try:
                reporting.sign_report(
                    self.session, name, credentials, organization=institution, now=values
                )
            except MedviewError as e:
                self.problem.setText(str(e))
                return
            self.notify(f"Report signed by {name}.")

        self.sign_button.setEnabled(False)
        self.measure_fields(then=signed)
        return True

    def add_addendum(self, text: str | None = None) -> bool:
        name, credentials, _ = reader(self.settings)
        if text is None:
            text, ok = QInputDialog.getMultiLineText(
                self, "Addendum", "Addendum to the signed report:"
            )
            if not ok:
                return False
        try:
            reporting.add_addendum(self.session, text, name, credentials, now=self.values)
        except MedviewError as e:
            self.problem.setText(str(e))
            return False
        self.problem.setText("")
        return True


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ReportDock(QDockWidget):
    def __init__(
        self,
        session: StudySession,
        runner: TaskRunner,
        settings: QSettings,
        notify: Callable[[str], None],
        parent: QWidget,
    ) -> None:
        super().__init__("Report", parent)
        self.setObjectName("report")
        self.panel = ReportPanel(session, runner, settings, notify)
        self.setWidget(self.panel)
        self.panel.status.setTextFormat(Qt.TextFormat.RichText)
