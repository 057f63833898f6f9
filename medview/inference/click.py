"""Click-prompted nodule models: the reader's click picks a box of the image, a small network
segments the nodule in it, and the result comes back on the series' own grid.

The box is patient-aligned (x left, y posterior, z superior), centred on the first positive
click, at the manifest's ``prompt`` spacing and shape, so a series in any orientation gives the
network the same picture as the axial training crops. Clicks enter the network as Gaussian
maps (positive and negative, one channel each). Training reads its crops through these same
functions (``models/lung-nodule-segmentation/train.py``).

Sampling is ``scipy.ndimage.affine_transform`` on the block of the source the box covers (a few
thousand voxels, 1-3 ms), not a whole-volume resample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from medview.core.errors import InferenceError
from medview.core.geometry import Geometry
from medview.core.lesion import measure_mask
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest

# a click whose surroundings stay below this everywhere within AIR_RADIUS_MM is in air or lung
AIR_HU = -700.0
AIR_RADIUS_MM = 3.0
FLIPS = ((), (2,), (3,), (4,), (3, 4), (2, 3), (2, 4), (2, 3, 4))  # of (batch, channel, z, y, x)
LARGER = 1.5  # the second box, for masses larger than the first
ZYX_TO_XYZ = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


@dataclass(frozen=True)
class Prompt:
    """How a click model sees the image: the box (z, y, x voxels and mm), the click maps' width
    and the HU window."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    sigma_mm: float
    hu_min: float
    hu_max: float
    segmenter: str = ""  # for a classifier: the id of the segmentation model it reads
    threshold: float = 0.5  # on the probability
    flips: bool = False  # average over the 8 flips of the box (test-time augmentation)

    @classmethod
    def of(cls, manifest: ModelManifest) -> Prompt:
        p = manifest.prompt
        if not p:
            raise InferenceError(f"model {manifest.id} takes no click")
        shape = tuple(int(v) for v in p["box_shape"])
        spacing = tuple(float(v) for v in p["box_spacing_mm"])
        return cls(
            (shape[0], shape[1], shape[2]),
            (spacing[0], spacing[1], spacing[2]),
            float(p.get("sigma_mm", 3.0)),
            float(manifest.intensity.a_min),
            float(manifest.intensity.a_max),
            str(p.get("segmenter", "")),
            float(p.get("threshold", 0.5)),
            bool(p.get("flips", False)),
        )


def zyx_affine(geometry: Geometry) -> np.ndarray:
    """4x4 matrix from a homogeneous (z, y, x, 1) index to LPS mm."""
    return geometry.affine @ ZYX_TO_XYZ


def box_geometry(point_lps: Sequence[float], prompt: Prompt) -> Geometry:
    """The patient-aligned box centred on ``point_lps``."""
    spacing_xyz = np.asarray(prompt.spacing[::-1], dtype=np.float64)
    centre_xyz = (np.asarray(prompt.shape[::-1], dtype=np.float64) - 1) / 2
    origin = np.asarray(point_lps, dtype=np.float64) - centre_xyz * spacing_xyz
    return Geometry(prompt.shape, origin, spacing_xyz)


