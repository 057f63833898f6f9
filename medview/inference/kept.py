"""AI results kept with their series: a result as a JSON description plus its images (label
map, entropy, heat map), and back onto the series' own grid after a restart.

Images are stored as arrays only; their geometry is always the source series' (every result is
made on the source grid), so a kept result whose shape no longer matches the series is
refused rather than shown on the wrong grid. Records written before results were typed in
`medview.core.results` (provenance at the top level, colours in the statistics) still read.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from medview.core.results import Classification, Provenance, Segment, Segmentation, SegmentStats
from medview.core.volume import Volume

SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"

# the provenance fields of records written before `Provenance` (old name -> new name)
_OLD_PROVENANCE = {
    "model_id": "model_id",
    "model_name": "name",
    "model_version": "version",
    "weights_sha256": "weights_sha256",
    "device": "device",
    "seconds": "seconds",
}


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _number(x: Any) -> float:
    return float("nan") if x is None else float(x)


def result_record(result: object, date: str) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """What is kept of a segmentation or classification: (kind, description, images)."""
    if isinstance(result, Segmentation):
        return SEGMENTATION, *segmentation_record(result, date)
    assert isinstance(result, Classification)
    return CLASSIFICATION, *classification_record(result, date)


def kept_results(
    kept: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]], volume: Volume
) -> list[tuple[str, Segmentation | Classification | None, str]]:
    """The kept results of a series (as `StudyDatabase.ai_results` gives them) on
    ``volume``'s grid: (kind, result or None when it no longer fits, date), the segmentation
    first."""
    readers = {
        SEGMENTATION: segmentation_from_record,
        CLASSIFICATION: classification_from_record,
    }
    out: list[tuple[str, Segmentation | Classification | None, str]] = []
    for kind, read in readers.items():
        if kind in kept:
            data, arrays = kept[kind]
            out.append((kind, read(data, arrays, volume), str(data.get("date", ""))))
    return out


def _provenance_record(p: Provenance, date: str) -> dict[str, Any]:
    d = asdict(p)
    d["date"] = p.date or date
    d["timings"] = [[k, v] for k, v in p.timings]
    return d


def _provenance(data: dict[str, Any]) -> Provenance | None:
    """The provenance kept with a result (None: a segmentation drawn by hand)."""
    if "provenance" in data:
        d = dict(data["provenance"])
        d["timings"] = tuple((str(k), float(v)) for k, v in d.get("timings", ()))
        return Provenance(**d)
    if "model_id" not in data:
        return None
    old = {new: data[name] for name, new in _OLD_PROVENANCE.items()}
    timings = tuple((str(k), float(v)) for k, v in dict(data.get("timings", {})).items())
    return Provenance(**old, date=str(data.get("date", "")), timings=timings)


def segmentation_record(
    result: Segmentation, date: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    data: dict[str, Any] = {
        "date": date,
        "research_use": result.research_use,
        "notes": list(result.notes),
        "segments": [asdict(s) for s in result.segments],
        "stats": [
            {k: (_finite(v) if isinstance(v, float) else v) for k, v in asdict(s).items()}
            for s in result.stats
        ],
        "description": result.labels.description,
    }
    if result.provenance is not None:
        data["provenance"] = _provenance_record(result.provenance, date)
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


def _color(c: Any) -> tuple[int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]))


def segmentation_from_record(
    data: dict[str, Any], arrays: dict[str, np.ndarray], volume: Volume
) -> Segmentation | None:
    """The kept segmentation on ``volume``'s grid, or None when it no longer fits."""
    labels = _on(volume, arrays["labels"], "SEG", str(data.get("description", "")))
    if labels is None:
        return None
    unc = None
    if "uncertainty" in arrays:
        unc = _on(volume, arrays["uncertainty"], "", "entropy")
    stats = tuple(
        SegmentStats(
            int(s["value"]),
            str(s["name"]),
            int(s["voxels"]),
            float(s["volume_ml"]),
            _number(s.get("mean")),
            _number(s.get("sd")),
            _number(s.get("min")),
            _number(s.get("max")),
        )
        for s in data["stats"]
    )
    if "segments" in data:
        segments = tuple(
            Segment(
                int(s["value"]),
                str(s["name"]),
                _color(s["color"]),
                str(s.get("snomed_code", "")),
                str(s.get("snomed_meaning", "")),
                bool(s.get("finding", False)),
                str(s.get("algorithm_type", "")),
                str(s.get("algorithm_name", "")),
                str(s.get("algorithm_version", "")),
            )
            for s in data["segments"]
        )
    else:  # an older record: names and colours were kept with the statistics
        segments = tuple(
            Segment(int(s["value"]), str(s["name"]), _color(s["color"])) for s in data["stats"]
        )
    return Segmentation(
        labels=labels,
        segments=segments,
        stats=stats,
        provenance=_provenance(data),
        notes=tuple(data.get("notes", ())),
        uncertainty=unc,
        research_use=str(data["research_use"]),
    )


def classification_record(
    result: Classification, date: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    data: dict[str, Any] = {
        "date": date,
        "provenance": _provenance_record(result.provenance, date),
        "research_use": result.research_use,
        "probabilities": dict(result.probabilities),
        "target_class": result.target_class,
        "aggregation": result.aggregation,
        "finding": result.finding,
        "finding_probability": result.finding_probability,
        "heatmap_note": result.heatmap_note,
        "heatmap_threshold": result.heatmap_threshold,
        "series_note": result.series_note,
        "notes": list(result.notes),
        "interval": list(result.interval) if result.interval is not None else None,
    }
    arrays: dict[str, np.ndarray] = {}
    if result.per_slice is not None:
        arrays["per_slice"] = result.per_slice
    if result.heatmap is not None:
        arrays["heatmap"] = result.heatmap.array
    return data, arrays


def classification_from_record(
    data: dict[str, Any], arrays: dict[str, np.ndarray], volume: Volume
) -> Classification | None:
    heatmap = None
    if "heatmap" in arrays:
        heatmap = _on(volume, arrays["heatmap"], "", "Grad-CAM")
        if heatmap is None:
            return None
    prov = _provenance(data)
    if prov is None:  # every classification is a model's
        return None
    return Classification(
        probabilities={str(k): float(v) for k, v in data["probabilities"].items()},
        per_slice=arrays.get("per_slice"),
        heatmap=heatmap,
        target_class=str(data["target_class"]),
        aggregation=str(data["aggregation"]),
        provenance=prov,
        finding=str(data.get("finding", data["target_class"])),
        finding_probability=float(data.get("finding_probability", 0.0)),
        heatmap_note=str(data.get("heatmap_note", "")),
        heatmap_threshold=float(data.get("heatmap_threshold", 0.5)),
        series_note=str(data.get("series_note", "")),
        notes=tuple(data.get("notes", ())),
        research_use=str(data["research_use"]),
        interval=(
            (float(data["interval"][0]), float(data["interval"][1]))
            if data.get("interval")
            else None
        ),
    )
