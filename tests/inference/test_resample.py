"""Moving model outputs onto the source grid: the fast paths equal MONAI's resampling."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.inference import resample as rs
from medview.inference.manifest import Label
from medview.inference.runner import label_stats, preprocess, to_metatensor
from tests.inference.test_runner import _grid_manifest, _phantom

DIRECTIONS = [np.eye(3), np.diag([-1.0, 1.0, -1.0]), np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0.0]])]


def _smooth_probs(shape: tuple[int, ...], channels: int, seed: int) -> object:
    """Softmax of nested blobs with smooth random bumps: real boundaries in some slices only,
    like a model's output."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn((1, 1, 4, 5, 4), generator=g)
    bumps = F.interpolate(coarse, size=shape, mode="trilinear")[0, 0]
    axes = [torch.linspace(-1, 1, n) for n in shape]
    r = torch.sqrt(sum(a**2 for a in torch.meshgrid(*axes, indexing="ij"))) + 0.1 * bumps
    # class 1 where r < 0.6, class 2 (when asked) where r < 0.3
    logits = [torch.zeros(shape), (0.6 - r) * 20, (0.6 - r) * 20 + (0.3 - r) * 20][:channels]
    return torch.softmax(torch.stack(logits), dim=0)


def _reference(probs: object, pre: object, image: object) -> tuple[np.ndarray, np.ndarray]:
    """MONAI's ResampleToMatch of every channel, then argmax; and each voxel's margin."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import ResampleToMatch

    ref = ResampleToMatch(mode="bilinear")(MetaTensor(probs, affine=pre.affine), img_dst=image)  # type: ignore[attr-defined]
    ref = torch.as_tensor(ref).float()
    top2 = ref.topk(2, dim=0).values
    labels = ref.argmax(dim=0).numpy().transpose(2, 1, 0)
    margin = (top2[0] - top2[1]).numpy().transpose(2, 1, 0)
    return labels, margin


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_resample_grid_matches_resample_to_match(direction: np.ndarray) -> None:
    import torch
    from monai.data import MetaTensor
    from monai.transforms import ResampleToMatch

    vol, _ = _phantom(direction)
    image = to_metatensor(vol)
    pre = preprocess(image, _grid_manifest())
    assert rs.axis_map(np.asarray(pre.affine), np.asarray(image.affine)) is not None
    probs = torch.rand((3, *pre.shape[1:]), generator=torch.Generator().manual_seed(0))
    ref = ResampleToMatch(mode="bilinear")(MetaTensor(probs, affine=pre.affine), img_dst=image)
    for order in [None, (2, 1, 0), (0, 1, 2)]:
        fast = rs.resample_grid(
            probs, pre.affine, image.affine, tuple(image.shape[1:]), memory_order=order
        )
        assert fast.shape == ref.shape
        assert float((fast - ref.as_tensor()).abs().max()) < 1e-4


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("channels", [2, 3])
def test_labels_equal_argmax_of_resampled_probabilities(
    direction: np.ndarray, channels: int
) -> None:
    """Cell-by-cell labels and the dense path both equal MONAI's resample-then-argmax, except
    where two classes tie to within float rounding."""
    vol, _ = _phantom(direction)
    image = to_metatensor(vol)
    pre = preprocess(image, _grid_manifest())
    probs = _smooth_probs(tuple(pre.shape[1:]), channels, seed=channels)
    ref, margin = _reference(probs, pre, image)
    given = probs[1:] if channels == 2 else probs  # type: ignore[index]
    fast = rs.labels_on_source(given, pre.affine, image.affine, tuple(image.shape[1:]))
    dense = rs.labels_on_source(
        given, pre.affine, image.affine, tuple(image.shape[1:]), entropy=True
    )
    assert len(np.unique(ref)) == channels  # every class present: real boundaries
    assert 0 < fast.interpolated_fraction < 1  # boxes around boundaries, not everything
    assert dense.interpolated_fraction == 1.0
    for maps in (fast, dense):
        assert maps.labels.shape == vol.shape and maps.labels.flags.c_contiguous
        wrong = maps.labels != ref
        assert not wrong[margin > 1e-5].any()
        assert wrong.mean() < 1e-3
    assert dense.entropy is not None and 0 <= dense.entropy.min() <= dense.entropy.max() <= 1


def test_oblique_relation_uses_monai() -> None:
    """A model grid rotated against the source grid (MONAI's own transforms keep the source
    direction, so this comes from bundles with their own grids) goes through MONAI."""
    import torch
    from monai.data import MetaTensor

    vol, _ = _phantom(np.eye(3))
    image = to_metatensor(vol)
    pre = preprocess(image, _grid_manifest())
    t = np.radians(10)
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    tilted = MetaTensor(pre.as_tensor(), affine=torch.as_tensor(turn @ np.asarray(pre.affine)))
    assert rs.axis_map(np.asarray(tilted.affine), np.asarray(image.affine)) is None
    probs = _smooth_probs(tuple(pre.shape[1:]), 3, seed=5)
    ref, margin = _reference(probs, tilted, image)
    got = rs.labels_on_source(probs, tilted.affine, image.affine, tuple(image.shape[1:]))
    assert len(np.unique(ref)) == 3
    assert not (got.labels != ref)[margin > 1e-5].any()


def test_mixed_cells_mark_every_disagreeing_corner() -> None:
    import torch

    lab = torch.zeros((3, 3, 3), dtype=torch.uint8)
    lab[2, 2, 2] = 1
    cells = rs._mixed_cells(lab).numpy()
    # the eight cells whose corners include (2, 2, 2) are mixed, counting clamped border cells
    assert set(zip(*np.nonzero(cells == rs.MIXED), strict=True)) == {
        (z, y, x) for z in (1, 2) for y in (1, 2) for x in (1, 2)
    } - {(2, 2, 2)}
    assert cells[2, 2, 2] == 1 and cells[0, 0, 0] == 0


@pytest.mark.parametrize("many", [False, True])
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32])
def test_label_stats_equal_numpy(many: bool, dtype: type) -> None:
    """Counts, volumes, means and SDs match plain numpy, for few and many labels, on integer
    and float images, with background-only slices in between."""
    rng = np.random.default_rng(3)
    shape = (40, 64, 48)
    arr = np.abs(rng.normal(100, 300, size=shape)).astype(dtype)
    top = 20 if many else 3
    labels = rng.integers(0, top + 1, size=shape).astype(np.uint8)
    labels[5:15] = 0  # slabs with background only
    if not many:
        labels[20:30] = labels[20:30] > 0  # slabs with labels 0 and 1 only
    vol = Volume(arr, Geometry(shape, (0, 0, 0), (0.8, 0.8, 2.0)), modality="CT")
    m = _grid_manifest(labels=tuple(Label(v, f"l{v}", (255, 0, 0)) for v in range(1, top + 2)))
    for st in label_stats(vol, labels, m):
        inside = arr[labels == st.value].astype(np.float64)
        assert st.voxels == inside.size
        if not inside.size:  # the last label is never present
            assert st.volume_ml == 0 and np.isnan(st.mean)
            continue
        assert st.volume_ml == pytest.approx(inside.size * 0.8 * 0.8 * 2.0 / 1000)
        assert st.mean == pytest.approx(inside.mean(), rel=1e-9, abs=1e-6)
        assert st.sd == pytest.approx(inside.std(), rel=1e-6)


def test_noisy_probabilities_take_whole_planes() -> None:
    """Where boundaries are everywhere (noise), whole planes replace boxes: same labels."""
    import torch

    vol, _ = _phantom(np.diag([-1.0, 1.0, -1.0]))
    image = to_metatensor(vol)
    pre = preprocess(image, _grid_manifest())
    probs = torch.rand((1, *pre.shape[1:]), generator=torch.Generator().manual_seed(9))
    ref, margin = _reference(torch.cat([1 - probs, probs]), pre, image)
    got = rs.labels_on_source(probs, pre.affine, image.affine, tuple(image.shape[1:]))
    assert got.interpolated_fraction == 1.0
    assert not (got.labels != ref)[margin > 1e-5].any()
