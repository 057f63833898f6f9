"""Derived objects (DICOM SEG, RTSTRUCT, SR): indexed from their headers as objects that
reference a series, never as image series.

`parse_derived` reads what the study browser and ``medview info`` show (label, date, creator
or algorithm, number of segments / ROIs / measurement groups) and what the object references:
series and SOP instances, frame of reference. `referenced_series_of` finds the series it
annotates among those present, and `missing_instances` says which referenced images are not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from medview.core.errors import DerivedObjectError
from medview.core.records import DerivedRecord, InstanceRecord, SeriesRecord, derived_kind
from medview.io.header_values import _s

# top-level elements the index needs; pydicom skips the rest (per-frame groups, pixel data)
_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "StudyDescription",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "ContentDate",
    "ContentLabel",
    "StructureSetLabel",
    "StructureSetDate",
    "ConceptNameCodeSequence",
    "Manufacturer",
    "ManufacturerModelName",
    "SegmentSequence",
    "StructureSetROISequence",
    "ContentSequence",
    "FrameOfReferenceUID",
    "ReferencedSeriesSequence",
    "ReferencedFrameOfReferenceSequence",
    "CurrentRequestedProcedureEvidenceSequence",
    "PertinentOtherEvidenceSequence",
]
MEASUREMENT_GROUP = "125007"  # DCM: Measurement Group (TID 1501/1410/1411)
MAX_DEPTH = 64  # SR content nesting walked at most this deep (a cycle cannot recurse forever)


# an element as stripped text, "" when absent or invalid (the header parser's reader)
text_of = _s


def _seq(ds: Any, name: str) -> Sequence[Any]:
    v = ds.get(name)
    return v if v is not None else ()


def _sr_groups(items: Iterable[Any], depth: int = 0) -> int:
    if depth > MAX_DEPTH:
        return 0
    n = 0
    for it in items:
        code = _seq(it, "ConceptNameCodeSequence")
        if code and _s(code[0], "CodeValue") == MEASUREMENT_GROUP:
            n += 1
        n += _sr_groups(_seq(it, "ContentSequence"), depth + 1)
    return n


def _evidence(ds: Any) -> Iterator[tuple[str, list[str]]]:
    """(series UID, its referenced SOP instance UIDs) from any of the object's reference
    sequences."""
    for s in _seq(ds, "ReferencedSeriesSequence"):  # SEG
        uids = [_s(i, "ReferencedSOPInstanceUID") for i in _seq(s, "ReferencedInstanceSequence")]
        yield _s(s, "SeriesInstanceUID"), uids
    for f in _seq(ds, "ReferencedFrameOfReferenceSequence"):  # RTSTRUCT
        for st in _seq(f, "RTReferencedStudySequence"):
            for s in _seq(st, "RTReferencedSeriesSequence"):
                uids = [_s(i, "ReferencedSOPInstanceUID") for i in _seq(s, "ContourImageSequence")]
                yield _s(s, "SeriesInstanceUID"), uids
    for name in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for st in _seq(ds, name):  # SR
            for s in _seq(st, "ReferencedSeriesSequence"):
                uids = [_s(i, "ReferencedSOPInstanceUID") for i in _seq(s, "ReferencedSOPSequence")]
                yield _s(s, "SeriesInstanceUID"), uids


def parse_derived(path: str, record: InstanceRecord | None = None) -> DerivedRecord:
    """The `DerivedRecord` of the SEG, RTSTRUCT or SR at ``path`` (header only)."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    tags = [int(tag_for_keyword(k) or 0) for k in _TAGS]
    last = max(tags)
    try:
        with open(path, "rb") as fp:
            # stop after the last element the index needs: a SEG's per-frame groups and an
            # RT structure set's contours (megabytes) are never parsed here
            ds = read_partial(
                fp, stop_when=lambda tag, vr, length: tag > last, specific_tags=tags, force=True
            )
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as e:
        raise DerivedObjectError(f"its header cannot be read ({e})", path=path) from e
    kind = derived_kind(_s(ds, "SOPClassUID"))
    if not kind:
        raise DerivedObjectError("not a SEG, RTSTRUCT or SR object", path=path)
    series: dict[str, None] = {}
    instances: dict[str, None] = {}
    for uid, refs in _evidence(ds):
        if uid and uid != _s(ds, "SeriesInstanceUID"):
            series[uid] = None
        instances.update((r, None) for r in refs if r)
    frame_of_reference = _s(ds, "FrameOfReferenceUID")
    if not frame_of_reference:
        for f in _seq(ds, "ReferencedFrameOfReferenceSequence"):
            frame_of_reference = _s(f, "FrameOfReferenceUID")
            break
    if kind == "SEG":
        segments = _seq(ds, "SegmentSequence")
        items = len(segments)
        algorithms = dict.fromkeys(
            _s(s, "SegmentAlgorithmName") for s in segments if _s(s, "SegmentAlgorithmName")
        )
        algorithm = "; ".join(algorithms)[:120]
        label = _s(ds, "ContentLabel")
        date = _s(ds, "ContentDate")
    elif kind == "RTSTRUCT":
        items = len(_seq(ds, "StructureSetROISequence"))
        algorithm = ""
        label = _s(ds, "StructureSetLabel")
        date = _s(ds, "StructureSetDate")
    else:
        items = _sr_groups(_seq(ds, "ContentSequence"))
        algorithm = ""
        title = _seq(ds, "ConceptNameCodeSequence")
        label = _s(title[0], "CodeMeaning") if title else ""
        date = _s(ds, "ContentDate")
    creator = " ".join(x for x in (_s(ds, "Manufacturer"), _s(ds, "ManufacturerModelName")) if x)
    number = ds.get("SeriesNumber")
    st = os.stat(path)
    return DerivedRecord(
        path=path,
        kind=kind,
        sop_instance_uid=_s(ds, "SOPInstanceUID"),
        sop_class_uid=_s(ds, "SOPClassUID"),
        study_uid=_s(ds, "StudyInstanceUID"),
        series_uid=_s(ds, "SeriesInstanceUID"),
        patient_id=record.patient_id if record else _s(ds, "PatientID"),
        patient_name=record.patient_name if record else _s(ds, "PatientName"),
        study_date=_s(ds, "StudyDate"),
        study_description=_s(ds, "StudyDescription"),
        series_number=int(number) if number not in (None, "") else None,
        series_description=_s(ds, "SeriesDescription"),
        date=date or _s(ds, "SeriesDate"),
        label=label,
        creator=creator[:120],
        algorithm=algorithm,
        items=items,
        frame_of_reference_uid=frame_of_reference,
        referenced_series=tuple(series),
        referenced_instances=tuple(instances),
        file_size=st.st_size,
        mtime_ns=st.st_mtime_ns,
    )


def referenced_series_of(obj: DerivedRecord, series: Sequence[SeriesRecord]) -> list[SeriesRecord]:
    """The present series ``obj`` annotates: by Series Instance UID, else by referenced SOP
    instances, else by frame of reference (volumes first)."""
    by_uid = [s for s in series if s.series_uid in obj.referenced_series]
    if by_uid:
        return by_uid
    wanted = set(obj.referenced_instances)
    if wanted:
        hits = [s for s in series if any(i.sop_instance_uid in wanted for i in s.instances)]
        if hits:
            return hits
    if obj.frame_of_reference_uid:
        same = [
            s
            for s in series
            if s.study_uid == obj.study_uid
            and s.first.frame_of_reference_uid == obj.frame_of_reference_uid
        ]
        return sorted(same, key=lambda s: s.kind != "volume")
    return []


def missing_instances(obj: DerivedRecord, series: SeriesRecord) -> list[str]:
    """The SOP Instance UIDs ``obj`` references in ``series``' stack that are not present."""
    here = {i.sop_instance_uid for i in series.instances}
    if not obj.referenced_series or series.series_uid in obj.referenced_series:
        return [u for u in obj.referenced_instances if u not in here]
    return []
