"""DICOM SEG and SR (TID 1500) built with highdicom on the source series' own grid.

The label map has the source `Volume`'s geometry (slice ``z`` of the volume is
``series.slices[z]``), so each plane goes to the frame of the instance it came from: no
resampling, and the SEG references exactly the source instances.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pydicom
from pydicom.dataset import Dataset

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview import __version__
from medview.core.errors import ExportError
from medview.core.notices import RESEARCH_USE, is_flagged
from medview.core.records import SeriesRecord
from medview.core.results import Segment, Segmentation, SegmentStats
from medview.core.volume import Volume
from medview.export.algorithms import algorithm_identification
from medview.export.dicom_common import MANUFACTURER, device_observer

log = logging.getLogger(__name__)

SEG_SERIES_NUMBER = 900
SR_SERIES_NUMBER = 901
_LESION = re.compile(r"neoplasm|tumou?r|lesion|nodule|mass|cyst|metasta", re.I)


def source_order(series: SeriesRecord) -> list[int]:
    """Instance indices in the order of their first slice in the volume."""
    order: dict[int, None] = {}
    for s in series.slices:
        order.setdefault(s.instance, None)
    return list(order)


def read_sources(series: SeriesRecord, pixels: bool = False) -> list[Dataset]:
    """The series' instances, read-only (headers only unless ``pixels``), one per instance in
    the order of their first slice in the volume."""
    out: list[Dataset] = []
    for idx in source_order(series):
        path = series.instances[idx].path
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=not pixels))
        except (OSError, pydicom.errors.InvalidDicomError) as e:
            raise ExportError(f"cannot read a source instance again: {e}", path=path) from e
    return out


def require_uids(sources: Sequence[Dataset], what: str) -> None:
    """Refuse sources without the UIDs a derived object references them by (stripped)."""
    for ds in sources:
        for name in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
            if not str(ds.get(name, "") or "").strip():
                raise ExportError(
                    f"the series' images have no {name} (stripped from the files): a {what} "
                    "must reference them by UID; write a NIfTI label map instead"
                )


def _frames(series: SeriesRecord, labels: np.ndarray) -> np.ndarray:
    """Label planes in source-frame order: one per single-frame instance (in `read_sources`
    order), or the frames of a single multi-frame instance."""
    if len(series.instances) == 1 and len(series.slices) > 1:
        out = np.zeros_like(labels)
        for z, s in enumerate(series.slices):
            out[s.frame] = labels[z]
        return out
    first_z: dict[int, int] = {}
    for z, s in enumerate(series.slices):
        first_z.setdefault(s.instance, z)
    order = sorted(first_z.values())  # the first slice of each instance, in volume order
    if order == list(range(labels.shape[0])):  # one instance per slice: no copy needed
        return labels
    return labels[order]


def _codes(seg: Segment) -> tuple[Any, Any]:
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    if seg.snomed_code:
        kind = CodedConcept(seg.snomed_code, "SCT", seg.snomed_meaning or seg.name)
    else:
        kind = codes.SCT.Tissue
    text = f"{seg.name} {seg.snomed_meaning}"
    category = (
        codes.SCT.MorphologicallyAbnormalStructure if _LESION.search(text) else codes.SCT.Tissue
    )
    if seg.snomed_code and category is codes.SCT.Tissue:
        category = codes.SCT.AnatomicalStructure
    return category, kind


T = TypeVar("T")


def _quiet_names(fn: Callable[..., T]) -> Callable[..., T]:
    """highdicom warns about single-component person names, quoting the name: a patient's
    name must not reach stderr or a log, so that warning is silenced while it builds."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*intended person name.*")
            return fn(*args, **kwargs)

    return run


