"""DICOM RT Structure Set from a label map, on the source series' own planes.

Each present segment becomes an ROI; on every slice its outline is traced with
scikit-image's marching squares at level 0.5 (`skimage.measure.find_contours`): the contour
runs between the pixel centres inside and outside, so filling it again by pixel centres with
the even-odd rule gives back the same pixels (holes are contours of their own). Collinear
points are merged (`approximate_polygon` with tolerance 0: no pixel moves). Written with
pydicom; highdicom has no RTSTRUCT, and rt-utils (last released 2023) needs OpenCV.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from medview import __version__
from medview.core.errors import ExportError
from medview.core.records import RTSTRUCT_CLASS, SeriesRecord
from medview.core.results import Segmentation
from medview.core.tasks import NEVER_CANCELLED, CancelToken
from medview.export.dicom_common import MANUFACTURER, PATIENT_STUDY
from medview.export.dicom_objects import require_uids, source_order

RTSTRUCT_SERIES_NUMBER = 902


def _signed_area(c: np.ndarray) -> float:
    r, col = c[:, 0], c[:, 1]
    return 0.5 * float(np.dot(r, np.roll(col, -1)) - np.dot(col, np.roll(r, -1)))


def _inside(point: np.ndarray, poly: np.ndarray) -> bool:
    r0, c0 = poly[:, 0], poly[:, 1]
    r1, c1 = np.roll(r0, -1), np.roll(c0, -1)
    crosses = (r0 > point[0]) != (r1 > point[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = c0 + (point[0] - r0) * (c1 - c0) / (r1 - r0)
    return bool(np.count_nonzero(crosses & (x > point[1])) % 2)


def _keyhole(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``hole`` joined into ``outer`` by a cut of zero width between their closest points:
    one polygon, read the same by readers that fill each contour on its own and by those
    that combine contours by the even-odd rule."""
    from scipy.spatial import cKDTree

    # nearest outline point of every hole point (a distance matrix of a body outline and
    # its holes took 15 of 26 s for the demo CT's four segments)
    dist, nearest = cKDTree(outer).query(hole)
    j = int(np.argmin(dist))
    i = int(nearest[j])
    ring = np.roll(hole, -j, axis=0)
    return np.concatenate([outer[: i + 1], ring, ring[:1], outer[i:]])


