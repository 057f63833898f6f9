"""A label map from a NIfTI file (another tool's output, e.g. TotalSegmentator's) opened
onto a DICOM series' grid, whatever axis order and flips the file was written with
(`medview.io.placement`): resampled, with a note, only when the grids truly differ."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from medview.core.colours import new_colour
from medview.core.errors import DerivedObjectError
from medview.core.results import Provenance, Segment, Segmentation, label_counts, segmentation_of
from medview.core.tasks import NEVER_CANCELLED, CancelToken
from medview.core.volume import Volume
from medview.io.placement import place_on_grid

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
MAX_LABEL = 255  # the editable label map holds one byte per voxel


def label_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Label value -> name from a two-column CSV or TSV (value, name; a header row is
    skipped), as segmentation tools ship their class maps."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    out = {}
    for row in csv.reader(text.splitlines(), dialect):
        if len(row) >= 2 and row[0].strip().isdigit():
            out[int(row[0])] = row[1].strip()
    return out


def read_labelmap(
    path: str | os.PathLike[str],
    volume: Volume,
    names: dict[int, str] | None = None,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
) -> Segmentation:
    """The NIfTI label map at ``path`` on ``volume``'s grid, one segment per present label
    (named from ``names`` when given)."""
    import nibabel as nib

    p = os.fspath(path)
    try:
        img: Any = nib.load(p)
        data = np.asanyarray(img.dataobj)
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as e:
        raise DerivedObjectError(f"this label map cannot be read: {e}", path=p) from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DerivedObjectError(f"a label map has 3 dimensions; this one has {data.ndim}", path=p)
    if data.dtype.kind == "f" and not np.all(np.mod(data, 1) == 0):
        raise DerivedObjectError("this label map holds non-integer values", path=p)
    if data.min() < 0 or data.max() > MAX_LABEL:
        raise DerivedObjectError(
            f"this label map's values run from {data.min()} to {data.max()}; MedView edits "
            f"labels 0 to {MAX_LABEL}",
            path=p,
        )
    affine = RAS_TO_LPS @ np.asarray(img.affine, dtype=np.float64)
    labels, notes = place_on_grid(data.astype(np.uint8), affine, volume.geometry, cancel=cancel)
    used: set[tuple[int, int, int]] = set()
    segments = []
    placed = set(np.flatnonzero(label_counts(labels)).tolist())
    for v in sorted(placed):
        if v == 0:
            continue
        colour = new_colour(used)
        used.add(colour)
        segments.append(Segment(int(v), (names or {}).get(int(v), f"label {v}"), colour))
    given = set(np.flatnonzero(label_counts(data.astype(np.uint8))).tolist())
    missing = sorted(given - placed - {0})
    if missing:
        notes.append(f"label(s) {missing} have no voxel on this series' grid")
    provenance = Provenance("nifti-labels", os.path.basename(p)[:64], "")
    return segmentation_of(
        volume,
        Volume(labels, volume.geometry, volume.frame_of_reference_uid),
        tuple(segments),
        provenance,
        tuple(notes),
    )
