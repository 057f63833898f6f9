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
from medview.core.notices import RESEARCH_USE
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest

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
    """The volume as a channel-first MONAI MetaTensor (x, y, z) with its RAS affine.

    A strided view of the stored array, not a float copy: the first transform that resamples
    converts it (a 300 x 512 x 512 copy cost 2 s).
    """
    import torch
    from monai.data import MetaTensor

    view = volume.array.transpose(2, 1, 0)
    if not view.flags.writeable:  # torch wants a writeable buffer; the copy keeps the dtype
        view = np.array(view, copy=True)
    affine = LPS_TO_RAS @ volume.geometry.affine
    return MetaTensor(torch.from_numpy(view)[None], affine=torch.as_tensor(affine))


RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


def spatial_plan(image: Any, m: ModelManifest) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The model grid (affine, shape) that MONAI's Orientation and Spacing would produce,
    planned lazily (nothing is resampled)."""
    from monai.transforms import Orientation, Spacing

    # our MetaTensors carry RAS affines: name the axis letters, do not rely on MONAI's default
    lazy: Any = Orientation(axcodes=m.orientation, labels=RAS_LABELS, lazy=True)(image)
    if m.spacing:
        lazy = Spacing(pixdim=m.spacing, mode="bilinear", lazy=True)(lazy)
    affine = np.asarray(lazy.peek_pending_affine(), dtype=np.float64)
    shape = tuple(int(v) for v in lazy.peek_pending_shape())
    return affine, (shape[0], shape[1], shape[2])


def preprocess(image: Any, m: ModelManifest) -> Any:
    """Orientation, spacing and intensity as the manifest says.

    The grid comes from MONAI's transforms (planned lazily); for axis-aligned grids the image
    is resampled onto it by separable interpolation, else by MONAI itself. Measured reason:
    Orientation + Spacing took 1.7 s for a 300 x 512 x 512 CT.
    """
    import torch
    from monai.data import MetaTensor
    from monai.transforms import NormalizeIntensity, Orientation, ScaleIntensityRange, Spacing

    affine, shape = spatial_plan(image, m)
    source_affine = np.asarray(image.affine, dtype=np.float64)
    out: Any
    if _axis_map(source_affine, affine) is not None:
        data = resample_grid(image.as_tensor(), source_affine, affine, shape)
        out = MetaTensor(data, affine=torch.as_tensor(affine))
    else:
        out = Orientation(axcodes=m.orientation, labels=RAS_LABELS)(image)
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
    # probabilities sum to one and interpolation is linear: resample K-1 channels, derive one
    rest = resample_grid(probs[1:], pre.affine, image.affine, tuple(image.shape[1:]))
    if rest.shape[0] == 1:  # two classes: p1 > p0 exactly when p1 > 0.5
        best = (rest[0] > 0.5).to(torch.uint8)
    else:
        best = channel_argmax(rest, 1.0 - rest.sum(dim=0))
    labels = np.ascontiguousarray(best.numpy().transpose(2, 1, 0))  # (z, y, x)
    unc = None
    if uncertainty:
        ent = _entropy(1.0 - rest.sum(dim=0), rest)
        unc = Volume(
            np.ascontiguousarray(ent.numpy().transpose(2, 1, 0)),
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
    """Per label: voxel count, volume in mL and mean/SD of the image values inside.

    Masked reductions accumulate in float64 without gathering copies (weighted bincounts over
    the 78 M voxels of a 300 x 512 x 512 CT took 5 s)."""
    voxel_ml = float(np.prod(volume.geometry.spacing)) / 1000.0
    flat = labels.reshape(-1)
    counts = np.bincount(flat, minlength=256)
    values = volume.array.reshape(-1)
    squares: np.ndarray | None = None
    out = []
    for lb in m.labels:
        n = int(counts[lb.value]) if lb.value < counts.size else 0
        if not n:
            out.append(LabelStats(lb.value, lb.name, lb.color, 0, 0.0, float("nan"), float("nan")))
            continue
        mask = flat == lb.value
        total = float(values.sum(where=mask, dtype=np.float64))
        if squares is None:
            squares = np.square(values, dtype=np.float32)
        total_sq = float(squares.sum(where=mask, dtype=np.float64))
        mean = total / n
        sd = float(np.sqrt(max(total_sq / n - mean * mean, 0.0)))
        out.append(LabelStats(lb.value, lb.name, lb.color, n, n * voxel_ml, mean, sd))
    return tuple(out)


def channel_argmax(rest: Any, first: Any) -> Any:
    """Per voxel, the index of the largest of (first, rest[0], rest[1], ...) as uint8, by a
    running maximum (torch's argmax over the first dimension of a 2 x 78 M tensor took 6 s
    here; this takes a fraction of a second)."""
    import torch

    best = first.clone()
    labels = torch.zeros(first.shape, dtype=torch.uint8)
    for k in range(rest.shape[0]):
        better = rest[k] > best
        labels[better] = k + 1
        best = torch.maximum(best, rest[k])
    return labels


def _entropy(first: Any, rest: Any) -> Any:
    """Normalised softmax entropy (0..1) from the first channel and the others."""
    import torch

    k = rest.shape[0] + 1
    total = torch.zeros_like(first)
    for p in (first, *rest):
        q = p.clamp_min(1e-8)
        total -= q * q.log()
    return total / math.log(k)


def _axis_map(
    model_affine: np.ndarray, source_affine: np.ndarray
) -> list[tuple[int, float, float]] | None:
    """When model index = scale * (permuted source index) + offset per axis, the list of
    (source axis, scale, offset) for each model axis; else None (an oblique relation)."""
    m = np.linalg.inv(model_affine) @ source_affine
    lin = m[:3, :3]
    out = []
    for a in range(3):
        b = int(np.argmax(np.abs(lin[a])))
        others = np.delete(lin[a], b)
        if np.abs(others).max() > 1e-6 * max(abs(lin[a, b]), 1.0):
            return None
        out.append((b, float(lin[a, b]), float(m[a, 3])))
    if sorted(b for b, _, _ in out) != [0, 1, 2]:
        return None
    return out


CHUNK_ELEMENTS = 1 << 24  # 16 M values (64 MB of float32) per slab of a large resample


def _lerp_axis(x: Any, dim: int, positions: np.ndarray) -> Any:
    """Linear interpolation of ``x`` along ``dim`` at fractional ``positions`` (clamped to the
    border, as grid sampling with border padding does); float32 result."""
    import torch

    out_elements = x.numel() // x.shape[dim] * len(positions)
    other = next((d for d in range(x.dim() - 1, 0, -1) if d != dim), None)
    if out_elements <= CHUNK_ELEMENTS or other is None or x.shape[other] < 2:
        return _lerp_whole(x, dim, positions)
    # large outputs in slabs along another spatial axis: the gathered temporaries stay small
    shape = list(x.shape)
    shape[dim] = len(positions)
    out = torch.empty(shape, dtype=torch.float32)
    step = max(1, x.shape[other] * CHUNK_ELEMENTS // out_elements)
    for start in range(0, x.shape[other], step):
        part = x.narrow(other, start, min(step, x.shape[other] - start))
        out.narrow(other, start, part.shape[other]).copy_(_lerp_whole(part, dim, positions))
    return out


def _lerp_whole(x: Any, dim: int, positions: np.ndarray) -> Any:
    import torch

    if dim == x.dim() - 1:  # gathers along the last axis are slow: bring it to the front
        return _lerp_whole(x.movedim(dim, 1), 1, positions).movedim(1, dim)
    n = x.shape[dim]
    pos = np.clip(positions, 0, n - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = torch.from_numpy((pos - i0).astype(np.float32))
    shape = [1] * x.dim()
    shape[dim] = -1
    w = w.view(shape)
    a = x.index_select(dim, torch.from_numpy(i0)).float()
    b = x.index_select(dim, torch.from_numpy(i1)).float()
    return torch.lerp(a, b, w)


def resample_grid(
    values: Any, model_affine: Any, source_affine: Any, source_shape: tuple[int, int, int]
) -> Any:
    """Channel-first ``values`` on the grid of ``model_affine`` resampled onto the grid of
    ``source_affine`` and ``source_shape`` (trilinear, border clamped).

    Hand-written with a measured reason: for the usual axis-aligned case the model grid is a
    scaled permutation of the source grid, and three 1-D interpolations replace MONAI's dense
    affine grid (ResampleToMatch took 10 s for a 300 x 512 x 512 target). Oblique relations
    use ResampleToMatch.
    """
    import torch

    ma = np.asarray(model_affine, dtype=np.float64)
    sa = np.asarray(source_affine, dtype=np.float64)
    axes = _axis_map(ma, sa)
    if axes is None:
        from monai.data import MetaTensor
        from monai.transforms import ResampleToMatch

        dst = MetaTensor(torch.zeros((1, *source_shape)), affine=torch.as_tensor(sa))
        out: Any = ResampleToMatch(mode="bilinear")(
            MetaTensor(values, affine=torch.as_tensor(ma)), img_dst=dst
        )
        return torch.as_tensor(out).float()
    x = values  # any dtype: each pass gathers, then interpolates in float32
    # model axis a samples source axis b at scale * i + offset, i over the source axis
    # last axis first, while the tensor is small (gathers along it are the slowest)
    for a in reversed(range(3)):
        b, scale, offset = axes[a]
        x = _lerp_axis(x, a + 1, scale * np.arange(source_shape[b]) + offset)
    # reorder the model axes into source axis order (x, y, z)
    sources = [b for b, _, _ in axes]
    order = [0] + [1 + sources.index(k) for k in range(3)]
    return x.permute(order).contiguous()
