"""AI results kept with their series: a result as a JSON description plus its images (label
map, entropy, heat map), and back onto the series' own grid after a restart.

Images are stored as arrays only; their geometry is always the source series' (every result is
made on the source grid), so a kept result whose shape no longer matches the series is
refused rather than shown on the wrong grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from medview.core.volume import Volume
from medview.inference.classify import ClassificationResult
from medview.inference.runner import LabelStats, SegmentationResult

SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"

_PROVENANCE = ("model_id", "model_name", "model_version", "weights_sha256", "device", "seconds")


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def result_record(result: object, date: str) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """What is kept of a segmentation or classification: (kind, description, images)."""
    if isinstance(result, SegmentationResult):
        return SEGMENTATION, *segmentation_record(result, date)
    assert isinstance(result, ClassificationResult)
    return CLASSIFICATION, *classification_record(result, date)


def kept_results(
    kept: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]], volume: Volume
) -> list[tuple[str, SegmentationResult | ClassificationResult | None, str]]:
    """The kept results of a series (as `StudyDatabase.ai_results` gives them) on
    ``volume``'s grid: (kind, result or None when it no longer fits, date), the segmentation
    first."""
    readers = {
        SEGMENTATION: segmentation_from_record,
        CLASSIFICATION: classification_from_record,
    }
    out: list[tuple[str, SegmentationResult | ClassificationResult | None, str]] = []
    for kind, read in readers.items():
        if kind in kept:
            data, arrays = kept[kind]
            out.append((kind, read(data, arrays, volume), str(data.get("date", ""))))
    return out


def segmentation_record(
    result: SegmentationResult, date: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    data: dict[str, Any] = {p: getattr(result, p) for p in _PROVENANCE}
    data.update(
        date=date,
        research_use=result.research_use,
        notes=list(result.notes),
        timings=dict(result.timings),
        stats=[{**asdict(s), "mean": _finite(s.mean), "sd": _finite(s.sd)} for s in result.stats],
        description=result.labels.description,
    )
    arrays = {"labels": result.labels.array}
    if result.uncertainty is not None:
        arrays["uncertainty"] = result.uncertainty.array
    return data, arrays


def _on(volume: Volume, array: np.ndarray, modality: str, description: str) -> Volume | None:
    if array.shape != volume.shape:
        return None
    return Volume(
        array,
        volume.geometry,
        volume.frame_of_reference_uid,
        volume.series_uid,
        modality,
        description,
    )


def segmentation_from_record(
    data: dict[str, Any], arrays: dict[str, np.ndarray], volume: Volume
) -> SegmentationResult | None:
    """The kept segmentation on ``volume``'s grid, or None when it no longer fits."""
    labels = _on(volume, arrays["labels"], "SEG", str(data.get("description", "")))
    if labels is None:
        return None
    unc = None
    if "uncertainty" in arrays:
        unc = _on(volume, arrays["uncertainty"], "", "entropy")
    stats = tuple(
        LabelStats(
            int(s["value"]),
            str(s["name"]),
            (int(s["color"][0]), int(s["color"][1]), int(s["color"][2])),
            int(s["voxels"]),
            float(s["volume_ml"]),
            float("nan") if s["mean"] is None else float(s["mean"]),
            float("nan") if s["sd"] is None else float(s["sd"]),
        )
        for s in data["stats"]
    )
    return SegmentationResult(
        labels=labels,
        stats=stats,
        notes=tuple(data.get("notes", ())),
        uncertainty=unc,
        research_use=str(data["research_use"]),
        timings=dict(data.get("timings", {})),
        **{p: data[p] for p in _PROVENANCE},
    )


def classification_record(
    result: ClassificationResult, date: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    data: dict[str, Any] = {p: getattr(result, p) for p in _PROVENANCE}
    data.update(
        date=date,
        research_use=result.research_use,
        probabilities=dict(result.probabilities),
        target_class=result.target_class,
        aggregation=result.aggregation,
        finding=result.finding,
        finding_probability=result.finding_probability,
        heatmap_note=result.heatmap_note,
        heatmap_threshold=result.heatmap_threshold,
        series_note=result.series_note,
        notes=list(result.notes),
    )
    arrays: dict[str, np.ndarray] = {}
    if result.per_slice is not None:
        arrays["per_slice"] = result.per_slice
    if result.heatmap is not None:
        arrays["heatmap"] = result.heatmap.array
    return data, arrays


def classification_from_record(
    data: dict[str, Any], arrays: dict[str, np.ndarray], volume: Volume
) -> ClassificationResult | None:
    heatmap = None
    if "heatmap" in arrays:
        heatmap = _on(volume, arrays["heatmap"], "", "Grad-CAM")
        if heatmap is None:
            return None
    return ClassificationResult(
        probabilities={str(k): float(v) for k, v in data["probabilities"].items()},
        per_slice=arrays.get("per_slice"),
        heatmap=heatmap,
        target_class=str(data["target_class"]),
        aggregation=str(data["aggregation"]),
        finding=str(data.get("finding", data["target_class"])),
        finding_probability=float(data.get("finding_probability", 0.0)),
        heatmap_note=str(data.get("heatmap_note", "")),
        heatmap_threshold=float(data.get("heatmap_threshold", 0.5)),
        series_note=str(data.get("series_note", "")),
        notes=tuple(data.get("notes", ())),
        research_use=str(data["research_use"]),
        **{p: data[p] for p in _PROVENANCE},
    )
