"""Small randomly initialised MONAI networks packaged like real models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SEG_NET = {
    "class": "UNet",
    "args": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 3,
        "channels": [4, 8, 16],
        "strides": [2, 2],
        "num_res_units": 0,
    },
}


def seg_manifest(mid: str = "tiny-seg", **over: Any) -> dict[str, Any]:
    m = {
        "id": mid,
        "name": "Tiny segmenter",
        "version": "0.1",
        "task": "segmentation",
        "modality": "CT",
        "body_part": "CHEST",
        "dimensions": 3,
        "network": SEG_NET,
        "preprocessing": {
            "orientation": "RAS",
            "spacing": [2.0, 2.0, 2.0],
            "intensity": {
                "kind": "window",
                "a_min": -1000,
                "a_max": 400,
                "b_min": 0.0,
                "b_max": 1.0,
                "clip": True,
            },
        },
        "inference": {"roi_size": [32, 32, 32], "overlap": 0.25, "sw_batch_size": 2},
        "labels": [
            {"value": 1, "name": "soft tissue", "color": [255, 80, 80]},
            {"value": 2, "name": "bright", "color": [80, 160, 255]},
        ],
    }
    m.update(over)
    return m


def random_state(net_spec: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    import torch

    from medview.inference.loading import build_network

    torch.manual_seed(seed)
    return build_network(net_spec["class"], net_spec["args"]).state_dict()


@pytest.fixture
def seg_package(tmp_path: Path):  # type: ignore[no-untyped-def]
    from medview.inference.package import save_package

    return save_package(
        tmp_path / "models",
        seg_manifest(),
        random_state(SEG_NET),
        "# Tiny segmenter\nRandom weights for tests.",
    )


NET2D = {
    "class": "ResNet",
    "args": {
        "block": "basic",
        "layers": [1, 1, 1, 1],
        "block_inplanes": [8, 16, 32, 64],
        "spatial_dims": 2,
        "n_input_channels": 1,
        "num_classes": 2,
    },
}


def cls_manifest(mid: str) -> dict[str, Any]:
    """A 2-D slice classifier (lesion / no lesion) with Grad-CAM at ``layer4``."""
    return seg_manifest(
        mid,
        task="classification",
        dimensions=2,
        network=NET2D,
        classes=["no lesion", "lesion"],
        gradcam_layer="layer4",
        labels=[],
        inference={"roi_size": [64, 64], "overlap": 0, "sw_batch_size": 8},
    )
