"""Classification: slice-wise probabilities aggregated by maximum, Grad-CAM on the source grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medview.core.errors import CancelledError
from medview.core.geometry import Geometry
from medview.core.tasks import CancelToken
from medview.core.volume import Volume
from medview.inference.classify import classify


@pytest.fixture
def cls_package(tmp_path: Path):  # type: ignore[no-untyped-def]
    from medview.inference.package import save_package
    from tests.inference.conftest import NET2D, cls_manifest, random_state

    return save_package(
        tmp_path / "m",
        cls_manifest("tiny-cls"),
        random_state(NET2D),
        "# Tiny classifier",
    )


def _ct() -> Volume:
    rng = np.random.default_rng(0)
    arr = rng.normal(40, 20, (10, 48, 56)).astype(np.int16)
    g = Geometry(shape=arr.shape, origin=(0, 0, 0), spacing=(0.8, 0.8, 3.0))
    return Volume(arr, g, "1.2", "1.2.3", "CT", units="HU")


def test_slice_probabilities_aggregate_by_maximum(cls_package) -> None:  # type: ignore[no-untyped-def]
    vol = _ct()
    res = classify(vol, cls_package, device="cpu")
    assert res.per_slice is not None and res.per_slice.shape == (10, 2)
    assert np.allclose(res.per_slice.sum(axis=1), 1, atol=1e-5)
    assert res.probabilities["lesion"] == pytest.approx(float(res.per_slice[:, 1].max()))
    assert res.aggregation == "maximum over slices" and res.target_class == "lesion"
    assert res.heatmap is not None and res.heatmap.geometry is vol.geometry
    h = res.heatmap.array
    assert h.shape == vol.shape and h.min() >= 0 and h.max() <= 1
    assert res.research_use == "Research use only, not for diagnosis."


NET3D = {
    "class": "ResNet",
    "args": {
        "block": "basic",
        "layers": [1, 1, 1, 1],
        "block_inplanes": [4, 8, 16, 32],
        "spatial_dims": 3,
        "n_input_channels": 1,
        "num_classes": 3,
    },
}


def test_volume_classifier_and_heatmap_on_source_grid(tmp_path: Path) -> None:
    from medview.inference.package import save_package
    from tests.inference.conftest import random_state, seg_manifest

    m = save_package(
        tmp_path / "m3",
        seg_manifest(
            "tiny-cls-3d",
            task="classification",
            dimensions=3,
            network=NET3D,
            classes=["normal", "a", "b"],
            gradcam_layer="layer4",
            labels=[],
            inference={"roi_size": [32, 32, 32], "overlap": 0, "sw_batch_size": 1},
        ),
        random_state(NET3D),
        "# 3-D classifier",
    )
    vol = _ct()
    res = classify(vol, m, device="cpu")
    assert res.per_slice is None and res.aggregation == "whole volume"
    assert sum(res.probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert res.target_class in ("a", "b")  # the most probable non-background class
    assert res.heatmap is not None and res.heatmap.shape == vol.shape
    assert res.heatmap.geometry is vol.geometry


def test_cancel_between_slices(cls_package) -> None:  # type: ignore[no-untyped-def]
    cancel = CancelToken()

    def progress(done: int, total: int, message: str = "") -> None:
        cancel.cancel()

    with pytest.raises(CancelledError):
        classify(_ct(), cls_package, device="cpu", cancel=cancel, progress=progress)


def test_gradcam_is_hot_where_the_evidence_is(cls_package) -> None:  # type: ignore[no-untyped-def]
    """A network whose 'lesion' score is the mean brightness of its feature map: Grad-CAM must
    peak on the bright blob, not on the darkest spot (MONAI's default CAM normaliser maps
    (min, max) to (1, 0), which once flipped MedView's heat maps)."""
    import torch

    class Evidence(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Conv2d(1, 1, 1)
            torch.nn.init.ones_(self.features.weight)
            torch.nn.init.zeros_(self.features.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            score = self.features(x).mean(dim=(2, 3))
            return torch.cat([-score, score], dim=1)

    from dataclasses import replace

    vol = _ct()
    arr = np.full(vol.shape, -900, dtype=np.int16)  # lung-like background
    arr[:, 30:38, 10:18] = 60  # a soft-tissue blob in every slice
    blob = Volume(arr, vol.geometry, "1.2", "1.2.3", "CT", units="HU")
    m = replace(cls_package, gradcam_layer="features")
    res = classify(blob, m, device="cpu", network=Evidence())
    heat = res.heatmap.array
    for z in range(blob.shape[0]):
        r, c = np.unravel_index(int(np.argmax(heat[z])), heat[z].shape)
        assert 30 <= r < 38 and 10 <= c < 18