def _block(shape: tuple[int, ...], m: np.ndarray, out_shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The source block that points ``m @ index`` of an ``out_shape`` grid fall in (+1 voxel)."""
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in out_shape], indexing="ij")).reshape(3, -1)
    pts = m[:3, :3] @ corners + m[:3, 3:4]
    lo = np.clip(np.floor(pts.min(axis=1)).astype(int) - 1, 0, None)
    hi = np.minimum(np.ceil(pts.max(axis=1)).astype(int) + 2, shape[:3])
    return tuple(slice(int(a), int(max(a, b))) for a, b in zip(lo, hi, strict=True))


def sample(
    array: np.ndarray, source: Geometry, box: Geometry, order: int = 1, cval: float = 0.0
) -> np.ndarray:
    """``array`` (on ``source``) sampled on the ``box`` grid; outside the source: ``cval``."""
    m = np.linalg.inv(zyx_affine(source)) @ zyx_affine(box)
    block = _block(array.shape, m, box.shape)
    if any(s.stop <= s.start for s in block):
        return np.full(box.shape, cval, dtype=np.float32)
    start = np.array([s.start for s in block], dtype=np.float64)
    data = np.ascontiguousarray(array[block], dtype=np.float32)
    return ndimage.affine_transform(
        data,
        m[:3, :3],
        offset=m[:3, 3] - start,
        output_shape=box.shape,
        order=order,
        cval=cval,
        prefilter=False,
    ).astype(np.float32, copy=False)


def click_map(box: Geometry, clicks_lps: Sequence[Sequence[float]], sigma_mm: float) -> np.ndarray:
    """Gaussian bumps of width ``sigma_mm`` at the clicks (max over clicks) on the box grid."""
    out = np.zeros(box.shape, dtype=np.float32)
    if not len(clicks_lps):
        return out
    axes = [np.arange(n, dtype=np.float64) for n in box.shape]
    for point in clicks_lps:
        c = box.lps_to_index(np.asarray(point, dtype=np.float64))
        spacing_zyx = box.spacing[::-1]
        g = [
            np.exp(-(((a - ci) * s) ** 2) / (2 * sigma_mm**2))
            for a, ci, s in zip(axes, c, spacing_zyx, strict=True)
        ]
        np.maximum(out, (g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]), out=out)
    return out


def ct_window(volume: Volume, box: Geometry, prompt: Prompt) -> np.ndarray:
    """The image on the box, the HU window scaled to 0..1 (air outside the image)."""
    hu = sample(volume.array, volume.geometry, box, 1, cval=prompt.hu_min)
    return np.clip((hu - prompt.hu_min) / (prompt.hu_max - prompt.hu_min), 0.0, 1.0)


def network_input(
    volume: Volume,
    box: Geometry,
    positives: Sequence[Sequence[float]],
    negatives: Sequence[Sequence[float]],
    prompt: Prompt,
) -> np.ndarray:
    """(3, z, y, x): the HU window scaled to 0..1 (air outside the image), positive clicks,
    negative clicks."""
    img = ct_window(volume, box, prompt)
    pos = click_map(box, positives, prompt.sigma_mm)
    neg = click_map(box, negatives, prompt.sigma_mm)
    return np.stack([img, pos, neg]).astype(np.float32)


@dataclass(frozen=True)
class ClickSegment:
    """A segmented nodule: its mask on a block of the source grid."""

    block: tuple[slice, slice, slice]
    mask: np.ndarray  # bool, the block's shape
    voxels: int

    def full(self, shape: tuple[int, int, int]) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        out[self.block] = self.mask
        return out


def click_problem(volume: Volume, point_lps: Sequence[float], manifest: ModelManifest) -> str:
    """Why a click at ``point_lps`` cannot be segmented, in a sentence; "" when it can."""
    if volume.is_color:
        return "this is a colour image; the nodule model reads CT volumes"
    modalities = manifest.domain.modalities or (manifest.modality.upper(),)
    if volume.modality.upper() not in modalities:
        return (
            f"this series is {volume.modality or 'of unknown modality'}; "
            f"the nodule model reads {', '.join(modalities)} only"
        )
    if min(volume.shape) < 2:
        return "this is a 2-D image; the nodule model needs a CT volume (2 or more slices)"
    idx = volume.geometry.lps_to_index(np.asarray(point_lps, dtype=np.float64))
    shape = np.asarray(volume.shape, dtype=np.float64)
    if np.any(idx < -0.5) or np.any(idx > shape - 0.5):
        return "the click is outside the image"
    rc = np.round(idx[1:]).astype(int)
    if np.any(rc < 1) or np.any(rc > shape[1:].astype(int) - 2):
        return "the click is on the edge of the image; click on the nodule itself"
    r = AIR_RADIUS_MM / volume.geometry.spacing[::-1]
    lo = np.clip(np.floor(idx - r).astype(int), 0, None)
    hi = np.minimum(np.ceil(idx + r).astype(int) + 1, volume.shape)
    near = np.asarray(volume.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], dtype=np.float32)
    zz, yy, xx = np.meshgrid(
        *[
            (np.arange(a, b) - c) * s
            for a, b, c, s in zip(lo, hi, idx, volume.geometry.spacing[::-1], strict=True)
        ],
        indexing="ij",
    )
    inside = zz**2 + yy**2 + xx**2 <= AIR_RADIUS_MM**2
    if not inside.any() or float(near[inside].max()) < AIR_HU:
        return (
            "there is no tissue at the click (air or lung within "
            f"{AIR_RADIUS_MM:g} mm); click on the nodule"
        )
    return ""


def _kept(mask: np.ndarray, box: Geometry, positives: Sequence[Sequence[float]]) -> np.ndarray:
    """The components of ``mask`` that hold a positive click, else the one nearest the first
    click when it lies within 3 mm."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    keep = set()
    for p in positives:
        i = np.round(box.lps_to_index(np.asarray(p, dtype=np.float64))).astype(int)
        if np.all(i >= 0) and np.all(i < box.shape) and labels[tuple(i)]:
            keep.add(int(labels[tuple(i)]))
    if not keep:
        dist, (iz, iy, ix) = ndimage.distance_transform_edt(
            labels == 0, sampling=box.spacing[::-1], return_indices=True
        )
        c = np.round(box.lps_to_index(np.asarray(positives[0], dtype=np.float64))).astype(int)
        c = np.clip(c, 0, np.asarray(box.shape) - 1)
        if dist[tuple(c)] <= 3.0:
            keep.add(int(labels[iz[tuple(c)], iy[tuple(c)], ix[tuple(c)]]))
    return np.isin(labels, list(keep))


def to_source(
    values: np.ndarray, box: Geometry, source: Geometry
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """``values`` on the box sampled (linearly) onto the block of the source grid it covers."""
    m = np.linalg.inv(zyx_affine(box)) @ zyx_affine(source)
    # the source block covered by the box: the box corners in source indices
    inv = np.linalg.inv(m)
    block = _block(source.shape, inv, box.shape)
    start = np.array([s.start for s in block], dtype=np.float64)
    shape = tuple(s.stop - s.start for s in block)
    if min(shape) <= 0:
        return (slice(0, 0), slice(0, 0), slice(0, 0)), np.zeros((0, 0, 0), np.float32)
    out = ndimage.affine_transform(
        values.astype(np.float32),
        m[:3, :3],
        offset=m[:3, :3] @ start + m[:3, 3],
        output_shape=shape,
        order=1,
        cval=0.0,
        prefilter=False,
    )
    return (block[0], block[1], block[2]), out


def _outside_centre(mask: np.ndarray, fraction: float) -> float:
    """The share of the mask outside the box's central ``fraction`` (per axis)."""
    lo = [round(n * (1 - fraction) / 2) for n in mask.shape]
    inner = mask[
        lo[0] : mask.shape[0] - lo[0], lo[1] : mask.shape[1] - lo[1], lo[2] : mask.shape[2] - lo[2]
    ]
    total = int(mask.sum())
    return (total - int(inner.sum())) / total if total else 0.0


def _run_box(
    net: Any,
    volume: Volume,
    positives: Sequence[Sequence[float]],
    negatives: Sequence[Sequence[float]],
    prompt: Prompt,
    device: str,
) -> tuple[np.ndarray, np.ndarray, Geometry]:
    import torch

    box = box_geometry(positives[0], prompt)
    x = torch.from_numpy(network_input(volume, box, positives, negatives, prompt)[None]).to(device)
    flips = FLIPS if prompt.flips else ((),)
    with torch.inference_mode():
        # the flipped boxes as one batch (a click took 56 ms on 2 cores, network and all)
        batch = torch.cat([x.flip(f) if f else x for f in flips])
        p = torch.sigmoid(net(batch))
        back = torch.stack(
            [p[i : i + 1].flip(f) if f else p[i : i + 1] for i, f in enumerate(flips)]
        )
        prob: np.ndarray = back.mean(dim=0)[0, 0].float().cpu().numpy()
    return prob, _kept(prob > prompt.threshold, box, positives), box


def segment_at(
    net: Any,
    volume: Volume,
    positives: Sequence[Sequence[float]],
    negatives: Sequence[Sequence[float]],
    prompt: Prompt,
    device: str = "cpu",
) -> ClickSegment:
    """The nodule at the clicks on ``volume``'s grid (empty when the network finds none).

    The nodule is also looked for in a box 1.5 times the size (48 x 54 x 54 mm, one pass
    without flips), and segmented there (with flips) when over 15 % of it lies outside the
    first box: a mass larger than the box. (On the demo CT's 55 mm tumour: Dice 0.44-0.47 in
    the first box, 0.89-0.90 in the larger one, 26 % of which lies outside the first.)"""
    if not positives:
        raise InferenceError("a nodule needs one positive click")
    prob, kept, box = _run_box(net, volume, positives, negatives, prompt, device)
    larger = dataclasses.replace(prompt, spacing=tuple(LARGER * s for s in prompt.spacing))  # type: ignore[arg-type]
    look = _run_box(
        net, volume, positives, negatives, dataclasses.replace(larger, flips=False), device
    )
    if _outside_centre(look[1], 1 / LARGER) > 0.15:
        prob, kept, box = _run_box(net, volume, positives, negatives, larger, device)
    # the probability of the kept components (and a voxel around them) comes back to the source
    near = ndimage.binary_dilation(kept, iterations=1)
    block, p = to_source(np.where(near, prob, 0.0), box, volume.geometry)
    mask = p > prompt.threshold
    return ClickSegment(block, mask, int(mask.sum()))


@dataclass(frozen=True)
class NoduleMeasures:
    """Size of a segmented nodule: volume, RECIST-style longest axial diameter and the short
    axis perpendicular to it on the same slice, the slice, and the mean HU."""

    volume_ml: float
    long_axis_mm: float
    short_axis_mm: float
    slice_index: int
    mean_hu: float
    centre_lps: tuple[float, float, float]


def measure(volume: Volume, seg: ClickSegment) -> NoduleMeasures:
    """The nodule's measures (`medview.core.lesion`); the axial plane is the series' slice
    plane."""
    offset = tuple(int(s.start) for s in seg.block)
    m = measure_mask(volume.array[seg.block], seg.mask, volume.geometry, offset)  # type: ignore[arg-type]
    return NoduleMeasures(
        m.volume_ml, m.long_axis_mm, m.short_axis_mm, m.slice_index, m.mean, m.centre_lps
    )
