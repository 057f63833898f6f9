"""Running a segmentation model on a `Volume`: MONAI transforms, sliding-window inference with
progress and cancel between patches, probabilities resampled back onto the source grid
(``ResampleToMatch``), so the label map has exactly the source geometry.

Out of memory: the run is retried with a batch of one window, then on the CPU, and the result
says what happened.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medview.core.errors import CancelledError, InferenceError
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest

RESEARCH_USE = "Research use only, not for diagnosis."
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class LabelStats:
    value: int
    name: str
    color: tuple[int, int, int]
    voxels: int
    volume_ml: float
    mean: float
    sd: float


@dataclass(frozen=True)
class SegmentationResult:
    """A label map on the source grid, per-label statistics and provenance."""

    labels: Volume
    stats: tuple[LabelStats, ...]
    model_id: str
    model_name: str
    model_version: str
    weights_sha256: str
    device: str
    seconds: float
    notes: tuple[str, ...] = ()
    uncertainty: Volume | None = None
    research_use: str = RESEARCH_USE
    timings: dict[str, float] = field(default_factory=dict)


def resolve_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise InferenceError("CUDA was requested but no CUDA GPU is available")
    return requested


def fallback_plan(device: str, batch: int) -> list[tuple[str, int]]:
    """Attempts in order after an out-of-memory error: smaller batch, then the CPU."""
    plan = [(device, batch), (device, 1), ("cpu", 1)]
    return list(dict.fromkeys(plan))


def window_count(shape: tuple[int, ...], roi: tuple[int, ...], overlap: float) -> int:
    """Sliding windows MONAI will run for ``shape`` (its scan-interval rule)."""
    n = 1
    for size, r in zip(shape, roi, strict=True):
        r = min(r, size) if size < r else r
        size = max(size, r)
        interval = max(int(r * (1 - overlap)), 1)
        n *= math.ceil((size - r) / interval) + 1 if size > r else 1
    return n


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def to_metatensor(volume: Volume) -> Any:
    """The volume as a channel-first MONAI MetaTensor (x, y, z) with its RAS affine."""
    import torch
    from monai.data import MetaTensor

    arr = np.ascontiguousarray(volume.array.transpose(2, 1, 0)).astype(np.float32)
    affine = LPS_TO_RAS @ volume.geometry.affine
    return MetaTensor(torch.from_numpy(arr)[None], affine=torch.as_tensor(affine))


def preprocess(image: Any, m: ModelManifest) -> Any:
    from monai.transforms import NormalizeIntensity, Orientation, ScaleIntensityRange, Spacing

    # our MetaTensors carry RAS affines: name the axis letters, do not rely on MONAI's default
    out: Any = Orientation(axcodes=m.orientation, labels=(("L", "R"), ("P", "A"), ("I", "S")))(
        image
    )
    if m.spacing:
        out = Spacing(pixdim=m.spacing, mode="bilinear")(out)
    it = m.intensity
    if it.kind == "window":
        out = ScaleIntensityRange(
            a_min=it.a_min, a_max=it.a_max, b_min=it.b_min, b_max=it.b_max, clip=it.clip
        )(out)
    elif it.kind == "normalize":
        out = NormalizeIntensity()(out)
    return out


def _forward(net: Any, batch: Any) -> Any:
    """One forward pass (a seam tests use to inject failures such as out-of-memory)."""
    return net(batch)


def segment(
    volume: Volume,
    manifest: ModelManifest,
    *,
    device: str = "auto",
    uncertainty: bool = False,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
    network: Any = None,
) -> SegmentationResult:
    """Segment ``volume``; the label map comes back on the volume's own grid."""
    import torch
    from monai.inferers import sliding_window_inference
    from monai.transforms import ResampleToMatch

    from medview.inference.loading import load_model

    if manifest.task != "segmentation":
        raise InferenceError(f"model {manifest.id} is not a segmentation model")
    if volume.is_color:
        raise InferenceError("segmentation models take grey images, not colour")
    t0 = time.perf_counter()
    net = network if network is not None else load_model(manifest)
    image = to_metatensor(volume)
    pre = preprocess(image, manifest)
    t_pre = time.perf_counter()
    roi = tuple(manifest.roi_size)
    total = window_count(tuple(pre.shape[1:]), roi, manifest.overlap)
    notes: list[str] = []
    first = resolve_device(device)
    logits = None
    used, used_batch = first, manifest.sw_batch_size
    for dev, batch in fallback_plan(first, manifest.sw_batch_size):
        done = 0

        def predictor(x: Any) -> Any:
            nonlocal done
            if cancel.cancelled:
                raise CancelledError()
            y = _forward(net, x)
            done += x.shape[0]
            progress(min(done, total), total, "inference")
            return y

        try:
            net.to(dev)
            with torch.inference_mode():
                logits = sliding_window_inference(
                    pre.as_tensor()[None].to(dev),
                    roi,
                    batch,
                    predictor,
                    overlap=manifest.overlap,
                    mode="gaussian",
                    sw_device=dev,
                    device="cpu",
                )
            used, used_batch = dev, batch
            break
        except CancelledError:
            raise
        except Exception as e:  # only out-of-memory is retried; everything else is reported
            if not _is_oom(e):
                raise InferenceError(
                    f"model {manifest.id} failed: {type(e).__name__}: {str(e)[:300]}"
                ) from e
            notes.append(f"out of memory on {dev} with a batch of {batch} window(s)")
            if dev == "cuda":
                torch.cuda.empty_cache()
    else:
        raise InferenceError(
            f"model {manifest.id} ran out of memory even on the CPU with one "
            f"window at a time; {'; '.join(notes)}"
        )
    if notes:
        notes.append(f"finished on {used} with a batch of {used_batch}")
    t_inf = time.perf_counter()
    assert logits is not None
    probs = torch.softmax(logits[0].float(), dim=0)
    from monai.data import MetaTensor

    probs = MetaTensor(probs, affine=pre.affine)
    back = ResampleToMatch(mode="bilinear")(probs, img_dst=image)
    back_np = back.detach().cpu().numpy()  # (K, x, y, z) on the source grid
    labels_xyz = back_np.argmax(axis=0).astype(np.uint8)
    labels = labels_xyz.transpose(2, 1, 0)
    unc = None
    if uncertainty:
        p = np.clip(back_np, 1e-8, 1.0)
        ent = (-(p * np.log(p)).sum(axis=0) / math.log(p.shape[0])).astype(np.float32)
        unc = Volume(
            np.ascontiguousarray(ent.transpose(2, 1, 0)),
            volume.geometry,
            volume.frame_of_reference_uid,
            volume.series_uid,
            "",
            "entropy",
        )
    stats = label_stats(volume, labels, manifest)
    t_end = time.perf_counter()
    return SegmentationResult(
        labels=Volume(
            np.ascontiguousarray(labels),
            volume.geometry,
            volume.frame_of_reference_uid,
            volume.series_uid,
            "SEG",
            f"{manifest.name} labels",
        ),
        stats=stats,
        model_id=manifest.id,
        model_name=manifest.name,
        model_version=manifest.version,
        weights_sha256=manifest.weights_sha256,
        device=used,
        seconds=t_end - t0,
        notes=tuple(notes),
        uncertainty=unc,
        timings={
            "preprocess": t_pre - t0,
            "inference": t_inf - t_pre,
            "postprocess": t_end - t_inf,
        },
    )


def label_stats(volume: Volume, labels: np.ndarray, m: ModelManifest) -> tuple[LabelStats, ...]:
    """Per label: voxel count, volume in mL and mean/SD of the image values inside."""
    voxel_ml = float(np.prod(volume.geometry.spacing)) / 1000.0
    out = []
    for lb in m.labels:
        mask = labels == lb.value
        n = int(mask.sum())
        values = volume.array[mask].astype(np.float64) if n else np.zeros(0)
        out.append(
            LabelStats(
                lb.value,
                lb.name,
                lb.color,
                n,
                n * voxel_ml,
                float(values.mean()) if n else float("nan"),
                float(values.std()) if n else float("nan"),
            )
        )
    return tuple(out)
