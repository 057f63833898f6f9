"""The study's report as session operations: start it from a template, edit a section, sign
it, add an addendum. Each change is kept with the study (``StudyDatabase.save_report``) and
told to the session's "report" subscribers, as the window and scripts share them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from medview.core.errors import ReportError
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.report.fields import Reading, field_values
from medview.report.model import SECTIONS, Addendum, Report
from medview.report.technique import technique_text
from medview.report.templates import Template

if TYPE_CHECKING:
    from medview.session import StudySession


def reading_of(session: StudySession, copy: bool = True) -> Reading:
    """What the live fields are computed from: the reading as it is now. ``copy=False``
    shares the working label map instead of copying it (0.2 s on the GUI thread for a
    300 x 512 x 512 CT): an edit made while the fields are measured asks for them again."""
    _, volume = session._require()
    editor = session.editor
    return Reading(
        volume,
        [m.to_dict() for m in session.measurements.items],
        editor.segmentation(copy=copy) if editor is not None and editor.table else None,
        [session.classification] if session.classification is not None else [],
        dict(session.risk),
    )


def values(session: StudySession) -> dict[str, str]:
    """Every live field's value now."""
    return field_values(reading_of(session))


def values_job(session: StudySession) -> Callable[..., dict[str, str]]:
    """The fields' values as a job ``(cancel=, progress=)`` for a worker: the lesion table
    (a pass over the label map, 0.16 s on a 300 x 512 x 512 CT) is measured in the job."""
    reading = reading_of(session, copy=False)

    def job(
        *, cancel: CancelToken = NEVER_CANCELLED, progress: Progress = no_progress
    ) -> dict[str, str]:
        cancel.raise_if_cancelled()
        return field_values(reading)

    return job


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
    now: Mapping[str, str] | None = None,
) -> Report:
    """Sign: live fields are written into the text with their values ``now`` (computed here
    when not given), and the report becomes final."""
    report = _report(session)
    report.sign(reader, credentials, values(session) if now is None else now, when, organization)
    _kept(session)
    return report


def add_addendum(
    session: StudySession,
    text: str,
    reader: str,
    credentials: str = "",
    when: str = "",
    now: Mapping[str, str] | None = None,
) -> Addendum:
    a = _report(session).add_addendum(
        text, reader, credentials, values(session) if now is None else now, when
    )
    _kept(session)
    return a
