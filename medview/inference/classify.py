"""Classification with Grad-CAM heat maps on the source grid.

2-D models (``dimensions: 2``) classify every slice of the series (axial planes as stored);
the series probability of each finding class is the **maximum over slices** of that class's
probability (and of the background class the minimum), which suits "does this series contain
X" questions (a lesion visible on any slice). 3-D models see the whole volume resized to
their input size. Grad-CAM (``monai.visualize.GradCAM``) runs for the series' most probable
non-background class at the manifest's ``gradcam_layer``, is resized back onto the source grid
and masked to the patient's body.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from medview.core.errors import CancelledError, InferenceError
from medview.core.results import Classification
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest
from medview.inference.runner import provenance, resolve_device

AGGREGATION = "maximum over slices"


def _intensity(x: Any, m: ModelManifest) -> Any:
    import torch

    it = m.intensity
    if it.kind == "window":
        x = (x - it.a_min) / max(it.a_max - it.a_min, 1e-6) * (it.b_max - it.b_min) + it.b_min
        return x.clamp(min(it.b_min, it.b_max), max(it.b_min, it.b_max)) if it.clip else x
    if it.kind == "percentiles":
        flat = x.reshape(-1).float()
        sample = flat[:: max(1, flat.numel() // 1_000_000)]  # torch.quantile caps its input
        lo, hi = (
            float(v) for v in torch.quantile(sample, torch.tensor([it.a_min, it.a_max]) / 100)
        )
        x = (x - lo) / max(hi - lo, 1e-6) * (it.b_max - it.b_min) + it.b_min
        return x.clamp(min(it.b_min, it.b_max), max(it.b_min, it.b_max)) if it.clip else x
    if it.kind == "normalize":
        return (x - x.mean()) / x.std().clamp_min(1e-6)
    return x


def classify(
    volume: Volume,
    manifest: ModelManifest,
    *,
    device: str = "auto",
    heatmap: bool = True,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
    network: Any = None,
) -> Classification:
    import torch
    import torch.nn.functional as F

    from medview.inference.loading import load_model

    if manifest.task != "classification":
        raise InferenceError(f"model {manifest.id} is not a classification model")
    t0 = time.perf_counter()
    dev = resolve_device(device)
    net = (network if network is not None else load_model(manifest)).to(dev).eval()
    classes = list(manifest.classes) or [str(i) for i in range(2)]
    vol = torch.from_numpy(np.asarray(volume.array, dtype=np.float32))
    size = tuple(manifest.roi_size)
    if manifest.dimensions == 2:
        slices = vol.shape[0]
        probs = []
        batch = max(1, manifest.sw_batch_size)
        for start in range(0, slices, batch):
            if cancel.cancelled:
                raise CancelledError()
            x = _intensity(vol[start : start + batch, None], manifest)
            x = F.interpolate(x, size=size[:2], mode="bilinear", align_corners=False)
            with torch.inference_mode():
                probs.append(torch.softmax(net(x.to(dev)).float(), dim=1).cpu())
            progress(min(start + batch, slices), slices, "classifying slices")
        per_slice = torch.cat(probs).numpy()
        series = per_slice.max(axis=0)
        # background for the series: the least background any slice has (1 - the finding's
        # maximum for two classes), not its maximum ("no lesion 0.993" beside "lesion 1.000")
        series[0] = per_slice[:, 0].min()
    else:
        x = _intensity(vol[None, None], manifest)
        x = F.interpolate(x, size=size[:3], mode="trilinear", align_corners=False)
        with torch.inference_mode():
            series = torch.softmax(net(x.to(dev)).float(), dim=1).cpu().numpy()[0]
        per_slice = None
        progress(1, 1, "classifying")
    target = int(np.argmax(series[1:]) + 1) if len(series) > 1 else 0
    heat = (
        _gradcam(net, vol, manifest, target, dev, cancel)
        if heatmap and manifest.gradcam_layer
        else None
    )
    if heat is not None:  # evidence outside the patient (air, table) is never shown
        heat *= body_mask(volume)
    heat_volume = (
        None
        if heat is None
        else Volume(
            heat,
            volume.geometry,
            volume.frame_of_reference_uid,
            volume.series_uid,
            "",
            f"Grad-CAM {classes[target] if target < len(classes) else target}",
            units="",
        )
    )
    return Classification(
        probabilities={
            classes[i] if i < len(classes) else str(i): float(p) for i, p in enumerate(series)
        },
        per_slice=per_slice,
        heatmap=heat_volume,
        target_class=classes[target] if target < len(classes) else str(target),
        aggregation=AGGREGATION if manifest.dimensions == 2 else "whole volume",
        provenance=provenance(manifest, dev, time.perf_counter() - t0),
        finding=classes[target] if target < len(classes) else str(target),
        finding_probability=float(series[target]),
        heatmap_note=manifest.heatmap_note,
        heatmap_threshold=manifest.heatmap_threshold,
        series_note=manifest.series_note,
    )


def body_mask(volume: Volume) -> np.ndarray:
    """The patient's body, slice by slice (z, y, x) bool: CT above -500 HU (else Otsu's
    threshold), the largest 3-D component, holes (lungs, bowel gas) filled in every slice."""
    import SimpleITK as sitk

    arr = np.asarray(volume.array)
    if volume.modality == "CT":
        mask = arr > -500
    else:
        sample = arr[:: max(1, arr.shape[0] // 16)].astype(np.float32)
        otsu = sitk.OtsuThresholdImageFilter()
        otsu.Execute(sitk.GetImageFromArray(sample))
        mask = arr > otsu.GetThreshold()
    if not mask.any():
        return np.ones(arr.shape, dtype=bool)
    comps = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.view(np.uint8)), True)
    relabelled = sitk.RelabelComponent(comps, sortByObjectSize=True)
    body = sitk.GetArrayFromImage(relabelled) == 1  # a copy: nothing outlives its image
    out = np.empty_like(body)
    for z in range(body.shape[0]):
        plane = sitk.BinaryFillhole(sitk.GetImageFromArray(body[z].view(np.uint8)))
        out[z] = sitk.GetArrayFromImage(plane).astype(bool)
    return out


def _identity(x: Any) -> Any:
    return x


def _gradcam(
    net: Any, vol: Any, m: ModelManifest, target: int, dev: str, cancel: CancelToken
) -> np.ndarray:
    """Grad-CAM for ``target`` on the source grid (z, y, x), scaled 0..1."""
    import torch
    import torch.nn.functional as F
    from monai.visualize import GradCAM

    try:
        # identity post-processing: MONAI's default normaliser maps (min, max) to (1, 0), which
        # flips the map (the lesion became the coldest spot); the map is scaled below instead
        cam = GradCAM(nn_module=net, target_layers=m.gradcam_layer, postprocessing=_identity)
    except Exception as e:  # a wrong layer name in a manifest is reported, not fatal
        raise InferenceError(f"Grad-CAM layer {m.gradcam_layer!r}: {e}") from e
    size = tuple(m.roi_size)
    if m.dimensions == 2:
        out = np.zeros(tuple(vol.shape), dtype=np.float32)
        for z in range(vol.shape[0]):
            if cancel.cancelled:
                raise CancelledError()
            x = F.interpolate(
                _intensity(vol[z][None, None], m),
                size=size[:2],
                mode="bilinear",
                align_corners=False,
            ).to(dev)
            with torch.enable_grad():
                c = cam(x=x.requires_grad_(True), class_idx=target)
            back = F.interpolate(
                c.detach().float().cpu(),
                size=tuple(vol.shape[1:]),
                mode="bilinear",
                align_corners=False,
            )
            out[z] = back[0, 0].numpy()
    else:
        x = F.interpolate(
            _intensity(vol[None, None], m), size=size[:3], mode="trilinear", align_corners=False
        ).to(dev)
        with torch.enable_grad():
            c = cam(x=x.requires_grad_(True), class_idx=target)
        out = F.interpolate(
            c.detach().float().cpu(), size=tuple(vol.shape), mode="trilinear", align_corners=False
        )[0, 0].numpy()
    lo, hi = float(out.min()), float(out.max())
    return ((out - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros_like(out)
