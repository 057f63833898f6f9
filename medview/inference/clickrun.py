"""Running a click model: checks (modality, 2-D, edge, air), the network held in memory
between clicks, and the result with its measures (and malignancy) for the session, the window
and the CLI.

A click must land in well under a second, so the network runs in the calling thread (a
worker thread in the window), not in the model worker process: loading the network took
60-90 ms and one forward pass 10-20 ms on 2 cores; the loaded network is kept (one per
package and device).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from medview.core.errors import InferenceError
from medview.core.results import RESEARCH_USE, Provenance
from medview.core.volume import Volume
from medview.inference.click import (
    ClickSegment,
    NoduleMeasures,
    Prompt,
    click_problem,
    measure,
    segment_at,
)
from medview.inference.manifest import ModelManifest

_NETS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def network(manifest: ModelManifest, device: str) -> Any:
    """The package's network on ``device``, loaded once."""
    from medview.inference.loading import load_model

    key = (manifest.id, manifest.weights_sha256, device)
    with _LOCK:
        net = _NETS.get(key)
        if net is None:
            net = load_model(manifest).to(device)
            _NETS[key] = net
    return net


@dataclass(frozen=True)
class ClickResult:
    """A click model's answer: the nodule (mask on a block of the series' grid), its measures,
    and for a malignancy model the probability, its 95 % interval and the Grad-CAM map."""

    manifest: ModelManifest
    segment: ClickSegment
    measures: NoduleMeasures
    provenance: Provenance
    positives: tuple[tuple[float, float, float], ...]
    negatives: tuple[tuple[float, float, float], ...]
    malignancy: Any = None  # medview.inference.nodule.Malignancy
    segmenter: ModelManifest | None = None
    notes: tuple[str, ...] = ()  # e.g. slices thicker than the model was trained on
    research_use: str = RESEARCH_USE


def _provenance(m: ModelManifest, device: str, seconds: float) -> Provenance:
    return Provenance(
        m.id,
        m.name,
        m.version,
        m.weights_sha256,
        device,
        seconds,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _points(points: Sequence[Sequence[float]]) -> tuple[tuple[float, float, float], ...]:
    return tuple((float(p[0]), float(p[1]), float(p[2])) for p in points)


def run_click(
    manifest: ModelManifest,
    volume: Volume,
    positives: Sequence[Sequence[float]],
    negatives: Sequence[Sequence[float]] = (),
    *,
    device: str = "auto",
    segmenter: ModelManifest | None = None,
) -> ClickResult:
    """Segment (and for a classifier, classify) the nodule at the clicks (LPS mm); an
    `InferenceError` says why there is none."""
    from medview.inference.runner import resolve_device

    if not manifest.takes_click:
        raise InferenceError(f"{manifest.name} does not take a click")
    if not positives:
        raise InferenceError("click on the nodule first")
    problem = click_problem(volume, positives[0], manifest)
    if problem:
        raise InferenceError(problem)
    # the reader pointed at the nodule: a series outside the model's domain (e.g. 5 mm slices)
    # is segmented all the same, and the result says so wherever it goes
    from medview.inference.domain import SeriesFacts, input_problems, outside_note

    problems = input_problems(volume, manifest, SeriesFacts())
    notes = (outside_note(problems),) if problems else ()
    t0 = time.perf_counter()
    dev = resolve_device(device)
    prompt = Prompt.of(manifest)
    if manifest.task == "click-segmentation":
        seg_manifest = manifest
    else:
        if segmenter is None:
            from medview.inference.registry import find_model

            segmenter = find_model(prompt.segmenter)
        seg_manifest = segmenter
    seg = segment_at(
        network(seg_manifest, dev), volume, positives, negatives, Prompt.of(seg_manifest), dev
    )
    if seg.voxels == 0:
        raise InferenceError(
            "no nodule was found at the click; click on the nodule's centre "
            "(a nodule touching the chest wall may need a second click)"
        )
    malignancy = None
    if manifest.task == "click-classification":
        from medview.inference.nodule import classify_segment

        malignancy = classify_segment(network(manifest, dev), manifest, volume, seg, dev)
    return ClickResult(
        manifest,
        seg,
        malignancy.measures if malignancy is not None else measure(volume, seg),
        _provenance(manifest, dev, time.perf_counter() - t0),
        _points(positives),
        _points(negatives),
        malignancy,
        seg_manifest if seg_manifest is not manifest else None,
        notes,
    )


def classify_nodule(
    manifest: ModelManifest, volume: Volume, seg: ClickSegment, *, device: str = "auto"
) -> Any:
    """A nodule segment's malignancy as a `Classification` on ``volume``'s grid (the Grad-CAM
    map inside the nodule's box), for the window's AI results."""
    import numpy as np

    from medview.core.results import Classification
    from medview.inference.nodule import classify_segment
    from medview.inference.runner import resolve_device

    t0 = time.perf_counter()
    dev = resolve_device(device)
    mal = classify_segment(network(manifest, dev), manifest, volume, seg, dev)
    heat = np.zeros(volume.shape, dtype=np.float32)
    heat[mal.heatmap_block] = mal.heatmap
    g = volume.geometry
    m = mal.measures
    lo, hi = mal.interval
    return Classification(
        probabilities={"malignant": mal.probability},
        target_class="malignant",
        aggregation=(
            f"one nodule, {m.long_axis_mm:.1f} x {m.short_axis_mm:.1f} mm, "
            f"{m.volume_ml * 1000:.0f} mm³, mean {m.mean_hu:.0f} HU"
        ),
        provenance=_provenance(manifest, dev, time.perf_counter() - t0),
        heatmap=Volume(heat, g, frame_of_reference_uid=volume.frame_of_reference_uid),
        finding="malignant (radiologists' consensus)",
        finding_probability=mal.probability,
        heatmap_note=manifest.heatmap_note,
        heatmap_threshold=manifest.heatmap_threshold,
        series_note=f"95 % interval {lo:.0%}-{hi:.0%}; calibrated on LIDC-IDRI out-of-fold",
        interval=(lo, hi),
    )


def summary(result: ClickResult) -> dict[str, Any]:
    """What the CLI writes into summary.json (and the window shows) about a click result."""
    m = result.measures
    out: dict[str, Any] = {
        "clicks": {
            "positive": [list(p) for p in result.positives],
            "negative": [list(p) for p in result.negatives],
        },
        "nodule": {
            "voxels": result.segment.voxels,
            "volume_ml": round(m.volume_ml, 4),
            "long_axis_mm": round(m.long_axis_mm, 2),
            "short_axis_mm": round(m.short_axis_mm, 2),
            "slice_index": m.slice_index,
            "mean_hu": round(m.mean_hu, 1),
            "centre_lps": [round(v, 2) for v in m.centre_lps],
        },
    }
    mal = result.malignancy
    if mal is not None:
        out.update(
            malignant=round(mal.probability, 4),
            malignant_interval_95=[round(mal.interval[0], 4), round(mal.interval[1], 4)],
            label_definition=(
                "malignant by radiologists' consensus: at least 2 of the 4 LIDC-IDRI "
                "radiologists rated malignancy above 3 of 5 (not pathology)"
            ),
            gradcam_peak_lps=[round(v, 2) for v in mal.peak_lps],
            segmentation_model=result.segmenter.id if result.segmenter else "",
        )
    return out
