"""The study's report as session operations: start it from a template, edit a section, sign
it, add an addendum. Each change is kept with the study (``StudyDatabase.save_report``) and
told to the session's "report" subscribers, as the window and scripts share them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medview.core.errors import ReportError
from medview.report.fields import Reading, field_values
from medview.report.model import SECTIONS, Addendum, Report
from medview.report.technique import technique_text
from medview.report.templates import Template

if TYPE_CHECKING:
    from medview.session import StudySession


def reading_of(session: StudySession) -> Reading:
    """What the live fields are computed from: the reading as it is now."""
    _, volume = session._require()
    content = session.export_content()
    return Reading(
        volume,
        content.measurements,
        content.segmentation,
        content.classifications,
        content.risk,
    )


def values(session: StudySession) -> dict[str, str]:
    """Every live field's value now."""
    return field_values(reading_of(session))


def _kept(session: StudySession) -> None:
    series, _ = session._require()
    report = session.report
    if session.db is not None and report is not None:
        uid, data = series.study_uid, report.to_dict()
        session.keep("the report", lambda: session.db.save_report(uid, data))
    session._emit("report")


def start_report(session: StudySession, template: Template) -> Report:
    """A new preliminary report from ``template``; Technique is filled from the headers.
    A signed report is never replaced (add an addendum)."""
    series, volume = session._require()
    if session.report is not None and session.report.final:
        raise ReportError("this study's report is signed; add an addendum instead")
    sections = dict.fromkeys(SECTIONS, "")
    sections.update(template.sections)
    technique = technique_text(series, volume)
    if sections["technique"].strip():
        technique += "\n" + sections["technique"]
    sections["technique"] = technique
    session.report = Report(template.id, template.name, sections, series_key=series.key)
    _kept(session)
    return session.report


def _report(session: StudySession) -> Report:
    if session.report is None:
        raise ReportError("no report has been started for this study")
    return session.report


def edit_section(session: StudySession, section: str, text: str) -> None:
    report = _report(session)
    if report.sections.get(section) == text:
        return
    report.set_section(section, text)
    _kept(session)


def sign_report(
    session: StudySession,
    reader: str,
    credentials: str = "",
    when: str = "",
    organization: str = "",
) -> Report:
    """Sign: live fields are written into the text, the report becomes final."""
    report = _report(session)
    report.sign(reader, credentials, values(session), when, organization)
    _kept(session)
    return report


def add_addendum(
    session: StudySession, text: str, reader: str, credentials: str = "", when: str = ""
) -> Addendum:
    a = _report(session).add_addendum(text, reader, credentials, values(session), when)
    _kept(session)
    return a