@_quiet_names
def build_seg(
    series: SeriesRecord,
    sources: Sequence[Dataset],
    label_map: Segmentation,
    segmentation_type: str = "BINARY",
) -> tuple[Dataset, dict[int, int]]:
    """A DICOM Segmentation of ``label_map`` referencing ``sources``.

    Returns the dataset and the map label value -> segment number (segments are numbered
    1..N in label order; empty labels are left out). ``FRACTIONAL`` stores each segment as a
    0/1 probability, for consumers that only read fractional SEGs.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    present = label_map.present()
    if not present:
        raise ExportError("the label map has no labelled voxel: no SEG to write")
    require_uids(sources, "DICOM SEG")
    numbers = {s.value: i + 1 for i, s in enumerate(present)}
    # mosaics and enhanced multi-frame sources: the planes do not map one to one onto the
    # stored images (tiles of one image; geometry in functional groups), so the SEG states
    # its own plane positions, orientation and pixel measures, from the volume's grid
    by_geometry = any(r.mosaic is not None or r.frames > 1 for r in series.instances)
    planes = (
        np.asarray(label_map.labels.array)
        if by_geometry
        else _frames(series, np.asarray(label_map.labels.array))
    )
    # the smallest type that holds the segment numbers: highdicom's work scales with it
    lut = np.zeros(int(planes.max()) + 1, dtype=np.uint8 if len(numbers) < 256 else np.uint16)
    for value, number in numbers.items():
        lut[value] = number
    remapped = lut[planes]
    prov = label_map.provenance
    manual = prov is None and not any(s.algorithm_name for s in present)  # no AI segment
    flagged = is_flagged(label_map.notes)  # run outside the model's domain, or implausible
    descriptions = []
    for s in present:
        category, kind = _codes(s)
        r, g, b = s.color
        kind_of = label_map.algorithm_type_of(s)  # MANUAL segments carry no algorithm
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=numbers[s.value],
                segment_label=s.name[:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=kind_of,
                algorithm_identification=None
                if kind_of == "MANUAL"
                else algorithm_identification(prov, s),
                tracking_uid=generate_uid(),
                tracking_id=f"{s.name} (label {s.value})"[:64],
                display_color=hd.color.CIELabColor.from_rgb(r, g, b),
            )
        )
    if segmentation_type.upper() == "FRACTIONAL":
        pixel_array: np.ndarray = np.stack(
            [(remapped == n).astype(np.float32) for n in range(1, len(present) + 1)], axis=-1
        )
    else:
        pixel_array = remapped
    geometry_args = _plane_geometry(label_map) if by_geometry else {}
    try:
        seg = hd.seg.Segmentation(
            source_images=[_with_shared_geometry(ds) for ds in sources],
            pixel_array=pixel_array,
            **geometry_args,
            segmentation_type=segmentation_type.upper(),
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name="MedView workstation",
            software_versions=__version__,
            device_serial_number="1",
            content_description=(
                ("AI seg outside model domain. " if flagged else "AI segmentation. ") + RESEARCH_USE
            )[:64]
            if not manual
            else "Segmentation",
            content_label="SEGMENTATION",
            series_description=("AI segmentation" if not manual else "Segmentation")
            + (" (OUTSIDE MODEL DOMAIN, research use)" if flagged else " (research use)"),
        )
    except (ValueError, TypeError, AttributeError) as e:
        raise ExportError(f"cannot build the DICOM SEG: {e}") from e
    return seg, numbers


ORIENTATION_TOL = 1e-4  # direction cosines this close are one orientation (as assembly)


def harmonise_orientation(sources: Sequence[Dataset]) -> tuple[list[Dataset], str | None]:
    """Sources whose ImageOrientationPatient differ only by rounding (a GE 3-D T1: up to
    3.3e-8 over 130 slices) as highdicom needs them, exactly equal: in-memory copies set to
    the first slice's values (the files are never written), and a note saying so. Sources
    that really differ are returned as they are."""
    import copy

    values = [ds.get("ImageOrientationPatient") for ds in sources]
    if any(v is None for v in values) or len(sources) < 2:
        return list(sources), None
    first = np.asarray(values[0], dtype=np.float64)
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    if all(np.array_equal(a, first) for a in arrays):
        return list(sources), None
    worst = max(float(np.abs(a - first).max()) for a in arrays)
    if worst > ORIENTATION_TOL:
        return list(sources), None
    out = []
    for ds, a in zip(sources, arrays, strict=True):
        if not np.array_equal(a, first):
            ds = copy.deepcopy(ds)  # headers only: a cheap copy
            ds.ImageOrientationPatient = list(values[0])
        out.append(ds)
    note = (
        f"slice orientations differ by up to {worst:.1e} (rounding): the SEG and SR use the "
        "first slice's orientation for all"
    )
    return out, note


def drop_empty_sequences(sources: Sequence[Dataset]) -> None:
    """Leave out of the in-memory source headers the root-level sequences that hold no item
    (a Philips series with an empty ProcedureCodeSequence): highdicom copies the patient and
    study attributes of the source as they are, and an empty Type 3 sequence makes the SEG and
    SR invalid. The files are never written."""
    for ds in sources:
        for elem in list(ds):
            if elem.VR == "SQ" and len(elem.value) == 0:
                del ds[elem.tag]


def _with_shared_geometry(ds: Dataset) -> Dataset:
    """An enhanced multi-frame source whose pixel measures and orientation sit in the
    per-frame groups (valid DICOM, e.g. Siemens XA) as highdicom reads it: a copy in memory
    with them in the shared group too (the source file is never written)."""
    import copy

    from pydicom.dataset import Dataset as PydicomDataset
    from pydicom.sequence import Sequence as PydicomSequence

    if "PerFrameFunctionalGroupsSequence" not in ds:
        return ds
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else PydicomDataset()
    missing = [
        kw
        for kw in ("PixelMeasuresSequence", "PlaneOrientationSequence")
        if kw not in shared and kw in ds.PerFrameFunctionalGroupsSequence[0]
    ]
    if not missing:
        return ds
    out = copy.deepcopy(ds)
    if not shared_seq:
        out.SharedFunctionalGroupsSequence = PydicomSequence([PydicomDataset()])
    target = out.SharedFunctionalGroupsSequence[0]
    for kw in missing:
        setattr(target, kw, copy.deepcopy(out.PerFrameFunctionalGroupsSequence[0][kw].value))
    return out


def _plane_geometry(label_map: Segmentation) -> dict[str, Any]:
    """highdicom's plane positions, orientation and pixel measures of the label map's grid
    (one position per plane, LPS mm)."""
    import highdicom as hd

    g = label_map.labels.geometry
    sx, sy, sz = (float(v) for v in g.spacing)
    row, col = g.direction[:, 0], g.direction[:, 1]
    return {
        "plane_positions": [
            hd.PlanePositionSequence(
                coordinate_system="PATIENT",
                image_position=[float(v) for v in g.index_to_lps(np.array([z, 0.0, 0.0]))],
            )
            for z in range(g.shape[0])
        ],
        "plane_orientation": hd.PlaneOrientationSequence(
            coordinate_system="PATIENT",
            image_orientation=[float(v) for v in (*row, *col)],
        ),
        "pixel_measures": hd.PixelMeasuresSequence(
            pixel_spacing=[sy, sx], slice_thickness=sz, spacing_between_slices=sz
        ),
    }


def _ucum(code: str, meaning: str) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(code, "UCUM", meaning)


def value_unit(volume: Volume) -> Any:
    if volume.units.upper() == "HU":
        return _ucum("[hnsf'U]", "Hounsfield unit")
    return _ucum("1", "no units")


def _planar_group(
    m: dict[str, Any], figures: dict[str, float], volume: Volume, n: int, frame_of_reference: str
) -> Any:
    import highdicom.sr as sr
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    pts = np.asarray(m["points"], dtype=np.float64)
    kind = m["kind"]
    unit = value_unit(volume)
    if kind in ("ruler", "angle", "arrow"):
        region = sr.ImageRegion3D("POLYLINE", pts, frame_of_reference)
    elif kind == "rectangle":
        region = sr.ImageRegion3D("POLYGON", rectangle_corners(m, volume), frame_of_reference)
    else:
        region = sr.ImageRegion3D("ELLIPSE", ellipse_axes(m, volume), frame_of_reference)
    items = []
    if kind == "ruler":
        items.append(
            sr.Measurement(codes.SCT.Length, figures["length_mm"], _ucum("mm", "millimeter"))
        )
    elif kind == "angle":
        items.append(sr.Measurement(codes.SCT.Angle, figures["angle_deg"], _ucum("deg", "degree")))
    elif kind in ("ellipse", "rectangle"):
        items.append(
            sr.Measurement(codes.SCT.Area, figures["area_mm2"], _ucum("mm2", "square millimeter"))
        )
        for code, key in (
            (codes.SCT.Mean, "mean"),
            (codes.SCT.StandardDeviation, "sd"),
            (codes.SCT.Minimum, "min"),
            (codes.SCT.Maximum, "max"),
        ):
            if np.isfinite(figures.get(key, np.nan)):
                items.append(sr.Measurement(code, float(figures[key]), unit))
    label = f"{kind} {n}" + (f": {m.get('text')}" if m.get("text") else "")
    return sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=sr.TrackingIdentifier(uid=generate_uid(), identifier=label[:64]),
        referenced_region=region,
        measurements=items or None,
    )


def _screen(m: dict[str, Any], volume: Volume) -> tuple[Any, np.ndarray]:
    from medview.viewer.mpr import View, plane_mapping

    mapping = plane_mapping(volume.geometry, View(m["view"]))
    zyx = volume.geometry.lps_to_index(np.asarray(m["points"], dtype=np.float64))
    return mapping, np.array([mapping.to_screen(p) for p in zyx])


def _to_lps(mapping: Any, volume: Volume, krc: np.ndarray) -> np.ndarray:
    return np.array([volume.geometry.index_to_lps(mapping.from_screen(p)) for p in krc])


def rectangle_corners(m: dict[str, Any], volume: Volume) -> np.ndarray:
    """The closed polygon (5 LPS points) of a rectangle drawn as two opposite corners."""
    mapping, pts = _screen(m, volume)
    k = pts[0, 0]
    (r0, c0), (r1, c1) = pts[0, 1:], pts[1, 1:]
    krc = np.array([[k, r0, c0], [k, r0, c1], [k, r1, c1], [k, r1, c0], [k, r0, c0]])
    return _to_lps(mapping, volume, krc)


def ellipse_axes(m: dict[str, Any], volume: Volume) -> np.ndarray:
    """The ellipse drawn in its bounding box as DICOM wants it: the two end points of the
    major axis, then those of the minor axis (4 LPS points)."""
    mapping, pts = _screen(m, volume)
    k = pts[0, 0]
    (r0, c0), (r1, c1) = pts[0, 1:], pts[1, 1:]
    rc, cc = (r0 + r1) / 2, (c0 + c1) / 2
    horiz = np.array([[k, rc, c0], [k, rc, c1]])
    vert = np.array([[k, r0, cc], [k, r1, cc]])
    sp_r, sp_c = mapping.spacing[1], mapping.spacing[2]
    if abs(c1 - c0) * sp_c >= abs(r1 - r0) * sp_r:
        krc = np.vstack([horiz, vert])
    else:
        krc = np.vstack([vert, horiz])
    return _to_lps(mapping, volume, krc)


@_quiet_names
def build_sr(
    sources: Sequence[Dataset],
    volume: Volume,
    measurements: Sequence[tuple[dict[str, Any], dict[str, float]]],
    seg: Dataset | None = None,
    segment_numbers: dict[int, int] | None = None,
    stats: Sequence[SegmentStats] = (),
    label_map: Segmentation | None = None,
) -> Dataset:
    """A Comprehensive 3D SR with a TID 1500 measurement report: one planar ROI group per
    viewer measurement (its figures as shown), one volumetric group per segment (volume in mL
    and mean/SD of the image values) referencing the SEG, evidence = the source images and
    the SEG."""
    import highdicom.sr as sr
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    groups: list[Any] = [
        # the sources' frame of reference: the de-identified one when the sources are copies
        _planar_group(m, figures, volume, i + 1, str(sources[0].FrameOfReferenceUID))
        for i, (m, figures) in enumerate(measurements)
        if m["kind"] != "arrow" or m.get("text")
    ]
    if seg is not None and segment_numbers and label_map is not None:
        by_value = {s.value: s for s in label_map.segments}
        algo = label_map.provenance
        algo_id = sr.AlgorithmIdentification(algo.name[:64], algo.version[:64]) if algo else None
        unit = value_unit(volume)
        for st in stats:
            number = segment_numbers.get(st.value)
            if number is None:
                continue
            _, kind = _codes(by_value[st.value])
            items = [sr.Measurement(codes.SCT.Volume, st.volume_ml, _ucum("ml", "milliliter"))]
            if np.isfinite(st.mean):
                items.append(sr.Measurement(codes.SCT.Mean, st.mean, unit))
                items.append(sr.Measurement(codes.SCT.StandardDeviation, st.sd, unit))
            groups.append(
                sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=sr.TrackingIdentifier(
                        uid=generate_uid(), identifier=f"segment {number}: {st.name}"[:64]
                    ),
                    referenced_segment=sr.ReferencedSegment(
                        sop_class_uid=seg.SOPClassUID,
                        sop_instance_uid=seg.SOPInstanceUID,
                        segment_number=number,
                        source_series=sr.SourceSeriesForSegmentation(sources[0].SeriesInstanceUID),
                    ),
                    finding_type=kind,
                    # a segment drawn by hand was not made by the model
                    algorithm_id=(
                        None
                        if label_map.algorithm_type_of(by_value[st.value]) == "MANUAL"
                        else algo_id
                    ),
                    measurements=items,
                )
            )
    if not groups:
        raise ExportError("no measurement and no segment to report: no SR to write")
    report = sr.MeasurementReport(
        observation_context=sr.ObservationContext(observer_device_context=device_observer()),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    evidence = list(sources) + ([seg] if seg is not None else [])
    try:
        doc = sr.Comprehensive3DSR(
            evidence=evidence,
            content=report,
            series_instance_uid=generate_uid(),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            series_description="MedView measurements (research use)",
        )
    except (ValueError, TypeError, AttributeError) as e:
        raise ExportError(f"cannot build the DICOM SR: {e}") from e
    now = _dt.datetime.now()
    doc.ContentDate = pydicom.valuerep.DA(now.strftime("%Y%m%d"))
    doc.ContentTime = pydicom.valuerep.TM(now.strftime("%H%M%S"))
    return doc
