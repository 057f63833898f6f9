"""Feature values from the open study: header facts (age, sex, weight, size), a selected
measurement and segmentation statistics. Each filled value carries where it came from, so the
panel can mark it "from study"; a header value that looks wrong (a size in centimetres where
DICOM stores metres) is not used, and the note says why."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medview.risk.model import RiskModel

# DICOM stores Patient's Size in metres and Patient's Weight in kilograms (PS3.3 C.7.1.3)
MAX_SIZE_M = 2.8
MIN_SIZE_M = 0.3
MAX_WEIGHT_KG = 650.0


@dataclass(frozen=True)
class StudyFacts:
    """Header facts of a study, in model units; None when absent or refused (``notes`` say
    why)."""

    age_years: float | None = None
    sex: str = ""  # "M", "F", "O" or ""
    weight_kg: float | None = None
    size_m: float | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filled:
    value: float
    origin: str  # shown beside the field, e.g. "from study: DICOM PatientAge"


@dataclass(frozen=True)
class SegmentStat:
    name: str
    volume_ml: float
    mean: float | None


@dataclass(frozen=True)
class Prefill:
    values: dict[str, Filled] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def parse_age(text: str) -> float | None:
    """PatientAge (AS): ``nnnD|W|M|Y`` -> years."""
    text = text.strip().upper()
    if len(text) != 4 or not text[:3].isdigit() or text[3] not in "DWMY":
        return None
    per_year = {"D": 365.25, "W": 365.25 / 7, "M": 12.0, "Y": 1.0}[text[3]]
    return int(text[:3]) / per_year


def _date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def facts_from_header(header: Mapping[str, object]) -> StudyFacts:
    """``header`` maps DICOM keywords to values (a pydicom Dataset works)."""
    notes = []
    age = parse_age(str(header.get("PatientAge") or ""))
    if age is None:
        born = _date(str(header.get("PatientBirthDate") or ""))
        seen = _date(str(header.get("StudyDate") or header.get("AcquisitionDate") or ""))
        if born and seen and seen >= born:
            age = (seen - born).days / 365.25
    sex = str(header.get("PatientSex") or "").strip().upper()
    weight = _number(header.get("PatientWeight"))
    size = _number(header.get("PatientSize"))
    if size is not None and size > MAX_SIZE_M:
        guess = f" (as centimetres: {size / 100:.2f} m)" if size / 100 <= MAX_SIZE_M else ""
        notes.append(
            f"Patient's Size in the header is {size:g}, but DICOM stores metres; it looks like "
            f"centimetres{guess}. Not used: check the height and enter BMI by hand."
        )
        size = None
    elif size is not None and size < MIN_SIZE_M:
        notes.append(f"Patient's Size in the header is {size:g} m, which is impossible. Not used.")
        size = None
    if weight is not None and not 0 < weight <= MAX_WEIGHT_KG:
        notes.append(
            f"Patient's Weight in the header is {weight:g} kg, which is impossible (grams?). "
            "Not used."
        )
        weight = None
    return StudyFacts(age, sex if sex in ("M", "F", "O") else "", weight, size, tuple(notes))


def _number(value: object) -> float | None:
    try:
        v = float(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) and v > 0 else None


def facts_from_file(path: str | Path) -> StudyFacts:
    """Read the few header attributes needed from one file of the study (no pixels)."""
    from medview.io.dicom import pydicom

    keywords = [
        "PatientAge",
        "PatientBirthDate",
        "PatientSex",
        "PatientWeight",
        "PatientSize",
        "StudyDate",
        "AcquisitionDate",
    ]
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=keywords)
    return facts_from_header({k: ds.get(k) for k in keywords})


def prefill(
    model: RiskModel,
    facts: StudyFacts | None,
    segments: Sequence[SegmentStat] = (),
) -> Prefill:
    """The features of ``model`` that the study can fill in, with their origin."""
    out: dict[str, Filled] = {}
    notes = list(facts.notes) if facts else []
    for f in model.features:
        for s in f.sources:
            value: float | None = None
            if facts and s.kind == "dicom" and s.attribute == "PatientAge":
                value = None if facts.age_years is None else math.floor(facts.age_years)
            elif facts and s.kind == "dicom" and s.attribute == "PatientSex":
                value = s.mapping.get(facts.sex)
            elif facts and s.kind == "derived" and s.attribute == "bmi":
                if facts.weight_kg is not None and facts.size_m is not None:
                    value = round(facts.weight_kg / facts.size_m**2, 2)
            elif s.kind == "segmentation":
                for seg in segments:
                    if seg.name.lower() == s.label.lower():
                        value = seg.volume_ml if s.attribute == "volume_ml" else seg.mean
            if value is not None:
                out[f.name] = Filled(float(value), f"from study: {s.describe()}")
                break
    return Prefill(out, tuple(notes))
