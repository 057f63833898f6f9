"""Segmentation runs on the source grid, reports progress, cancels, and survives OOM."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medview.core.errors import CancelledError
from medview.core.geometry import Geometry
from medview.core.tasks import CancelToken
from medview.core.volume import Volume
from medview.inference import runner
from medview.inference.manifest import ModelManifest
from medview.inference.runner import fallback_plan, segment, window_count


def _phantom(direction: np.ndarray | None = None) -> tuple[Volume, np.ndarray]:
    """A 300 HU sphere in 40 HU tissue, on an oblique, flipped grid."""
    shape = (24, 48, 40)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    spacing = (0.9, 0.8, 2.5)
    r = np.sqrt(
        ((x - 22) * spacing[0]) ** 2 + ((y - 20) * spacing[1]) ** 2 + ((z - 11) * spacing[2]) ** 2
    )
    sphere = r < 12
    arr = np.where(sphere, 300, 40).astype(np.int16)
    if direction is None:
        t = np.radians(15)
        direction = np.array([[-np.cos(t), 0, np.sin(t)], [0, 1, 0], [np.sin(t), 0, np.cos(t)]])
    g = Geometry(shape=shape, origin=(5, -3, 20), spacing=spacing, direction=direction)
    return Volume(arr, g, "1.2.3", "1.2.3.4", "CT", units="HU"), sphere


def _grid_manifest(**over: object) -> ModelManifest:
    """A manifest that only sets the model grid (2.0 x 1.7 x 3.1 mm), for resampling tests."""
    from pathlib import Path

    return ModelManifest(
        "x",
        "x",
        "1",
        "segmentation",
        "UNet",
        {},
        "w.safetensors",
        "0" * 64,
        folder=Path("."),
        spacing=(2.0, 1.7, 3.1),
        **over,
    )  # type: ignore[arg-type]


class IntensityNet:
    """Logits that follow the input: class 2 where it is bright. The manifest's window maps
    40 HU to 0.74 and 300 HU to 0.93; the threshold sits between them."""

    def __call__(self, x):  # type: ignore[no-untyped-def]
        import torch

        return torch.cat([torch.zeros_like(x), torch.full_like(x, -1.0), (x - 0.83) * 400], dim=1)

    def to(self, device):  # type: ignore[no-untyped-def]
        return self


def test_labels_land_on_the_source_grid(seg_package: ModelManifest) -> None:
    vol, sphere = _phantom()
    res = segment(vol, seg_package, device="cpu", network=IntensityNet())
    assert res.labels.geometry is vol.geometry and res.labels.shape == vol.shape
    found = res.labels.array == 2
    dice = 2 * (found & sphere).sum() / (found.sum() + sphere.sum())
    assert dice > 0.9, dice  # resampled to 2 mm and back, oblique and flipped: still aligned
    stats = {s.name: s for s in res.stats}
    voxel_ml = np.prod(vol.geometry.spacing) / 1000
    assert stats["bright"].voxels == int(found.sum())
    assert stats["bright"].volume_ml == pytest.approx(found.sum() * voxel_ml)
    assert stats["bright"].mean == pytest.approx(300, abs=15)
    assert res.research_use == "Research use only, not for diagnosis."
    assert res.provenance.device == "cpu"
    assert res.provenance.weights_sha256 == seg_package.weights_sha256


def test_real_network_runs_with_uncertainty(seg_package: ModelManifest) -> None:
    vol, _ = _phantom(np.eye(3))
    res = segment(vol, seg_package, device="cpu", uncertainty=True)
    assert res.labels.array.dtype == np.uint8 and set(np.unique(res.labels.array)) <= {0, 1, 2}
    assert res.uncertainty is not None and res.uncertainty.shape == vol.shape
    assert 0 <= float(res.uncertainty.array.min()) <= float(res.uncertainty.array.max()) <= 1


@pytest.fixture
def small_roi_package(tmp_path):  # type: ignore[no-untyped-def]
    """The same network with 16^3 windows, so the phantom needs 12 of them."""
    from medview.inference.package import save_package
    from tests.inference.conftest import SEG_NET, random_state, seg_manifest

    return save_package(
        tmp_path / "m16",
        seg_manifest(
            "tiny-seg-16", inference={"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2}
        ),
        random_state(SEG_NET),
        "# test",
    )


def test_progress_counts_windows_and_cancel_stops(small_roi_package: ModelManifest) -> None:
    seg_package = small_roi_package
    vol, _ = _phantom(np.eye(3))
    seen: list[tuple[int, int]] = []
    segment(vol, seg_package, device="cpu", progress=lambda d, t, m="": seen.append((d, t)))
    total = seen[-1][1]
    assert (
        total == 12 and seen[-1][0] == total and [d for d, _ in seen] == sorted(d for d, _ in seen)
    )
    cancel = CancelToken()

    def progress(done: int, total: int, message: str = "") -> None:
        if done >= 2:
            cancel.cancel()

    t0 = time.perf_counter()
    with pytest.raises(CancelledError):
        segment(vol, seg_package, device="cpu", cancel=cancel, progress=progress)
    assert time.perf_counter() - t0 < 1.0


def test_window_count_matches_monai() -> None:
    assert window_count((64, 64, 64), (32, 32, 32), 0.25) == 27  # ceil(32/24)+1 = 3 per axis
    assert window_count((20, 64, 32), (32, 32, 32), 0.5) == 3


def test_out_of_memory_falls_back(
    small_roi_package: ModelManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    seg_package = small_roi_package
    real = runner._forward

    def flaky(net, batch):  # type: ignore[no-untyped-def]
        if batch.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(net, batch)

    monkeypatch.setattr(runner, "_forward", flaky)
    vol, _ = _phantom(np.eye(3))
    res = segment(vol, seg_package, device="cpu")
    assert any("out of memory" in n for n in res.notes)
    assert any("batch of 1" in n for n in res.notes)
    assert fallback_plan("cuda", 4) == [("cuda", 4), ("cuda", 1), ("cpu", 1)]


@pytest.mark.parametrize(
    "direction",
    [np.eye(3), np.diag([-1.0, 1.0, -1.0]), np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0.0]])],
)
def test_fast_preprocessing_matches_monai(direction: np.ndarray) -> None:
    """The separable resample onto MONAI's planned grid equals MONAI's own transforms."""
    from monai.transforms import Orientation, Spacing

    from medview.inference.manifest import Intensity
    from medview.inference.runner import RAS_LABELS, preprocess, to_metatensor

    vol, _ = _phantom(direction)
    m = _grid_manifest(intensity=Intensity("none"))
    image = to_metatensor(vol)
    fast = preprocess(image, m)
    ref = Spacing(pixdim=m.spacing, mode="bilinear")(
        Orientation(axcodes="RAS", labels=RAS_LABELS)(image)
    )
    assert tuple(fast.shape) == tuple(ref.shape)
    assert np.allclose(np.asarray(fast.affine), np.asarray(ref.affine), atol=1e-6)
    diff = (fast.as_tensor() - ref.as_tensor()).abs().max()
    assert float(diff) < 1e-2  # HU values; float rounding only


def test_largest_component_postprocessing() -> None:
    """Only the largest 3-D component of a listed label survives; other labels are untouched."""
    labels = np.zeros((20, 30, 30), dtype=np.uint8)
    labels[2:12, 5:20, 5:20] = 1  # the big one
    labels[15:18, 25:28, 25:28] = 1  # a stray island
    labels[15:18, 2:5, 2:5] = 2  # another label, also small
    runner.keep_largest_component(labels, 1)
    assert (labels[2:12, 5:20, 5:20] == 1).all()
    assert (labels[15:18, 25:28, 25:28] == 0).all()
    assert (labels[15:18, 2:5, 2:5] == 2).all()
    runner.keep_largest_component(labels, 7)  # absent: nothing happens
    assert int((labels == 1).sum()) == 10 * 15 * 15


def test_give_away_components_by_size_and_contact() -> None:
    """Small components, and those touching none of the given labels, take the label around
    them; the rest stay."""
    from medview.inference.runner import give_away_components

    labels = np.zeros((20, 20, 20), dtype=np.uint8)
    labels[2:12, 2:12, 2:12] = 2  # "lung"
    labels[5:8, 5:8, 5:8] = 4  # 27 voxels inside the lung: kept by contact, large enough
    labels[10, 10, 10] = 4  # one voxel inside the lung: too small -> lung
    labels[14:18, 14:18, 14:18] = 1  # "body" away from the lung
    labels[15:17, 15:17, 15:17] = 4  # 8 voxels inside body, touching no lung -> body
    labels[0, 0, 0] = 4  # a corner voxel with background around it -> 0
    before = labels.copy()
    n = give_away_components(labels, 4, voxel_ml=0.001, min_ml=0.002, must_touch=(2,))
    assert n == 3
    assert (labels[5:8, 5:8, 5:8] == 4).all()
    assert labels[10, 10, 10] == 2 and labels[0, 0, 0] == 0
    assert (labels[15:17, 15:17, 15:17] == 1).all()
    changed = labels != before
    assert changed.sum() == 1 + 8 + 1
    # size only: the body component (8 voxels = 0.008 mL) stays when only tiny ones go
    labels = before.copy()
    assert give_away_components(labels, 4, voxel_ml=0.001, min_ml=0.002, must_touch=()) == 2
    assert (labels[15:17, 15:17, 15:17] == 4).all()


def test_manifest_postprocessing_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from medview.inference.manifest import parse_manifest
    from tests.inference.conftest import seg_manifest

    data = seg_manifest("pp")
    data["postprocessing"] = {
        "min_component_ml": {"2": 0.25},
        "must_touch": {"2": [1]},
        "must_not_touch": {"1": [0]},
    }
    data["weights"] = {"file": "weights.safetensors", "sha256": "0" * 64}
    m = parse_manifest(data, tmp_path)
    assert m.min_component_ml == ((2, 0.25),) and m.must_touch == ((2, (1,)),)
    again = parse_manifest(m.to_json(), tmp_path)
    assert again.min_component_ml == m.min_component_ml and again.must_touch == m.must_touch
    assert m.must_not_touch == ((1, (0,)),) and again.must_not_touch == m.must_not_touch


def test_components_lying_against_a_label_are_given_away() -> None:
    """'Lung' in the air around the patient lies against the background along its whole side
    and goes; a lung enclosed by the body (one voxel touching the background) stays."""
    from medview.inference.runner import give_away_components

    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[5:25, 5:25, 5:25] = 1  # body
    labels[8:22, 8:22, 8:22] = 2  # lung inside
    labels[15, 15, 5:8] = 2  # a thin bridge to the body's edge: a few voxels near background
    labels[0:3, :, :] = 2  # a sheet of "lung" in the outside air
    n = give_away_components(labels, 2, voxel_ml=0.001, must_not_touch=(0,))
    assert n == 1
    assert (labels[0:3] == 0).all()  # given to the background around it
    assert (labels[8:22, 8:22, 8:22] == 2).all()
