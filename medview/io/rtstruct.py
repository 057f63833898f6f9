"""Open a DICOM RT Structure Set onto its referenced series' grid, as an editable label map.

Read with pydicom; closed planar contours are rasterised slice by slice with the even-odd
rule (`medview.io.polygons`: holes and self-intersections as DICOM means them). Points and
open contours are not areas: they come back as marks (point and line measurements named after
their ROI), never dropped. Contours on no image plane of the series, empty contours and
referenced images that are not present are counted in the notes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medview.core.colours import new_colour
from medview.core.errors import DerivedObjectError
from medview.core.records import SeriesRecord
from medview.core.results import Provenance, Segment, Segmentation
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.io.derived import text_of as _s
from medview.io.polygons import fill_polygons

log = logging.getLogger("medview")

MAX_ROIS = 255  # the editable label map holds one byte per voxel
PLANE_TOL = 0.25  # slices: a contour this close to a slice's plane lies on it
MAX_MARKS = 10_000  # point and line marks kept per structure set (the rest are counted)
FINDING_TYPES = {"GTV", "CTV", "PTV", "ITV", "CAVITY", "TREATED_VOLUME", "IRRAD_VOLUME"}


@dataclass
class StructureSet:
    """What an RT Structure Set opens into: the segmentation, marks (measurement dicts in
    LPS mm: points and open contours) and notes."""

    segmentation: Segmentation
    marks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read(path: str) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, force=True)  # the index found it DICOM
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as e:
        raise DerivedObjectError(f"this RT structure set cannot be read: {e}", path=path) from e


def _rois(ds: Any, path: str) -> list[tuple[int, Any]]:
    """(ROI number, its StructureSetROISequence item), checked: numbers unique, at most
    MAX_ROIS."""
    items = list(ds.get("StructureSetROISequence") or ())
    if not items:
        raise DerivedObjectError("this RT structure set has no ROI", path=path)
    numbers = [int(i.get("ROINumber", -1)) for i in items]
    if len(set(numbers)) != len(numbers):
        raise DerivedObjectError("this RT structure set repeats ROI numbers", path=path)
    if len(items) > MAX_ROIS:
        raise DerivedObjectError(
            f"this RT structure set has {len(items)} ROIs; MedView edits at most {MAX_ROIS}",
            path=path,
        )
    return list(zip(numbers, items, strict=True))


CONTOUR_DATA = 0x30060050


def _contour_points(c: Any) -> np.ndarray:
    """(n, 3) LPS points of a contour. The raw DS text is parsed by numpy: pydicom's DS
    values (one Python object each) took 5 of the 12 s a 50-ROI structure set of a
    300-slice CT took to open."""
    if CONTOUR_DATA not in c:
        return np.zeros((0, 3))
    raw = c.get_item(CONTOUR_DATA)
    value = getattr(raw, "value", None)
    try:
        if isinstance(value, bytes | bytearray):
            text = bytes(value).strip(b" \0")
            pts = np.array(text.split(b"\\"), dtype=np.float64) if text else np.zeros(0)
        else:
            data = c.ContourData
            pts = np.asarray([float(v) for v in data or ()], dtype=np.float64)
    except ValueError:
        return np.zeros((0, 3))
    return pts[: len(pts) // 3 * 3].reshape(-1, 3)


def read_rtstruct(
    path: str,
    series: SeriesRecord,
    volume: Volume,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> StructureSet:
    """The RT Structure Set at ``path`` on ``volume``'s grid: one segment per ROI (value = ROI
    number when all fit in a byte, else 1..N in order), names and colours as it gives them."""
    ds = _read(path)
    rois = _rois(ds, path)
    values = (
        {n: n for n, _ in rois}
        if all(0 < n <= MAX_ROIS for n, _ in rois)
        else {n: i + 1 for i, (n, _) in enumerate(rois)}
    )
    geometry = volume.geometry
    labels = np.zeros(volume.shape, dtype=np.uint8)
    here = {i.sop_instance_uid for i in series.instances}
    referenced: dict[str, None] = {}
    off_plane: dict[str, int] = defaultdict(int)
    on_missing: dict[str, int] = defaultdict(int)
    empty: dict[str, int] = defaultdict(int)
    marks: list[dict[str, Any]] = []
    extra_marks = 0
    contours_by_roi = {
        int(c.get("ReferencedROINumber", -1)): c for c in ds.get("ROIContourSequence") or ()
    }
    observed = {
        int(o.get("ReferencedROINumber", -1)): o for o in ds.get("RTROIObservationsSequence") or ()
    }
    used: set[tuple[int, int, int]] = set()
    segments = []
    for step, (number, item) in enumerate(rois):
        cancel.raise_if_cancelled()
        progress(step, len(rois), "rasterising contours")
        name = _s(item, "ROIName") or f"ROI {number}"
        rc = contours_by_roi.get(number)
        given: tuple[int, ...] = ()
        if rc is not None and rc.get("ROIDisplayColor") is not None:
            try:
                given = tuple(int(v) for v in rc.ROIDisplayColor)[:3]
            except (TypeError, ValueError):
                given = ()
        colour = (given[0], given[1], given[2]) if len(given) == 3 else new_colour(used)
        used.add(colour)
        kind = _s(observed[number], "RTROIInterpretedType") if number in observed else ""
        segments.append(
            Segment(
                value=values[number],
                name=name,
                color=colour,
                finding=kind in FINDING_TYPES,
                algorithm_type=_s(item, "ROIGenerationAlgorithm"),
            )
        )
        by_slice: dict[int, list[np.ndarray]] = defaultdict(list)
        for c in (rc.get("ContourSequence") or ()) if rc is not None else ():
            refs = [_s(r, "ReferencedSOPInstanceUID") for r in c.get("ContourImageSequence") or ()]
            referenced.update((u, None) for u in refs)
            pts = _contour_points(c)
            gtype = _s(c, "ContourGeometricType") or "CLOSED_PLANAR"
            if len(pts) == 0:
                empty[name] += 1
                continue
            if gtype in ("POINT", "OPEN_PLANAR", "OPEN_NONPLANAR") or len(pts) < 3:
                if len(marks) < MAX_MARKS:
                    marks.append(_mark(pts, gtype, name, geometry))
                else:
                    extra_marks += 1
                continue
            zyx = geometry.lps_to_index(pts)
            k = int(np.round(np.median(zyx[:, 0])))
            if np.abs(zyx[:, 0] - k).max() > PLANE_TOL or not 0 <= k < volume.shape[0]:
                if any(u and u not in here for u in refs):
                    on_missing[name] += 1
                else:
                    off_plane[name] += 1
                continue
            by_slice[k].append(zyx[:, 1:])
        for k, polygons in by_slice.items():
            mask = fill_polygons(polygons, volume.shape[1:])
            labels[k][mask] = values[number]
    notes: list[str] = []
    missing = [u for u in referenced if u and u not in here]
    if missing:
        notes.append(
            f"the structure set's contours reference {len(missing)} image(s) not in this "
            "series: " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        )
    for name, n in off_plane.items():
        notes.append(
            f"{name}: {n} contour(s) lie on no image plane of this series (between slices, "
            "oblique or beyond its slices); not drawn"
        )
    for name, n in on_missing.items():
        notes.append(f"{name}: {n} contour(s) on images not in this series; not drawn")
    for name, n in empty.items():
        notes.append(f"{name}: {n} empty contour(s) (no points) ignored")
    if marks:
        notes.append(f"{len(marks)} point(s) or open contour(s) shown as marks, not areas")
    if extra_marks:
        notes.append(f"{extra_marks} more point(s) or open contour(s) not shown (too many)")
    creator = " ".join(x for x in (_s(ds, "Manufacturer"), _s(ds, "ManufacturerModelName")) if x)
    provenance = Provenance(
        model_id="dicom-rtstruct",
        name=(_s(ds, "StructureSetLabel") or creator or "RT structure set")[:64],
        version=_s(ds, "SoftwareVersions")[:64],
        date=_s(ds, "StructureSetDate"),
    )
    progress(len(rois), len(rois), "rasterising contours")
    labels_volume = Volume(labels, geometry, volume.frame_of_reference_uid)
    seg = Segmentation(labels_volume, tuple(segments), (), provenance, tuple(notes))  # no stats
    return StructureSet(seg, marks, notes)


def _mark(pts: np.ndarray, gtype: str, name: str, geometry: Any) -> dict[str, Any]:
    """A point or open contour as a measurement dict (`Measurement.from_dict`), drawn in the
    axial view: a point, or a line through its points."""
    kind = "point" if len(pts) == 1 else "polyline"
    return {
        "kind": kind,
        "view": "axial",
        "points": [[float(v) for v in p] for p in pts[:10_000]],
        "text": f"{name} ({gtype.lower().replace('_', ' ')})",
    }
