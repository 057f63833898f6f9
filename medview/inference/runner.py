"""Running a segmentation model on a `Volume`: MONAI transforms, sliding-window inference with
progress and cancel between patches, and the label map built on the source grid from the
probabilities (``medview.inference.resample``), so it has exactly the source geometry.

Out of memory: the run is retried with a batch of one window, then on the CPU, and the result
says what happened.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from medview.core.errors import CancelledError, InferenceError
from medview.core.results import Provenance, Segment, Segmentation, SegmentStats
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest
from medview.inference.resample import axis_map, labels_on_source, resample_grid

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


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
    affine = LPS_TO_RAS @ volume.geometry.affine
    return MetaTensor(_as_tensor(view)[None], affine=torch.as_tensor(affine))


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
    from monai.transforms import (
        NormalizeIntensity,
        Orientation,
        ScaleIntensityRange,
        ScaleIntensityRangePercentiles,
        Spacing,
    )

    affine, shape = spatial_plan(image, m)
    source_affine = np.asarray(image.affine, dtype=np.float64)
    out: Any
    if axis_map(source_affine, affine) is not None:
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
    elif it.kind == "percentiles":
        out = ScaleIntensityRangePercentiles(
            lower=it.a_min, upper=it.a_max, b_min=it.b_min, b_max=it.b_max, clip=it.clip
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
) -> Segmentation:
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
    roi = tuple(manifest.roi_size)  # empty: the whole volume at once (HD-BET)
    total = window_count(tuple(pre.shape[1:]), roi, manifest.overlap) if roi else 1
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
                if roi:
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
                else:
                    logits = predictor(pre.as_tensor()[None].to(dev)).to("cpu")
            used, used_batch = dev, batch
            break
        except CancelledError:
            raise
        except Exception as e:  # only out-of-memory is retried; everything else is reported
            if not _is_oom(e):  # one sentence; the cause travels to the log with the traceback
                raise InferenceError(
                    f"{manifest.name} could not finish this run because of an internal error."
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
    logits = torch.as_tensor(logits)  # one tensor out: the predictor returns one
    if logits.shape[1] == 2:  # two classes: the foreground probability decides (p1 > 0.5)
        probs = torch.sigmoid(logits[0, 1:].float() - logits[0, :1].float())
    else:
        probs = torch.softmax(logits[0].float(), dim=0)
    del logits
    maps = labels_on_source(
        probs,
        pre.affine,
        image.affine,
        tuple(image.shape[1:]),
        entropy=uncertainty,
        cancel=cancel,
    )
    del probs
    labels = maps.labels
    for value in manifest.largest_component:
        keep_largest_component(labels, value)
    touch, avoid = dict(manifest.must_touch), dict(manifest.must_not_touch)
    for value in sorted(set(touch) | set(avoid) | {v for v, _ in manifest.min_component_ml}):
        give_away_components(
            labels,
            value,
            voxel_ml=float(np.prod(volume.geometry.spacing)) / 1000.0,
            min_ml=dict(manifest.min_component_ml).get(value, 0.0),
            must_touch=touch.get(value, ()),
            must_not_touch=avoid.get(value, ()),
        )
    unc = None
    if maps.entropy is not None:
        unc = Volume(
            maps.entropy,
            volume.geometry,
            volume.frame_of_reference_uid,
            volume.series_uid,
            "",
            "entropy",
        )
    t_labels = time.perf_counter()
    stats = label_stats(volume, labels, manifest)
    t_end = time.perf_counter()
    return Segmentation(
        labels=Volume(
            np.ascontiguousarray(labels),
            volume.geometry,
            volume.frame_of_reference_uid,
            volume.series_uid,
            "SEG",
            f"{manifest.name} labels",
        ),
        segments=manifest_segments(manifest),
        stats=stats,
        provenance=provenance(
            manifest,
            used,
            t_end - t0,
            preprocess=t_pre - t0,
            inference=t_inf - t_pre,
            labels=t_labels - t_inf,
            statistics=t_end - t_labels,
            postprocess=t_end - t_inf,
        ),
        notes=tuple(notes),
        uncertainty=unc,
    )


def label_stats(volume: Volume, labels: np.ndarray, m: ModelManifest) -> tuple[SegmentStats, ...]:
    """Per label of the model (absent ones with no voxels): voxel count, volume in mL and
    mean/SD of the image values inside. Min and max are left NaN here: computing them (masked
    reductions per label) took 0.09 s more on a 300 x 512 x 512 CT, 5 % of a whole run, and
    nothing shows them yet; `medview.core.results.segment_stats` computes them.

    Slab by slab, skipping background-only slabs; the masked values go through a float64
    dot product, which is exact for 16-bit images (each slab's sums stay below 2**53) and
    was ten times faster here than masked integer sums or weighted bincounts."""
    import torch

    wanted = {lb.value for lb in m.labels}
    arr = volume.array
    slab = max(1, (1 << 21) // max(1, arr[0].size))

    # one thread: torch's own threads serve these slab-sized operations best (measured)
    counts = np.zeros(256, dtype=np.int64)
    sums = np.zeros(256, dtype=np.float64)
    squares = np.zeros(256, dtype=np.float64)
    for z0 in range(0, arr.shape[0], slab):
        lab = torch.from_numpy(labels[z0 : z0 + slab]).reshape(-1)
        top = int(lab.max())
        if top == 0:
            counts[0] += lab.numel()
            continue
        if top == 1:
            ones = int(lab.count_nonzero())
            counts[0] += lab.numel() - ones
            counts[1] += ones
            present = [1] if 1 in wanted else []
        else:
            n = torch.bincount(lab, minlength=256).numpy()
            counts += n
            present = [int(v) for v in np.flatnonzero(n) if int(v) in wanted]
        part = arr[z0 : z0 + slab]
        if part.dtype.kind == "u" and part.dtype.itemsize > 1:  # torch cannot promote these
            part = part.astype(np.int32 if part.dtype.itemsize == 2 else np.float64)
        vals = _as_tensor(part).reshape(-1)
        if len(present) > 8:  # many labels: one weighted bincount beats a pass per label
            lab64, w = lab.long(), vals.double()
            sums += torch.bincount(lab64, weights=w, minlength=256).numpy()
            squares += torch.bincount(lab64, weights=w * w, minlength=256).numpy()
            continue
        for v in present:
            inside = (vals * (lab if top == 1 else lab == v)).double()  # zero outside
            sums[v] += float(inside.sum())
            squares[v] += float(torch.dot(inside, inside))
    voxel_ml = float(np.prod(volume.geometry.spacing)) / 1000.0
    out = []
    nan = float("nan")
    for lb in m.labels:
        n_ = int(counts[lb.value]) if lb.value < 256 else 0
        if not n_:
            out.append(SegmentStats(lb.value, lb.name, 0, 0.0, nan, nan, nan, nan))
            continue
        mean = float(sums[lb.value]) / n_
        sd = float(np.sqrt(max(float(squares[lb.value]) / n_ - mean * mean, 0.0)))
        out.append(SegmentStats(lb.value, lb.name, n_, n_ * voxel_ml, mean, sd))
    return tuple(out)


def manifest_segments(m: ModelManifest) -> tuple[Segment, ...]:
    """The model's labels as segments, with their colours and SNOMED CT codes."""
    return tuple(
        Segment(lb.value, lb.name, lb.color, lb.snomed_code, lb.snomed_meaning, lb.finding)
        for lb in m.labels
    )


def provenance(m: ModelManifest, device: str, seconds: float, **timings: float) -> Provenance:
    """Where a result of ``m`` came from; dated now."""
    import datetime as dt

    return Provenance(
        model_id=m.id,
        name=m.name,
        version=m.version,
        weights_sha256=m.weights_sha256,
        device=device,
        seconds=seconds,
        date=dt.datetime.now().isoformat(timespec="seconds"),
        timings=tuple(timings.items()),
    )


def keep_largest_component(labels: np.ndarray, value: int) -> None:
    """Relabel to 0, in place, every voxel of ``value`` outside its largest 26-connected
    component (SimpleITK's connected components; the label map stays on the source grid)."""
    import SimpleITK as sitk

    mask = labels == value
    if not mask.any():
        return
    comps = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.view(np.uint8)), True)
    # a view must not outlive its image: a view of a temporary read freed memory (segfault on
    # volumes larger than the demo's)
    relabelled = sitk.RelabelComponent(comps, sortByObjectSize=True)
    largest = sitk.GetArrayViewFromImage(relabelled) == 1
    del relabelled
    labels[mask & ~largest] = 0


