"""Opening other systems' objects (DICOM SEG, RT Structure Set, TID 1500 SR) into a reading.

`read_derived` does the work and changes nothing (it may run in a worker); `take_derived`
puts what it read into the session as one undoable step each: a SEG or structure set becomes
the working segmentation (editable, kept with the series), an SR's regions join the
measurement list marked with their source. `series_for` finds the series an object annotates
or says why it cannot be opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medview.core.errors import DerivedObjectError
from medview.core.records import DerivedRecord, SeriesRecord
from medview.core.results import Segmentation
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.io.derived import referenced_series_of
from medview.viewer.annotations import Measurement

_NAMES = {"SEG": "segmentation", "RTSTRUCT": "RT structure set", "SR": "report"}


@dataclass
class DerivedOpened:
    """What opening a derived object read, before the session takes it."""

    record: DerivedRecord
    segmentation: Segmentation | None = None
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def series_for(obj: DerivedRecord, candidates: Sequence[SeriesRecord]) -> SeriesRecord:
    """The series ``obj`` annotates among ``candidates`` (a volume first), or a
    `DerivedObjectError` naming the absent series."""
    found = referenced_series_of(obj, candidates)
    if found:
        return sorted(found, key=lambda s: s.kind != "volume")[0]
    wanted = ", ".join(obj.referenced_series) or (
        f"frame of reference {obj.frame_of_reference_uid}"
        if obj.frame_of_reference_uid
        else "no series named"
    )
    raise DerivedObjectError(
        f"the series this {_NAMES[obj.kind]} annotates is not here ({wanted}): import or "
        "retrieve it, then open the object again",
        path=obj.path,
    )


def read_derived(
    obj: DerivedRecord,
    series: SeriesRecord,
    volume: Volume,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> DerivedOpened:
    """Read ``obj`` onto ``volume`` (the loaded ``series``); changes nothing."""
    out = DerivedOpened(obj)
    if obj.kind == "SEG":
        from medview.io.seg_read import read_seg

        out.segmentation = read_seg(obj.path, series, volume, cancel=cancel, progress=progress)
        out.notes = list(out.segmentation.notes)
    elif obj.kind == "RTSTRUCT":
        from medview.io.rtstruct import read_rtstruct

        ss = read_rtstruct(obj.path, series, volume, cancel=cancel, progress=progress)
        out.segmentation, out.notes = ss.segmentation, list(ss.notes)
        source = f"RTSTRUCT: {obj.label or 'structure set'}"
        out.measurements = [Measurement.from_dict({**m, "source": source}) for m in ss.marks]
    else:
        from medview.io.sr_read import read_sr
        from medview.viewer.imported import measurements_from_sr

        report = read_sr(obj.path, series, volume)
        out.measurements = measurements_from_sr(report, volume)
        out.notes = list(report.notes)
        if not out.measurements and not out.notes:
            out.notes.append("the report holds no planar measurement")
    return out


def take_derived(session: Any, opened: DerivedOpened) -> list[str]:
    """Put ``opened`` into ``session`` (a `StudySession` showing its series); returns the
    notes to show the reader."""
    volume = session.volume
    if volume is None:
        raise RuntimeError("no series is open in this session")
    if opened.segmentation is not None:
        if opened.segmentation.labels.shape != volume.shape:
            raise DerivedObjectError(
                "the object was read onto another series", path=opened.record.path
            )
        session.accept(opened.segmentation)
    if opened.measurements:
        session.measurements.extend(opened.measurements)
        session.measurements_changed()
    return list(opened.notes)


def open_derived(
    session: Any,
    obj: DerivedRecord,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> list[str]:
    """`read_derived` and `take_derived` on the session's shown series (a script's way)."""
    if session.series is None or session.volume is None:
        raise RuntimeError("no series is open in this session")
    series, volume = session.series, session.volume
    return take_derived(
        session, read_derived(obj, series, volume, cancel=cancel, progress=progress)
    )
