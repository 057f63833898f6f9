"""The ``summary.json`` of one model run on one series: what ``medview run-model`` writes
beside its label map and what ``medview batch`` writes per series, so the two agree figure for
figure. ``medview export`` reads it back to describe a label map's segments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medview.core.atomic import atomic_path
from medview.core.records import SeriesRecord
from medview.core.results import Classification, Segmentation
from medview.core.volume import Volume


def provenance_summary(result: Segmentation | Classification) -> dict[str, Any]:
    """What every AI summary records: the notice, the model and where and how long it ran."""
    prov = result.provenance
    assert prov is not None  # the engine always fills it
    return {
        "research_use": result.research_use,
        "model": {
            "id": prov.model_id,
            "name": prov.name,
            "version": prov.version,
            "weights_sha256": prov.weights_sha256,
        },
        "device": prov.device,
        "seconds": round(prov.seconds, 3),
        "date": prov.date,
    }


def segmentation_summary(
    result: Segmentation, series: SeriesRecord, volume: Volume
) -> dict[str, Any]:
    prov = result.provenance
    assert prov is not None
    described = {seg.value: seg for seg in result.segments}
    return {
        **provenance_summary(result),
        "timings": {k: round(v, 3) for k, v in prov.timings},
        "notes": list(result.notes),
        "series_uid": series.series_uid,
        "series_key": series.key,
        "volume": series.volume_label,  # the volume of a 4-D series the model ran on
        "shape": list(volume.shape),
        "spacing": [float(v) for v in volume.geometry.spacing],
        "labels": [
            {
                "value": s.value,
                "name": s.name,
                "color": list(described[s.value].color),
                "snomed_code": described[s.value].snomed_code,
                "snomed_meaning": described[s.value].snomed_meaning,
                "finding": described[s.value].finding,
                "voxels": s.voxels,
                "volume_ml": round(s.volume_ml, 3),
                "mean": s.mean,
                "sd": s.sd,
            }
            for s in result.stats
        ],
    }


def classification_summary(result: Classification, series: SeriesRecord) -> dict[str, Any]:
    return {
        **provenance_summary(result),
        "series_uid": series.series_uid,
        "series_key": series.key,
        "volume": series.volume_label,
        "finding": result.finding,
        "finding_probability": result.finding_probability,
        "probabilities": result.probabilities,
        "aggregation": result.aggregation,
        "series_note": result.series_note,
        "heatmap_note": result.heatmap_note,
        "notes": list(result.notes),
        "heatmap_class": result.target_class,
        "per_slice": result.per_slice.round(5).tolist() if result.per_slice is not None else None,
    }


def write_summary(out: Path, summary: dict[str, Any], name: str = "summary.json") -> None:
    with atomic_path(out / name, ".json") as tmp, open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