def _next_to(labels: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """Voxels within one voxel (26-neighbourhood) of any of ``values``."""
    import SimpleITK as sitk

    grown = sitk.BinaryDilate(
        sitk.GetImageFromArray(np.isin(labels, values).view(np.uint8)), [1, 1, 1]
    )
    return sitk.GetArrayViewFromImage(grown).astype(bool)


AGAINST_FRACTION = 0.01  # a component with more of its voxels next to a must_not_touch label goes


def give_away_components(
    labels: np.ndarray,
    value: int,
    *,
    voxel_ml: float,
    min_ml: float = 0.0,
    must_touch: tuple[int, ...] = (),
    must_not_touch: tuple[int, ...] = (),
) -> int:
    """Relabel, in place, each 26-connected component of ``value`` that is smaller than
    ``min_ml``, touches none of the labels ``must_touch`` (when given), or lies against the
    labels ``must_not_touch`` (more than 1 % of its voxels next to them) to the label most
    common in the one-voxel shell around it (0 when the shell is all ``value``). Returns how
    many components were given away."""
    import SimpleITK as sitk

    mask = labels == value
    if not mask.any():
        return 0
    comps_img = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.view(np.uint8)), True)
    comps = sitk.GetArrayViewFromImage(comps_img)
    n = int(comps.max())
    sizes = np.bincount(comps.ravel(), minlength=n + 1)
    drop = sizes * voxel_ml < min_ml
    drop[0] = False
    if must_touch:
        touching = np.zeros(n + 1, dtype=bool)
        touching[np.unique(comps[_next_to(labels, must_touch) & mask])] = True
        drop |= ~touching
    if must_not_touch:
        against = np.bincount(comps[_next_to(labels, must_not_touch) & mask], minlength=n + 1)
        drop |= against > AGAINST_FRACTION * sizes
    drop[0] = False
    if not drop.any():
        return 0
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(comps_img)
    for k in np.nonzero(drop)[0]:
        x, y, z, sx, sy, sz = shape.GetBoundingBox(int(k))  # SimpleITK order: x, y, z
        box = tuple(
            slice(max(0, a - 1), min(dim, a + w + 1))
            for a, w, dim in zip((z, y, x), (sz, sy, sx), labels.shape, strict=True)
        )
        own = comps[box] == k
        grown = np.pad(own, 1)  # one-voxel (26-neighbour) dilation; rolls wrap only into the pad
        for axis in range(3):
            grown = grown | np.roll(grown, 1, axis) | np.roll(grown, -1, axis)
        shell = labels[box][grown[1:-1, 1:-1, 1:-1] & ~own]
        shell = shell[shell != value]
        labels[box][own] = int(np.bincount(shell).argmax()) if shell.size else 0
    return int(drop.sum())


def _as_tensor(a: np.ndarray) -> Any:
    """A torch view of a read-only array: nothing here writes to it (copying a 300-slice CT
    for torch's writeable flag cost 0.1 s)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)
