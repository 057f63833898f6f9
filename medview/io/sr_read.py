"""Read the measurements of a TID 1500 Measurement Report SR (highdicom's reader).

Each planar ROI group becomes an `SrRegion`: its graphic type and points in LPS mm (SCOORD3D
as given; SCOORD pixel coordinates on a referenced image mapped through that image's slice of
the series), its tracking label and the values it reports. Volumetric groups and
image-level measurements are reported as notes with their values. What cannot be placed (an
image not in the series, an unknown graphic type) is said, never dropped silently.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.errors import DerivedObjectError
from medview.core.records import SeriesRecord
from medview.core.volume import Volume
from medview.io.derived import text_of as _s

log = logging.getLogger("medview")

MAX_GROUPS = 10_000


@dataclass(frozen=True)
class SrRegion:
    """One planar ROI group of a measurement report, placed on the series."""

    graphic_type: str  # POINT, MULTIPOINT, POLYLINE, POLYGON, CIRCLE, ELLIPSE
    points: np.ndarray  # (n, 3) LPS mm
    label: str  # the tracking identifier
    reported: tuple[tuple[str, float, str], ...]  # (name, value, unit)


@dataclass
class SrReport:
    regions: list[SrRegion]
    notes: list[str]
    source: str  # "SR: <title>, <creator>, <date>"


def _values(group: Any) -> tuple[tuple[str, float, str], ...]:
    out = []
    for m in group.get_measurements():
        try:
            unit = str(m.unit.value) if m.unit is not None else ""
            out.append((str(m.name.meaning), float(m.value), unit))
        except (AttributeError, TypeError, ValueError):
            continue
    return tuple(out)


def _slice_of(series: SeriesRecord, uid: str, frame: int | None) -> int | None:
    for z, s in enumerate(series.slices):
        inst = series.instances[s.instance]
        if inst.sop_instance_uid == uid and (frame is None or s.frame == frame - 1):
            return z
    return None


def _image_ref(roi: Any) -> tuple[str, int | None]:
    for item in roi.get("ContentSequence") or ():
        for ref in item.get("ReferencedSOPSequence") or ():
            frames = ref.get("ReferencedFrameNumber")
            frame = (
                int(frames[0] if isinstance(frames, list | tuple) else frames) if frames else None
            )
            return _s(ref, "ReferencedSOPInstanceUID"), frame
    return "", None


def read_sr(path: str, series: SeriesRecord, volume: Volume) -> SrReport:
    """The planar measurements of the TID 1500 report at ``path`` placed on ``series``."""
    import highdicom as hd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = hd.sr.srread(path)
            content = doc.content
    except (ValueError, AttributeError, KeyError, TypeError, IndexError, RecursionError) as e:
        raise DerivedObjectError(
            f"this SR is not a measurement report MedView can read (TID 1500): {e}", path=path
        ) from e
    title_code = doc.get("ConceptNameCodeSequence")
    if (
        not isinstance(content, hd.sr.MeasurementReport)
        or not title_code
        or str(title_code[0].get("CodeValue", "")) != "126000"  # DCM: Imaging Measurement Report
    ):
        raise DerivedObjectError(
            "this SR is not a TID 1500 measurement report; it has no measurements to show",
            path=path,
        )
    title = (
        _s(doc.ConceptNameCodeSequence[0], "CodeMeaning")
        if "ConceptNameCodeSequence" in doc
        else ""
    )
    creator = " ".join(x for x in (_s(doc, "Manufacturer"), _s(doc, "ManufacturerModelName")) if x)
    date = _s(doc, "ContentDate")
    date = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else date
    source = "SR: " + ", ".join(x for x in (title or "report", creator, date) if x)
    notes: list[str] = []
    regions: list[SrRegion] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            planar = content.get_planar_roi_measurement_groups()
            volumetric = content.get_volumetric_roi_measurement_groups()
            image_level = content.get_image_measurement_groups()
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError) as e:
        raise DerivedObjectError(
            f"this SR's measurement groups cannot be read: {e}", path=path
        ) from e
    unplaced = 0
    for g in planar[:MAX_GROUPS]:
        roi = g.roi
        label = str(g.tracking_identifier or "")
        if roi is None:
            unplaced += 1
            continue
        gtype = str(
            roi.graphic_type.value if hasattr(roi.graphic_type, "value") else roi.graphic_type
        )
        data = np.asarray(roi.value, dtype=np.float64)
        if str(getattr(roi.value_type, "value", roi.value_type)) == "SCOORD3D":
            if _s(roi, "ReferencedFrameOfReferenceUID") not in ("", volume.frame_of_reference_uid):
                notes.append(f"{label}: on another frame of reference; not shown")
                continue
            pts = data.reshape(-1, 3)
        else:
            uid, frame = _image_ref(roi)
            z = _slice_of(series, uid, frame)
            if z is None:
                notes.append(f"{label}: on an image not in this series ({uid or 'none named'})")
                continue
            cr = data.reshape(-1, 2)  # (column, row); pixel centres at +0.5
            zyx = np.column_stack([np.full(len(cr), float(z)), cr[:, 1] - 0.5, cr[:, 0] - 0.5])
            pts = volume.geometry.index_to_lps(zyx)
        regions.append(SrRegion(gtype, pts, label, _values(g)))
    if len(planar) > MAX_GROUPS:
        notes.append(f"{len(planar) - MAX_GROUPS} more planar groups not read (too many)")
    if unplaced:
        notes.append(f"{unplaced} planar group(s) without an image region; not shown")
    for vg in volumetric:
        values = "; ".join(f"{n} {v:g} {u}".strip() for n, v, u in _values(vg))
        notes.append(f"volumetric group {vg.tracking_identifier}: {values or 'no values'}")
    for ig in image_level:
        values = "; ".join(f"{n} {v:g} {u}".strip() for n, v, u in _values(ig))
        notes.append(f"image measurements: {values or 'no values'}")
    return SrReport(regions, notes, source)
