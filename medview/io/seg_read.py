"""Open a DICOM SEG (binary or fractional, any frame order, sparse frames, overlapping
segments) with highdicom onto its referenced series' own grid, as an editable label map.

Placement: highdicom builds the SEG's own volume (`Segmentation.get_volume`, with its affine);
when that grid is the series' grid up to whole-voxel shifts, axis flips and permutations (the
usual case: a SEG written on the series' planes, any frame order) the voxels are copied as
they are; any other grid (resampled, oblique, another frame of reference) is resampled
(nearest neighbour) with a note that says so. A SEG without patient coordinates (a 2-D image)
is placed by the source instances its frames reference.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from medview.core.colours import new_colour
from medview.core.errors import DerivedObjectError
from medview.core.records import SeriesRecord
from medview.core.results import Provenance, Segment, Segmentation, label_counts
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.io.derived import text_of as _s
from medview.io.placement import place_on_grid

log = logging.getLogger("medview")

MAX_SEGMENTS = 255  # the editable label map holds one byte per voxel
# highdicom indexes every frame's functional groups first (about 1 ms a frame here): a SEG
# beyond this is refused before, with the reason (300 slices x 100 segments is 30,000)
MAX_FRAMES = 65_536
FINDING_CATEGORY = "49755003"  # SCT: Morphologically abnormal structure


def _colour(desc: Any, used: set[tuple[int, int, int]]) -> tuple[int, int, int]:
    lab = desc.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        from highdicom.color import CIELabColor

        try:
            rgb = CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb(clip=True)
            return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        except (ValueError, TypeError):
            pass
    return new_colour(used)


def segments_of(seg: Any, numbers: Sequence[int]) -> tuple[Segment, ...]:
    """MedView segments for the SEG's segment ``numbers`` (value = segment number): names,
    colours, codes and algorithm identification as the SEG carries them."""
    by_number = {int(d.SegmentNumber): d for d in seg.SegmentSequence}
    used: set[tuple[int, int, int]] = set()
    out = []
    for n in numbers:
        d = by_number[n]
        kind = d.get("SegmentedPropertyTypeCodeSequence")
        category = d.get("SegmentedPropertyCategoryCodeSequence")
        algo = d.get("SegmentationAlgorithmIdentificationSequence")
        colour = _colour(d, used)
        used.add(colour)
        out.append(
            Segment(
                value=n,
                name=_s(d, "SegmentLabel") or f"segment {n}",
                color=colour,
                snomed_code=_s(kind[0], "CodeValue") if kind else "",
                snomed_meaning=_s(kind[0], "CodeMeaning") if kind else "",
                finding=bool(category) and _s(category[0], "CodeValue") == FINDING_CATEGORY,
                algorithm_type=_s(d, "SegmentAlgorithmType"),
                algorithm_name=(_s(algo[0], "AlgorithmName") if algo else "")
                or _s(d, "SegmentAlgorithmName"),
                algorithm_version=_s(algo[0], "AlgorithmVersion") if algo else "",
            )
        )
    return tuple(out)


def _frame_count(path: str) -> int:
    """Number of Frames, read from the head of the file only (it precedes the per-frame
    groups, which a full header parse walks: 0.66 s for a 5,000-frame SEG)."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    try:
        with open(path, "rb") as fp:
            head = read_partial(fp, stop_when=lambda tag, vr, length: tag > 0x00280008, force=True)
        return int(head.get("NumberOfFrames", 1) or 1)
    except (OSError, ValueError, TypeError, EOFError, InvalidDicomError) as e:
        raise DerivedObjectError(f"this SEG cannot be read: {e}", path=path) from e


