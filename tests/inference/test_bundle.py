"""MONAI bundles are read as data: a Model-Zoo-style bundle imports; hostile ones are refused
with the reason and nothing they contain ever runs (marker files never appear)."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest

from medview.core.errors import ModelError
from medview.inference.bundle import import_bundle
from medview.inference.loading import load_model
from tests.inference.conftest import SEG_NET, random_state


def make_bundle(root: Path, inference: dict[str, Any] | None = None, weights: bool = True) -> Path:
    """A bundle in the Model Zoo layout (spleen_ct_segmentation-like, small network)."""
    import torch

    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    meta = {
        "version": "0.5.1",
        "name": "Tiny spleen segmentation",
        "description": "A test bundle.",
        "intended_use": "tests",
        "license": "Apache-2.0",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "num_channels": 1}},
            "outputs": {
                "pred": {
                    "type": "image",
                    "num_channels": 3,
                    "channel_def": {"0": "background", "1": "spleen", "2": "liver"},
                }
            },
        },
    }
    cfg = inference or {
        "imports": ["$import glob", "$import os"],
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "channels": [4, 8, 16],
        "network_def": {
            "_target_": "UNet",
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 3,
            "channels": "@channels",
            "strides": [2, 2],
            "num_res_units": 0,
        },
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                {
                    "_target_": "Spacingd",
                    "keys": "image",
                    "pixdim": [1.5, 1.5, 2.0],
                    "mode": "bilinear",
                },
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "image",
                    "a_min": -57,
                    "a_max": 164,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [32, 32, 32],
            "sw_batch_size": 4,
            "overlap": 0.5,
        },
    }
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    (root / "configs" / "inference.json").write_text(json.dumps(cfg))
    if weights:
        torch.save(random_state(SEG_NET), root / "models" / "model.pt")
    return root


def test_model_zoo_bundle_imports(tmp_path: Path) -> None:
    m = import_bundle(make_bundle(tmp_path / "spleen_ct_segmentation"), tmp_path / "models")
    assert m.id == "tiny-spleen-segmentation" and m.task == "segmentation"
    assert m.network_args["channels"] == [4, 8, 16]  # @channels followed to its literal
    assert m.spacing == (1.5, 1.5, 2.0) and m.orientation == "RAS"
    assert (m.intensity.kind, m.intensity.a_min, m.intensity.a_max) == ("window", -57, 164)
    assert m.roi_size == (32, 32, 32) and m.sw_batch_size == 4 and m.overlap == 0.5
    assert [(lb.value, lb.name) for lb in m.labels] == [(1, "spleen"), (2, "liver")]
    assert m.weights_path.suffix == ".safetensors"
    assert "Research use only" in m.card_text
    load_model(m)


def test_zipped_bundle_imports(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b" / "spleen")
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in root.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(root.parent))
    assert import_bundle(z, tmp_path / "models").task == "segmentation"


def _post(*transforms: dict[str, Any]) -> dict[str, Any]:
    return {"_target_": "Compose", "transforms": list(transforms)}


def test_postprocessing_and_modality_are_read(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b")
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    meta["network_data_format"]["inputs"]["image"]["modality"] = "ct"
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    cfg = json.loads((root / "configs" / "inference.json").read_text())
    cfg["output_dir"] = "$@bundle_root + '/eval'"
    cfg["postprocessing"] = _post(
        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing"},
        {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
        {"_target_": "KeepLargestConnectedComponentd", "keys": "pred", "applied_labels": [1, 2]},
        {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir"},
    )
    (root / "configs" / "inference.json").write_text(json.dumps(cfg))
    m = import_bundle(root, tmp_path / "models")
    assert m.largest_component == (1, 2) and m.modality == "CT"


@pytest.mark.parametrize(
    "transform",
    [
        {"_target_": "FillHolesd", "keys": "pred"},  # would change the output: refused
        {"_target_": "KeepLargestConnectedComponentd", "keys": "pred", "applied_labels": "$[1]"},
    ],
)
def test_postprocessing_medview_cannot_reproduce_is_refused(
    tmp_path: Path, transform: dict[str, Any]
) -> None:
    root = make_bundle(tmp_path / "b")
    cfg = json.loads((root / "configs" / "inference.json").read_text())
    cfg["postprocessing"] = _post(transform)
    (root / "configs" / "inference.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError):
        import_bundle(root, tmp_path / "models")


def _evil(tmp_path: Path, marker: Path, **changes: Any) -> Path:
    root = make_bundle(tmp_path / "evil")
    cfg = json.loads((root / "configs" / "inference.json").read_text())
    cfg.update(changes)
    (root / "configs" / "inference.json").write_text(json.dumps(cfg))
    return root


@pytest.mark.parametrize(
    "change",
    [
        {"network_def": {"_target_": "os.system", "command": "touch {marker}"}},
        {"network_def": {"_target_": "$__import__('os').system('touch {marker}')"}},
        {
            "network_def": {
                "_target_": "UNet",
                "spatial_dims": "$__import__('os').system('touch {marker}') or 3",
            }
        },
        {
            "preprocessing": {
                "_target_": "Compose",
                "transforms": [
                    {
                        "_target_": "Lambdad",
                        "keys": "image",
                        "func": "$lambda x: os.system('touch {marker}')",
                    }
                ],
            }
        },
        {
            "preprocessing": {
                "_target_": "Compose",
                "transforms": [{"_target_": "os.system", "command": "touch {marker}"}],
            }
        },
    ],
)
def test_hostile_configs_refused_and_never_run(tmp_path: Path, change: dict[str, Any]) -> None:
    marker = tmp_path / "MARKER"
    text = json.dumps(change).replace("{marker}", str(marker))
    root = _evil(tmp_path, marker, **json.loads(text))
    with pytest.raises(ModelError):
        import_bundle(root, tmp_path / "models")
    assert not marker.exists()
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_pickle_payload_in_model_pt(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    root = make_bundle(tmp_path / "b")
    with open(root / "models" / "model.pt", "wb") as f:
        pickle.dump({"x": _Payload(str(marker))}, f)
    with pytest.raises(ModelError, match="weights-only"):
        import_bundle(root, tmp_path / "models")
    assert not marker.exists()


def test_torchscript_only_is_refused(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b", weights=False)
    (root / "models" / "model.ts").write_bytes(b"PK")
    with pytest.raises(ModelError, match="TorchScript"):
        import_bundle(root, tmp_path / "models")


def test_zip_slip_bundle_refused(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b" / "spleen")
    z = tmp_path / "evil.zip"
    canary = tmp_path / "canary"
    canary.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        for p in root.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(root.parent))
        zf.writestr("../canary/evil.py", "print('x')")
    with pytest.raises(ModelError, match="zip-slip"):
        import_bundle(z, tmp_path / "models")
    assert list(canary.iterdir()) == []
