"""What a reading produces, typed once: a segmentation (label map, segments, statistics,
provenance) and a classification. The engine fills them from the model's manifest; the
viewer, the kept-results store, the CLI and export read them as they are: nothing translates
them again, and statistics are computed once.

A segment's ``value`` is its value in the label map; a DICOM SEG numbers the segments it
writes 1, 2, ... itself (only those present).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from medview.core.notices import RESEARCH_USE
from medview.core.volume import Volume


@dataclass(frozen=True)
class Provenance:
    """Where an AI result came from, as the window, the report and the DICOM objects say."""

    model_id: str
    name: str
    version: str
    weights_sha256: str = ""
    device: str = ""
    seconds: float = 0.0
    date: str = ""  # ISO 8601, when the result was made
    timings: tuple[tuple[str, float], ...] = ()  # (stage, seconds)

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
class Segment:
    """One label of a label map: its value in the map, name, display colour and, where the
    model gives it, the SNOMED CT code of what it segments."""

    value: int
    name: str
    color: tuple[int, int, int] = (255, 0, 0)
    snomed_code: str = ""
    snomed_meaning: str = ""
    finding: bool = False  # a finding (lesion), not anatomy: it gets an automatic key image
    # DICOM's Segment Algorithm Type of this segment ("" = the segmentation's: AUTOMATIC for
    # a model's result, MANUAL for one drawn); SEMIAUTOMATIC: a model's segment edited by hand
    algorithm_type: str = ""
    # the model that made this segment when it is not the segmentation's (a click model's
    # nodule in a drawn or another model's segmentation): "name" and "version"
    algorithm_name: str = ""
    algorithm_version: str = ""


@dataclass(frozen=True)
class SegmentStats:
    """A present segment's voxels, volume and image values inside it (NaN for colour)."""

    value: int
    name: str
    voxels: int
    volume_ml: float
    mean: float
    sd: float
    min: float = float("nan")
    max: float = float("nan")


@dataclass(frozen=True)
class Segmentation:
    """A label map on its source volume's grid with its segments, their statistics and, for
    an AI result, its provenance (None: drawn by hand or of unknown origin)."""

    labels: Volume
    segments: tuple[Segment, ...]
    stats: tuple[SegmentStats, ...] = ()
    provenance: Provenance | None = None
    notes: tuple[str, ...] = ()  # e.g. run outside the model's domain, implausible volume
    uncertainty: Volume | None = None  # voxel entropy, on the same grid
    research_use: str = RESEARCH_USE

    @property
    def algorithm_type(self) -> str:
        """DICOM's Segment Algorithm Type of an untouched segment."""
        return "MANUAL" if self.provenance is None else "AUTOMATIC"

    def algorithm_type_of(self, segment: Segment) -> str:
        """The Segment Algorithm Type of ``segment`` (its own, when it was edited or drawn)."""
        return segment.algorithm_type or self.algorithm_type

    def segment(self, value: int) -> Segment | None:
        return next((s for s in self.segments if s.value == value), None)

    @cached_property
    def counts(self) -> np.ndarray:
        """Voxels per label value (index = value). Slice by slice: np.unique sorts the whole
        map and one bincount converts it to int64 first; this is 5x faster on 16 M voxels."""
        return label_counts(np.asarray(self.labels.array))

    def present(self) -> tuple[Segment, ...]:
        """The segments with at least one voxel, in label order."""
        counts = self.counts
        return tuple(
            s
            for s in sorted(self.segments, key=lambda s: s.value)
            if 0 < s.value < len(counts) and counts[s.value]
        )


@dataclass(frozen=True)
class Classification:
    """A series-level classification: probabilities per class, the finding the series figure
    and the heat map are about, and the per-slice figures of 2-D models."""

    probabilities: dict[str, float]
    target_class: str
    aggregation: str
    provenance: Provenance
    heatmap: Volume | None = None  # Grad-CAM, 0..1, on the source grid
    per_slice: np.ndarray | None = None  # (slices, classes) for 2-D models
    finding: str = ""
    finding_probability: float = 0.0
    heatmap_note: str = ""  # how far the heat map can be trusted (from the manifest)
    heatmap_threshold: float = 0.5  # heat drawn by default above this (from the manifest)
    series_note: str = ""  # how the series figure is aggregated and calibrated
    notes: tuple[str, ...] = ()
    research_use: str = RESEARCH_USE
    interval: tuple[float, float] | None = None  # 95 % interval of finding_probability


def label_counts(labels: np.ndarray) -> np.ndarray:
    total = np.zeros(1, dtype=np.int64)
    for plane in labels.reshape(labels.shape[0], -1):
        c = np.bincount(plane)
        if len(c) > len(total):
            c[: len(total)] += total
            total = c
        else:
            total[: len(c)] += c
    return total


def _label_extremes(
    flat: np.ndarray, values: np.ndarray
) -> tuple[dict[int, float], dict[int, float]]:
    """Min and max of ``values`` per label of ``flat`` (the labelled voxels), grouped by one
    stable sort (a radix sort for small integers). A mask per segment is a pass over the
    whole volume each: 10 s for 100 segments of a 300x512x512 CT."""
    if not len(flat):
        return {}, {}
    order = np.argsort(flat, kind="stable")
    groups, ordered = flat[order], values[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    keys = groups[starts].tolist()
    lows = np.minimum.reduceat(ordered, starts).tolist()
    highs = np.maximum.reduceat(ordered, starts).tolist()
    return dict(zip(keys, lows, strict=True)), dict(zip(keys, highs, strict=True))


def segment_stats(
    volume: Volume, labels: np.ndarray, segments: tuple[Segment, ...]
) -> tuple[SegmentStats, ...]:
    """Voxels, mL, mean, SD, min and max of the image values per present segment (numpy,
    float64 sums). The engine computes its own results' statistics on its faster path; this
    is for label maps from elsewhere (a file, a hand-drawn map)."""
    flat = np.asarray(labels).ravel()
    # everything from the labelled voxels alone: a sparse map costs little beyond one scan
    labelled = np.flatnonzero(flat)
    lab = flat[labelled]
    counts = np.bincount(lab, minlength=1)
    n = len(counts)
    values = None if volume.is_color else np.asarray(volume.array).ravel()
    voxel_ml = float(np.prod(volume.geometry.spacing)) / 1000.0
    if values is not None:
        inside = values[labelled].astype(np.float64)
        sums = np.bincount(lab, weights=inside, minlength=n)
        squares = np.bincount(lab, weights=inside * inside, minlength=n)
        lows, highs = _label_extremes(lab, inside)
    out = []
    for s in sorted(segments, key=lambda s: s.value):
        if not (0 < s.value < n and counts[s.value]):
            continue
        c = int(counts[s.value])
        mean = sd = lo = hi = float("nan")
        if values is not None:
            mean = float(sums[s.value] / c)
            sd = float(np.sqrt(max(squares[s.value] / c - mean * mean, 0.0)))
            lo, hi = float(lows[s.value]), float(highs[s.value])
        out.append(SegmentStats(s.value, s.name, c, c * voxel_ml, mean, sd, lo, hi))
    return tuple(out)


def segmentation_of(
    volume: Volume,
    labels: Volume,
    segments: tuple[Segment, ...],
    provenance: Provenance | None = None,
    notes: tuple[str, ...] = (),
) -> Segmentation:
    """A segmentation of ``volume`` from a label map on its grid, its statistics computed."""
    stats = segment_stats(volume, np.asarray(labels.array), segments)
    return Segmentation(labels, segments, stats, provenance, notes)
