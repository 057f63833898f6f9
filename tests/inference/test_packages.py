"""Models are data: packages load only when their hash, class and arguments check out."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from medview.core.errors import ModelError
from medview.inference.loading import load_model, read_weights
from medview.inference.manifest import ModelManifest, read_manifest
from tests.inference.conftest import SEG_NET, random_state, seg_manifest


def test_package_loads_and_card_says_research_use(seg_package: ModelManifest) -> None:
    import torch

    net = load_model(seg_package)
    out = net(torch.zeros(1, 1, 32, 32, 32))
    assert out.shape == (1, 3, 32, 32, 32)
    assert "Research use only, not for diagnosis." in seg_package.card_text
    assert [lb.name for lb in seg_package.labels] == ["soft tissue", "bright"]


def test_flipped_byte_is_refused(seg_package: ModelManifest) -> None:
    path = seg_package.weights_path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(seg_package)


def test_missing_weights_refused(seg_package: ModelManifest) -> None:
    seg_package.weights_path.unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(seg_package)


def _rewrite(folder: Path, **changes: object) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "network",
    [
        {"class": "os.system", "args": {}},
        {"class": "Sequential", "args": {}},
        {"class": "UNet", "args": {"spatial_dims": "$__import__('os').system('touch x')"}},
        {"class": "UNet", "args": {"_target_": "os.system"}},
    ],
)
def test_disallowed_networks_and_expressions(seg_package: ModelManifest, network: dict) -> None:
    _rewrite(seg_package.folder, network=network)
    with pytest.raises(ModelError):
        read_manifest(seg_package.folder)


def test_path_like_weight_names_refused(seg_package: ModelManifest) -> None:
    _rewrite(seg_package.folder, weights={"file": "../x.safetensors", "sha256": "0" * 64})
    with pytest.raises(ModelError, match="plain file name"):
        read_manifest(seg_package.folder)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_pickle_payload_in_pt_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / "model.pt"
    with open(evil, "wb") as f:
        pickle.dump({"weight": _Payload(str(marker))}, f)
    with pytest.raises(ModelError, match="weights-only"):
        read_weights(evil)
    assert not marker.exists()


def test_weights_only_pt_is_accepted(tmp_path: Path) -> None:
    import torch

    torch.save(random_state(SEG_NET), tmp_path / "model.pt")
    state = read_weights(tmp_path / "model.pt")
    assert set(state) == set(random_state(SEG_NET))


def test_registry_lists_valid_and_refused(
    seg_package: ModelManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medview.inference import registry

    monkeypatch.setattr(registry, "SHIPPED", seg_package.folder.parent)
    bad = seg_package.folder.parent / "bad"
    shutil.copytree(seg_package.folder, bad)
    _rewrite(bad, id="bad", network={"class": "eval", "args": {}})
    entries = {e.folder.name: e for e in registry.list_packages()}
    assert entries["tiny-seg"].manifest is not None
    assert entries["bad"].manifest is None and "not allowed" in entries["bad"].error
    assert registry.find_model("tiny-seg").id == "tiny-seg"
    with pytest.raises(ModelError):
        registry.find_model("nope")
    assert seg_manifest()["id"] == "tiny-seg"
