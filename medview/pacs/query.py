"""Query keys and matches, shared by C-FIND (datasets) and QIDO-RS (DICOM JSON)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview.core.errors import PacsError

LEVELS = ("study", "series")
_DATE_RANGE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")


@dataclass(frozen=True)
class QueryKeys:
    """What the user asks for. Empty means "any". ``patient_name`` takes DICOM wildcards
    (``*``, ``?``); ``study_date`` is ``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``-YYYYMMDD`` or
    ``YYYYMMDD-``."""

    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    modality: str = ""
    accession: str = ""
    description: str = ""
    study_uid: str = ""
    series_uid: str = ""

    def checked(self) -> QueryKeys:
        if self.study_date and not _DATE_RANGE.match(self.study_date):
            raise PacsError(
                f"study date {self.study_date!r}: use YYYYMMDD or a range YYYYMMDD-YYYYMMDD"
            )
        for name, value in asdict(self).items():
            if "\\" in value or any(ord(c) < 32 for c in value):
                raise PacsError(f"query key {name} has a backslash or control character")
        return self


def query_dataset(keys: QueryKeys, level: str) -> Any:
    """The C-FIND identifier: the user's keys plus the return keys the lists show."""
    from pydicom import Dataset

    if level not in LEVELS:
        raise PacsError(f"query level must be one of {', '.join(LEVELS)}")
    keys = keys.checked()
    ds = Dataset()
    ds.QueryRetrieveLevel = level.upper()
    ds.StudyInstanceUID = keys.study_uid
    if level == "study":
        ds.PatientName = keys.patient_name
        ds.PatientID = keys.patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.StudyDate = keys.study_date
        ds.StudyTime = ""
        ds.AccessionNumber = keys.accession
        ds.StudyDescription = keys.description
        ds.ModalitiesInStudy = keys.modality
        ds.NumberOfStudyRelatedSeries = None
        ds.NumberOfStudyRelatedInstances = None
    else:
        if not keys.study_uid:
            raise PacsError("a series query needs the study's UID")
        ds.SeriesInstanceUID = keys.series_uid
        ds.Modality = keys.modality
        ds.SeriesNumber = None
        ds.SeriesDescription = keys.description
        ds.BodyPartExamined = ""
        ds.NumberOfSeriesRelatedInstances = None
    return ds


def _text(ds: Any, name: str) -> str:
    value = ds.get(name, "")
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _int(ds: Any, name: str) -> int | None:
    try:
        value = ds.get(name)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class StudyMatch:
    study_uid: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    accession: str
    description: str
    modalities: str
    series_count: int | None
    instance_count: int | None

    @classmethod
    def from_dataset(cls, ds: Any) -> StudyMatch:
        return cls(
            study_uid=_text(ds, "StudyInstanceUID"),
            patient_name=_text(ds, "PatientName"),
            patient_id=_text(ds, "PatientID"),
            birth_date=_text(ds, "PatientBirthDate"),
            sex=_text(ds, "PatientSex"),
            study_date=_text(ds, "StudyDate"),
            study_time=_text(ds, "StudyTime"),
            accession=_text(ds, "AccessionNumber"),
            description=_text(ds, "StudyDescription"),
            modalities=_text(ds, "ModalitiesInStudy"),
            series_count=_int(ds, "NumberOfStudyRelatedSeries"),
            instance_count=_int(ds, "NumberOfStudyRelatedInstances"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SeriesMatch:
    study_uid: str
    series_uid: str
    modality: str
    series_number: int | None
    description: str
    body_part: str
    instance_count: int | None

    @classmethod
    def from_dataset(cls, ds: Any) -> SeriesMatch:
        return cls(
            study_uid=_text(ds, "StudyInstanceUID"),
            series_uid=_text(ds, "SeriesInstanceUID"),
            modality=_text(ds, "Modality"),
            series_number=_int(ds, "SeriesNumber"),
            description=_text(ds, "SeriesDescription"),
            body_part=_text(ds, "BodyPartExamined"),
            instance_count=_int(ds, "NumberOfSeriesRelatedInstances"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_json(item: dict[str, Any]) -> Any:
    """A QIDO-RS DICOM JSON result as a pydicom Dataset (for the ``from_dataset`` readers)."""
    from pydicom import Dataset

    return Dataset.from_json(item)
