"""The typed results: statistics computed once from a label map (voxels, mL, mean, SD, min,
max, against a plain numpy reference), and a kept segmentation written before results were
typed (provenance at the top level, colours in the statistics) still reads."""

from __future__ import annotations

import math

import numpy as np

from medview.core.geometry import Geometry
from medview.core.results import Provenance, Segment, segment_stats, segmentation_of
from medview.core.volume import Volume


def _volume() -> Volume:
    rng = np.random.default_rng(7)
    values = rng.integers(-1000, 2000, size=(6, 20, 24)).astype(np.int16)
    return Volume(values, Geometry((6, 20, 24), (0, 0, 0), (0.5, 0.8, 2.0)), modality="CT")


def test_statistics_match_numpy_and_skip_absent_segments() -> None:
    vol = _volume()
    labels = np.zeros(vol.shape, np.uint8)
    labels[1:3, 2:9, 3:12] = 1
    labels[4, 10:18, 5:20] = 4
    segments = (Segment(1, "one"), Segment(2, "absent"), Segment(4, "four"))
    stats = segment_stats(vol, labels, segments)
    assert [s.value for s in stats] == [1, 4]
    for s in stats:
        inside = vol.array[labels == s.value].astype(np.float64)
        assert s.voxels == inside.size
        assert math.isclose(s.volume_ml, inside.size * 0.5 * 0.8 * 2.0 / 1000)
        assert math.isclose(s.mean, inside.mean()) and math.isclose(s.sd, inside.std())
        assert (s.min, s.max) == (inside.min(), inside.max())
    seg = segmentation_of(vol, Volume(labels, vol.geometry), segments)
    assert seg.algorithm_type == "MANUAL" and seg.stats == stats
    assert [s.value for s in seg.present()] == [1, 4]
    ai = segmentation_of(vol, Volume(labels, vol.geometry), segments, Provenance("m", "M", "1"))
    assert ai.algorithm_type == "AUTOMATIC"


def test_a_kept_record_from_before_typed_results_still_reads() -> None:
    from medview.inference.kept import segmentation_from_record

    vol = _volume()
    labels = np.zeros(vol.shape, np.uint8)
    labels[2, 3:6, 3:6] = 1
    old = {
        "model_id": "chest-ct-segmentation",
        "model_name": "Chest CT",
        "model_version": "1.0",
        "weights_sha256": "ab" * 32,
        "device": "cpu",
        "seconds": 2.5,
        "date": "2026-11-30T10:00:00",
        "research_use": "Research use only, not for diagnosis.",
        "notes": [],
        "timings": {"inference": 2.0},
        "stats": [
            {
                "value": 1,
                "name": "lung",
                "color": [80, 160, 255],
                "voxels": 9,
                "volume_ml": 0.0072,
                "mean": 12.0,
                "sd": None,
            },
        ],
        "description": "labels",
    }
    seg = segmentation_from_record(old, {"labels": labels}, vol)
    assert seg is not None and seg.provenance is not None
    assert seg.provenance.name == "Chest CT" and seg.provenance.timings == (("inference", 2.0),)
    assert seg.segments[0].color == (80, 160, 255)
    assert seg.stats[0].voxels == 9 and math.isnan(seg.stats[0].sd)
