"""Malignancy of a clicked lung nodule: the nodule is segmented from the click
(`medview.inference.click`), a small 3-D CNN reads the box around it (image and mask), and a
logistic calibrator on the network's logit and the nodule's measured size gives the
probability of "malignant by radiologists' consensus". The 95 % interval is the 2.5-97.5
percentile range of the calibrator's bootstrap members (fitted on out-of-fold predictions,
like the risk panel's models). Grad-CAM at the manifest's layer shows where the network looked,
inside the box.

The calibrator is data in the manifest (``calibration``: feature names, intercept,
coefficients, members), applied here; nothing is evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.errors import InferenceError
from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.inference.click import (
    ClickSegment,
    NoduleMeasures,
    Prompt,
    box_geometry,
    ct_window,
    measure,
    sample,
    segment_at,
    to_source,
)
from medview.inference.manifest import ModelManifest

FEATURES = {
    "logit": lambda logit, m: logit,
    "log_long_axis_mm": lambda logit, m: math.log(max(m.long_axis_mm, 0.5)),
    "log_volume_ml": lambda logit, m: math.log(max(m.volume_ml, 1e-3)),
}


def classifier_input(
    volume: Volume, seg: ClickSegment, box: Geometry, prompt: Prompt
) -> np.ndarray:
    """(2, z, y, x): the HU window scaled 0..1 and the nodule mask, on the box."""
    return np.stack(
        [ct_window(volume, box, prompt), mask_on_box(volume.geometry, seg, box)]
    ).astype(np.float32)


def mask_on_box(source: Geometry, seg: ClickSegment, box: Geometry) -> np.ndarray:
    """The segment's mask sampled on the box (0/1)."""
    start = np.array([s.start for s in seg.block], dtype=np.float64)
    origin = source.index_to_lps(start)
    block_geometry = Geometry(seg.mask.shape, origin, source.spacing, source.direction)
    return (sample(seg.mask.astype(np.float32), block_geometry, box, 1, 0.0) > 0.5).astype(
        np.float32
    )


@dataclass(frozen=True)
class Calibration:
    features: tuple[str, ...]
    intercept: float
    coef: tuple[float, ...]
    members: np.ndarray  # (n, 1 + len(features)): intercept, coefficients

    @classmethod
    def of(cls, manifest: ModelManifest) -> Calibration:
        c = manifest.calibration
        if not c:
            raise InferenceError(f"model {manifest.id} has no calibration")
        feats = tuple(str(f) for f in c["features"])
        unknown = [f for f in feats if f not in FEATURES]
        if unknown:
            raise InferenceError(f"model {manifest.id}: unknown calibration features {unknown}")
        members = np.asarray(c.get("members", []), dtype=np.float64).reshape(-1, 1 + len(feats))
        return cls(feats, float(c["intercept"]), tuple(float(v) for v in c["coef"]), members)

    def __call__(self, logit: float, m: NoduleMeasures) -> tuple[float, float, float]:
        x = np.array([FEATURES[f](logit, m) for f in self.features], dtype=np.float64)
        p = 1 / (1 + math.exp(-(self.intercept + float(np.dot(self.coef, x)))))
        if len(self.members) == 0:
            return p, p, p
        z = self.members[:, 0] + self.members[:, 1:] @ x
        ps = 1 / (1 + np.exp(-z))
        return p, float(np.percentile(ps, 2.5)), float(np.percentile(ps, 97.5))


@dataclass(frozen=True)
class Malignancy:
    probability: float
    interval: tuple[float, float]
    logit: float
    measures: NoduleMeasures
    segment: ClickSegment
    heatmap_block: tuple[slice, slice, slice]
    heatmap: np.ndarray  # 0..1 on the source block
    peak_lps: tuple[float, float, float]


def _gradcam(net: Any, x: Any, layer: str) -> np.ndarray:
    """Grad-CAM of the malignant logit on the box (0..1)."""
    import torch
    import torch.nn.functional as F
    from monai.visualize import GradCAM

    cam = GradCAM(nn_module=net, target_layers=layer, postprocessing=lambda v: v)
    with torch.enable_grad():
        c = cam(x=x.clone().requires_grad_(True), class_idx=0)
    out = F.interpolate(c.detach().float().cpu(), size=tuple(x.shape[2:]), mode="trilinear")[
        0, 0
    ].numpy()
    lo, hi = float(out.min()), float(out.max())
    return ((out - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros_like(out)


def score(
    net: Any, manifest: ModelManifest, volume: Volume, seg: ClickSegment, device: str = "cpu"
) -> tuple[float, NoduleMeasures, np.ndarray, Geometry]:
    """The network's logit, the nodule's measures, the Grad-CAM map and the box it is on."""
    import torch

    if seg.voxels == 0:
        raise InferenceError("no nodule was found at the click")
    prompt = Prompt.of(manifest)
    measures = measure(volume, seg)
    box = box_geometry(measures.centre_lps, prompt)
    x = torch.from_numpy(classifier_input(volume, seg, box, prompt)[None]).to(device)
    with torch.inference_mode():
        logit = float(net(x)[0, 0])
    cam = (
        _gradcam(net, x, manifest.gradcam_layer)
        if manifest.gradcam_layer
        else np.zeros(box.shape, np.float32)
    )
    return logit, measures, cam, box


def classify_segment(
    net: Any, manifest: ModelManifest, volume: Volume, seg: ClickSegment, device: str = "cpu"
) -> Malignancy:
    """The calibrated malignancy of an already segmented nodule."""
    logit, measures, cam, box = score(net, manifest, volume, seg, device)
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    block, heat = to_source(cam, box, volume.geometry)
    p, lo, hi = Calibration.of(manifest)(logit, measures)
    return Malignancy(
        p,
        (lo, hi),
        logit,
        measures,
        seg,
        block,
        heat,
        tuple(float(v) for v in box.index_to_lps(np.asarray(peak, dtype=np.float64))),  # type: ignore[arg-type]
    )


def malignancy_at(
    seg_net: Any,
    seg_prompt: Prompt,
    net: Any,
    manifest: ModelManifest,
    volume: Volume,
    positives: Sequence[Sequence[float]],
    negatives: Sequence[Sequence[float]] = (),
    device: str = "cpu",
) -> Malignancy:
    """Segment the nodule at the clicks, then classify it."""
    seg = segment_at(seg_net, volume, positives, negatives, seg_prompt, device)
    return classify_segment(net, manifest, volume, seg, device)
