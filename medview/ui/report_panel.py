"""The Report dock: the study's narrative report beside the viewer.

A template starts it (Technique filled from the headers); five plain-text sections with undo
(no spell-checker); live fields and template phrases inserted at the cursor; "Sign" makes it
final and read-only; later changes go into dated addenda. Every change goes to the session
(`medview.session.reporting`), which keeps it with the study; text the report cannot hold is
refused there, and the dock says why."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer
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
from medview.ui.preferences import reader

HEIGHTS = {"clinical": 50, "technique": 70, "comparison": 40, "findings": 200, "impression": 90}
KEEP_AFTER_MS = 600  # typing pauses this long before the text is kept


class ReportPanel(QWidget):
    def __init__(
        self, session: StudySession, settings: QSettings, notify: Callable[[str], None]
    ) -> None:
        super().__init__()
        self.session, self.settings, self.notify = session, settings, notify
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
            edit.textChanged.connect(self._typed)
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
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.keep)
        self._loading = False
        session.subscribe("report", lambda _s: self.refresh())
        session.subscribe("series", lambda _s: self.refresh())
        self.refresh()

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

    def refresh(self) -> None:
        """Show the session's report as it is (editors untouched where they already agree)."""
        self._fill_templates()
        report = self.session.report
        has_series = self.session.volume is not None
        self._loading = True
        try:
            for key, edit in self.editors.items():
                text = report.sections.get(key, "") if report is not None else ""
                if edit.toPlainText() != text:
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
        refused = "; ".join(f"{n}: {r}" for n, r in self.templates.refused)
        self.problem.setText(f"Templates refused: {refused}" if refused else "")

    # -- editing --------------------------------------------------------------------------------
    def _typed(self) -> None:
        if not self._loading:
            self._timer.start(KEEP_AFTER_MS)

    def keep(self) -> None:
        """Give the session the sections as typed; text it refuses stays here, with why."""
        self._timer.stop()
        report = self.session.report
        if report is None or report.final:
            return
        problems = []
        for key, edit in self.editors.items():
            try:
                reporting.edit_section(self.session, key, edit.toPlainText())
            except ReportError as e:
                problems.append(f"Not kept: {e}")
        self.problem.setText("\n".join(problems))

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
        if self.session.volume is None:
            return
        values = reporting.values(self.session)
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
        self.keep()
        name, credentials, institution = reader(self.settings)
        if not name:
            self.problem.setText("Set your name in Preferences (Reader name) to sign reports.")
            return False
        if self.problem.text():
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
        try:
            reporting.sign_report(self.session, name, credentials, organization=institution)
        except MedviewError as e:
            self.problem.setText(str(e))
            return False
        self.notify(f"Report signed by {name}.")
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
            reporting.add_addendum(self.session, text, name, credentials)
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
        settings: QSettings,
        notify: Callable[[str], None],
        parent: QWidget,
    ) -> None:
        super().__init__("Report", parent)
        self.setObjectName("report")
        self.panel = ReportPanel(session, settings, notify)
        self.setWidget(self.panel)
        self.panel.status.setTextFormat(Qt.TextFormat.RichText)
