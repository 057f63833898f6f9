"""What an export is made of: plain records built from the viewer's and the AI engine's
results (never from widgets), so the headless command and the window export the same bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from medview.core.volume import Volume


@dataclass(frozen=True)
class SegmentInfo:
    """One label of a label map: its value in the map, name, display colour and, where the
    model manifest gives it, the SNOMED CT code of what it segments."""

    value: int
    name: str
    color: tuple[int, int, int] = (255, 0, 0)
    snomed_code: str = ""
    snomed_meaning: str = ""
    finding: bool = False  # a finding (lesion), not anatomy: it gets an automatic key image


@dataclass(frozen=True)
class AlgorithmInfo:
    """Provenance of an AI result, as the report and the DICOM objects state it."""

    model_id: str
    name: str
    version: str
    weights_sha256: str = ""
    device: str = ""
    seconds: float = 0.0
    date: str = ""  # ISO 8601, when the result was made

    def as_rows(self) -> list[tuple[str, str]]:
        return [
            ("Model", f"{self.name} ({self.model_id})"),
            ("Version", self.version),
            ("Weights SHA-256", self.weights_sha256 or "-"),
            ("Device", self.device or "-"),
            ("Run time", f"{self.seconds:.1f} s" if self.seconds else "-"),
            ("Date", self.date or "-"),
        ]


@dataclass(frozen=True)
class SegmentStats:
    value: int
    name: str
    voxels: int
    volume_ml: float
    mean: float
    sd: float


@dataclass(frozen=True)
class LabelMap:
    """A label map on the source volume's grid, its segments and where it came from
    (``algorithm`` is None for a label map of unknown or manual origin)."""

    labels: Volume
    segments: tuple[SegmentInfo, ...]
    algorithm: AlgorithmInfo | None = None
    notes: tuple[str, ...] = ()

    @cached_property
    def counts(self) -> np.ndarray:
        """Voxels per label value (index = value). Slice by slice: np.unique sorts the whole
        map and one bincount converts it to int64 first; this is 5x faster on 16 M voxels."""
        arr = np.asarray(self.labels.array)
        total = np.zeros(1, dtype=np.int64)
        for plane in arr.reshape(arr.shape[0], -1):
            c = np.bincount(plane)
            if len(c) > len(total):
                c[: len(total)] += total
                total = c
            else:
                total[: len(c)] += c
        return total

    def present(self) -> tuple[SegmentInfo, ...]:
        """The segments with at least one voxel, in label order."""
        counts = self.counts
        return tuple(
            s
            for s in sorted(self.segments, key=lambda s: s.value)
            if 0 < s.value < len(counts) and counts[s.value]
        )


@dataclass(frozen=True)
class Classification:
    probabilities: dict[str, float]
    target_class: str
    aggregation: str
    algorithm: AlgorithmInfo
    heatmap: Volume | None = None
    notes: tuple[str, ...] = ()  # e.g. run outside the model's domain


@dataclass(frozen=True)
class KeyImage:
    """A slice the user marked for the report: ``view`` is "axial", "coronal", "sagittal"
    or "native"; ``index`` the slice number in that view."""

    view: str
    index: int
    caption: str = ""


@dataclass(frozen=True)
class ExportOptions:
    deidentify: bool = False
    zip: bool = False
    segmentation_type: str = "BINARY"  # or "FRACTIONAL"
    window: tuple[float, float] | None = None  # (center, width) for key images
    validate: bool = True  # run dciodvfy on every DICOM object when it is installed


@dataclass
class ExportContent:
    """Everything one report bundle shows. ``measurements`` are `Measurement` dicts (the study
    database's format); ``risk`` is ``StudyDatabase.risk_results(study_uid)``."""

    label_map: LabelMap | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    risk: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_images: list[KeyImage] = field(default_factory=list)


def segment_stats(volume: Volume, label_map: LabelMap) -> list[SegmentStats]:
    """Voxels, mL and mean/SD of the image values per present segment (one pass with
    ``np.bincount``; float64 sums)."""
    labels = np.asarray(label_map.labels.array).ravel()
    n = int(labels.max()) + 1 if labels.size else 1
    values = np.asarray(volume.array, dtype=np.float64).ravel() if not volume.is_color else None
    counts = label_map.counts  # cached: `present` below uses the same counts
    voxel_ml = float(np.prod(volume.geometry.spacing)) / 1000.0
    out = []
    if values is not None:
        sums = np.bincount(labels, weights=values, minlength=n)
        squares = np.bincount(labels, weights=values * values, minlength=n)
    for s in label_map.present():
        c = int(counts[s.value])
        mean = sd = float("nan")
        if values is not None and c:
            mean = float(sums[s.value] / c)
            sd = float(np.sqrt(max(squares[s.value] / c - mean * mean, 0.0)))
        out.append(SegmentStats(s.value, s.name, c, c * voxel_ml, mean, sd))
    return out