def slice_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of a 2-D mask as ``(n, 2)`` (row, column) index points (pixel centres
    at whole numbers), without repeating the first point. Each hole is joined to the outline
    around it by a keyhole cut (as treatment planning systems write holes): plastimatch, for
    one, fills every contour of a slice on its own, which would fill holes written apart."""
    from skimage.measure import approximate_polygon, find_contours

    outers: list[np.ndarray] = []
    holes: list[np.ndarray] = []
    for c in find_contours(np.pad(mask, 1).astype(np.uint8), 0.5, positive_orientation="high"):
        c = approximate_polygon(c - 1.0, tolerance=0)
        if len(c) > 1 and np.allclose(c[0], c[-1]):
            c = c[:-1]
        if len(c) < 3:
            continue
        (outers if _signed_area(c) > 0 else holes).append(c)
    if not holes:
        return outers
    areas = [abs(_signed_area(o)) for o in outers]
    for h in holes:  # into the smallest outline around it
        around = [
            k for k, o in enumerate(outers) if _inside(h.mean(axis=0), o) and _inside(h[0], o)
        ]
        if not around:
            outers.append(h)  # cannot happen for a mask's outlines; kept, never dropped
            areas.append(abs(_signed_area(h)))
            continue
        k = min(around, key=lambda k: areas[k])
        outers[k] = _keyhole(outers[k], h)
    return outers


CONTOUR_DATA = 0x30060050


def _ds_values(values: np.ndarray) -> RawDataElement:
    """Contour Data as its encoded text (implicit VR little endian, the file's syntax),
    written as it is: one pydicom DS object per number took 8 of 26 s for the demo CT."""
    text = "\\".join(f"{v:.4f}" for v in values).encode("ascii")
    if len(text) % 2:
        text += b" "
    return RawDataElement(Tag(CONTOUR_DATA), None, len(text), text, 0, True, True)


def _item(**values: Any) -> Dataset:
    ds = Dataset()
    for k, v in values.items():
        setattr(ds, k, v)
    return ds


def build_rtstruct(
    series: SeriesRecord,
    sources: Sequence[Dataset],
    label_map: Segmentation,
    *,
    label: str = "MedView",
    cancel: CancelToken = NEVER_CANCELLED,
) -> Dataset:
    """An RT Structure Set of ``label_map`` (on the series' grid) referencing ``sources``
    (`read_sources` order: possibly de-identified copies). One ROI per present segment, its
    number the label value."""
    present = label_map.present()
    if not present:
        raise ExportError("the label map has no labelled voxel: no RT structure set to write")
    require_uids(sources, "RT structure set")
    order = source_order(series)
    by_instance = dict(zip(order, sources, strict=True))
    first = sources[0]
    frame_of_reference = str(first.get("FrameOfReferenceUID", ""))
    if not frame_of_reference:
        raise ExportError("the series has no frame of reference: no RT structure set to write")
    labels = np.asarray(label_map.labels.array)
    geometry = label_map.labels.geometry
    slice_refs = []
    for z in range(labels.shape[0]):
        src = by_instance[series.slices[z].instance]
        ref = _item(
            ReferencedSOPClassUID=src.SOPClassUID, ReferencedSOPInstanceUID=src.SOPInstanceUID
        )
        if int(src.get("NumberOfFrames", 1) or 1) > 1:
            ref.ReferencedFrameNumber = series.slices[z].frame + 1
        slice_refs.append(ref)

    now = _dt.datetime.now()
    ds = Dataset()
    for name in PATIENT_STUDY:
        setattr(ds, name, first.get(name, ""))
    ds.SpecificCharacterSet = first.get("SpecificCharacterSet", "ISO_IR 192")
    ds.SOPClassUID = RTSTRUCT_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = RTSTRUCT_SERIES_NUMBER
    ds.SeriesDescription = "Structure set (MedView)"
    ds.InstanceNumber = 1
    ds.OperatorsName = ""
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "MedView workstation"
    ds.SoftwareVersions = __version__
    ds.InstanceCreationDate = ds.StructureSetDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.StructureSetTime = ds.SeriesTime = now.strftime("%H%M%S")
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    ds.StructureSetLabel = label[:16]
    ds.ApprovalStatus = "UNAPPROVED"
    ds.ReferencedFrameOfReferenceSequence = DicomSequence(
        [
            _item(
                FrameOfReferenceUID=frame_of_reference,
                RTReferencedStudySequence=DicomSequence(
                    [
                        _item(
                            ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",  # Detached Study
                            ReferencedSOPInstanceUID=first.StudyInstanceUID,
                            RTReferencedSeriesSequence=DicomSequence(
                                [
                                    _item(
                                        SeriesInstanceUID=first.SeriesInstanceUID,
                                        ContourImageSequence=DicomSequence(
                                            list(
                                                {
                                                    r.ReferencedSOPInstanceUID
                                                    + str(r.get("ReferencedFrameNumber", "")): r
                                                    for r in slice_refs
                                                }.values()
                                            )
                                        ),
                                    )
                                ]
                            ),
                        )
                    ]
                ),
            )
        ]
    )
    rois, contours, observations = [], [], []
    algorithm = "MANUAL" if label_map.provenance is None else "AUTOMATIC"
    for i, s in enumerate(present):
        cancel.raise_if_cancelled()
        kind = label_map.algorithm_type_of(s)
        rois.append(
            _item(
                ROINumber=s.value,
                ReferencedFrameOfReferenceUID=frame_of_reference,
                ROIName=s.name[:64],
                ROIGenerationAlgorithm=kind
                if kind in ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")
                else algorithm,
            )
        )
        items = []
        planes = np.flatnonzero((labels == s.value).any(axis=(1, 2)))
        for z in map(int, planes):
            for c in slice_contours(labels[z] == s.value):
                zyx = np.column_stack([np.full(len(c), float(z)), c])
                lps = geometry.index_to_lps(zyx)
                item = _item(
                    ContourImageSequence=DicomSequence([slice_refs[z]]),
                    ContourGeometricType="CLOSED_PLANAR",
                    NumberOfContourPoints=len(lps),
                )
                item[CONTOUR_DATA] = _ds_values(lps.ravel())
                items.append(item)
        contours.append(
            _item(
                ROIDisplayColor=list(s.color),
                ReferencedROINumber=s.value,
                ContourSequence=DicomSequence(items),
            )
        )
        observations.append(
            _item(
                ObservationNumber=i + 1,
                ReferencedROINumber=s.value,
                RTROIInterpretedType="GTV" if s.finding else "ORGAN",
                ROIInterpreter="",
                ROIObservationLabel=s.name[:16],
            )
        )
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    # implicit VR: a long outline's Contour Data exceeds explicit DS's 64 KiB length field
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta = meta
    return ds