def read_seg_file(path: str) -> Any:
    """highdicom's `Segmentation` of ``path``, or a `DerivedObjectError` saying why not."""
    import highdicom as hd

    frames = _frame_count(path)
    if frames > MAX_FRAMES:
        raise DerivedObjectError(
            f"this SEG has {frames} frames; MedView opens SEGs of at most {MAX_FRAMES}", path=path
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hd.seg.segread(path)
    except (ValueError, AttributeError, KeyError, TypeError, IndexError, OSError) as e:
        raise DerivedObjectError(f"this SEG cannot be read: {e}", path=path) from e


def _numbers(seg: Any, path: str) -> list[int]:
    numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
    if len(set(numbers)) != len(numbers):
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        raise DerivedObjectError(
            f"this SEG repeats segment number(s) {dup}: which frames belong to which "
            "segment is ambiguous, so it is not opened",
            path=path,
        )
    if len(numbers) > MAX_SEGMENTS:
        raise DerivedObjectError(
            f"this SEG has {len(numbers)} segments; MedView edits at most {MAX_SEGMENTS}",
            path=path,
        )
    if not numbers:
        raise DerivedObjectError("this SEG has no segment", path=path)
    return numbers


def _get_volume(seg: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return seg.get_volume(**kw)


def _own_volume(
    seg: Any, numbers: list[int], cancel: CancelToken, progress: Progress
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The SEG as one label map on its own grid (values = segment numbers) and that grid's
    affine ((slice, row, column) -> LPS). Overlapping segments: later numbers win, said."""
    notes: list[str] = []
    fractional = str(seg.SegmentationType) == "FRACTIONAL"
    if not fractional:
        try:  # one pass for the usual SEG (binary, no overlap): highdicom combines
            v = _get_volume(seg, combine_segments=True, relabel=False, dtype=np.uint8)
            return np.asarray(v.array), np.asarray(v.affine), notes
        except (RuntimeError, ValueError) as e:
            log.info("segments cannot be combined in one pass (%s): one by one", e)
    labels: np.ndarray | None = None
    affine = None
    overlap: dict[int, int] = {}
    for i, n in enumerate(numbers):
        cancel.raise_if_cancelled()
        progress(i, len(numbers), "reading segments")
        v = _get_volume(seg, segment_numbers=[n], dtype=np.float32)
        arr = np.asarray(v.array)
        mask = (arr[..., 0] if arr.ndim == 4 else arr) >= 0.5
        if labels is None:
            labels, affine = np.zeros(mask.shape, np.uint8), np.asarray(v.affine)
        clash = int(np.count_nonzero(labels[mask]))
        if clash:
            overlap[n] = clash
        labels[mask] = n
    assert labels is not None and affine is not None
    if fractional:
        notes.append("fractional SEG: each segment is shown where its fraction is 0.5 or more")
    for n, count in overlap.items():
        notes.append(
            f"segments overlap: {count} voxel(s) of segment {n} also belong to an earlier "
            f"segment; the label map shows segment {n} there"
        )
    return labels, affine, notes


def _by_source_instances(seg: Any, series: SeriesRecord, volume: Volume, path: str) -> np.ndarray:
    """A SEG without patient coordinates (2-D images): frames placed by the source instance
    (and frame) each one references."""
    uids = [series.instances[s.instance].sop_instance_uid for s in series.slices]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(set(uids)) == len(uids):
                arr = seg.get_pixels_by_source_instance(uids, combine_segments=True, dtype=np.uint8)
            else:  # one multi-frame source
                frames = [s.frame + 1 for s in series.slices]
                arr = seg.get_pixels_by_source_frame(
                    uids[0], frames, combine_segments=True, dtype=np.uint8
                )
    except (ValueError, KeyError, RuntimeError, AttributeError) as e:
        raise DerivedObjectError(
            f"this SEG's frames cannot be matched to the series' images: {e}", path=path
        ) from e
    if arr.shape[:3] != volume.shape:
        raise DerivedObjectError(
            f"this SEG's frames ({arr.shape[1]}x{arr.shape[2]}) do not match the series' "
            f"images ({volume.shape[1]}x{volume.shape[2]})",
            path=path,
        )
    return np.asarray(arr, dtype=np.uint8)


def read_seg(
    path: str,
    series: SeriesRecord,
    volume: Volume,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> Segmentation:
    """The SEG at ``path`` as an editable segmentation of ``volume`` (on its grid), with the
    segments' names, colours, codes and algorithms; notes say what was resampled, what
    overlapped and which referenced images are missing."""
    progress(0, 1, "reading the SEG")
    seg = read_seg_file(path)
    numbers = _numbers(seg, path)
    notes: list[str] = []
    here = {i.sop_instance_uid for i in series.instances}
    try:
        sources = [str(u[2]) for u in seg.get_source_image_uids()]
    except (AttributeError, KeyError, ValueError):
        sources = []
    missing = [u for u in dict.fromkeys(sources) if u not in here]
    if missing:
        notes.append(
            f"the SEG references {len(missing)} image(s) not in this series: "
            + ", ".join(missing[:5])
            + (" ..." if len(missing) > 5 else "")
        )
    if str(getattr(seg, "coordinate_system", "") or "").endswith("PATIENT"):
        cancel.raise_if_cancelled()
        own, affine, more = _own_volume(seg, numbers, cancel, progress)
        notes.extend(more)
        same_frame = _s(seg, "FrameOfReferenceUID") == volume.frame_of_reference_uid
        labels, placed = place_on_grid(own, affine, volume.geometry, cancel=cancel)
        notes.extend(placed)
        if not same_frame and volume.frame_of_reference_uid:
            notes.append(
                "the SEG's frame of reference is not the series': it was placed by patient "
                "coordinates as if they were shared; check the alignment"
            )
    else:
        labels = _by_source_instances(seg, series, volume, path)
    segments = segments_of(seg, numbers)
    algos = sorted({s.algorithm_name for s in segments if s.algorithm_name})
    creator = " ".join(x for x in (_s(seg, "Manufacturer"), _s(seg, "ManufacturerModelName")) if x)
    provenance = Provenance(
        model_id="dicom-seg",
        name=("; ".join(algos) or creator or "DICOM SEG")[:64],
        version=_s(seg, "SoftwareVersions")[:64],
        date=_s(seg, "ContentDate"),
    )
    label_volume = Volume(labels, volume.geometry, volume.frame_of_reference_uid)
    present = set(np.flatnonzero(label_counts(labels)).tolist()) - {0}  # plane by plane: cheap
    empty = [n for n in numbers if n not in present]
    if empty:
        notes.append(f"segment(s) {empty} have no voxel on this series")
    progress(1, 1, "reading the SEG")
    # no statistics here: the segment editor counts what it takes, and `segment_stats`
    # gives them to whoever needs them without one (opening is read + place, nothing more)
    return Segmentation(label_volume, segments, (), provenance, tuple(notes))
