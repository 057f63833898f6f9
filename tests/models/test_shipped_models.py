"""The shipped models: intact weights, card figures reproduced through MedView's own engine on
the held-out data, and a smoke run of each ``train.py``."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from medview.core.paths import sha256_file
from medview.inference.manifest import read_manifest
from tests.conftest import REPO, missing_outside_ci

MODELS = REPO / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if (p / "manifest.json").is_file())


def _training() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "medview_training", MODELS / "medview_training.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _data(*names: str) -> dict[str, Path]:
    """Cached registry data (``python models/medview_training.py fetch``); skip on a laptop
    without it, fail in CI, where ``.ci/run`` fetches it."""
    mt = _training()
    found = {n: mt.cached(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        missing_outside_ci(f"training data {missing} (python models/medview_training.py fetch)")
    return found  # type: ignore[return-value]


def _train_module(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"train_{folder.name}", folder / "train.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_models_are_shipped() -> None:
    assert {p.name for p in SHIPPED} >= {
        "brain-extraction-mr",
        "chest-ct-segmentation",
        "chest-ct-lesion-classifier",
    }


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_weights_match_manifest_and_card_is_complete(folder: Path) -> None:
    m = read_manifest(folder)
    assert sha256_file(m.weights_path) == m.weights_sha256
    assert m.weights_path.stat().st_size <= 20 * 1024 * 1024
    card = m.card_text
    assert "Research use only, not for diagnosis" in card
    for heading in ("## Intended use", "## Training data", "## Evaluation", "## Known limits"):
        assert heading in card, heading
    assert "(not yet trained)" not in card
    assert (folder / "train.py").is_file()


def _card_figure(folder: Path, name: str) -> float:
    match = re.search(rf"\| {name} \| \*\*([0-9.]+)\*\* \|", (folder / "MODEL_CARD.md").read_text())
    assert match, f"no headline {name} in the card"
    return float(match.group(1))


def test_brain_extraction_reproduces_card_dice() -> None:
    """The shipped weights, through MedView's engine, on the held-out ITK subject."""
    _data("KmeansTest_T1UCharRaw.nii.gz", "KmeansTest_T1RawSkullStrip.nii.gz")
    folder = MODELS / "brain-extraction-mr"
    figures = _train_module(folder).evaluate(read_manifest(folder))
    assert figures["dice"] == pytest.approx(_card_figure(folder, "Dice"), abs=0.005)
    assert figures["dice"] >= 0.90  # the target


def _fold_figures(folder: Path) -> dict[str, dict[str, float]]:
    return json.loads((folder / "evaluation" / "figures.json").read_text())


@pytest.mark.parametrize("fold", ["fold-1", "fold-2"])
def test_chest_segmentation_folds_reproduce_card(fold: str) -> None:
    """Each fold's package (trained on one real case) on the other, held-out case."""
    _data("lung1_image.nrrd", "lung1_label.nrrd", "lung2_image.nrrd", "lung2_label.nrrd")
    folder = MODELS / "chest-ct-segmentation"
    train = _train_module(folder)
    card = _fold_figures(folder)[fold]
    got = train.evaluate(read_manifest(folder / "evaluation" / fold), train.FOLDS[fold][1])
    for key in ("lesion_dice", "lung_dice", "bone_dice", "body_dice"):
        assert got[key] == pytest.approx(card[key], abs=0.005), key
    # counts may move by one where a component sits at a size or contact threshold and another
    # CPU rounds differently
    assert abs(got["false_positive_components"] - card["false_positive_components"]) <= 1
    text = (folder / "MODEL_CARD.md").read_text()
    assert f"**{card['lesion_dice']:.3f}**" in text and f"**{card['lung_dice']:.3f}**" in text
    assert got["lung_dice"] >= 0.9  # lungs on an unseen case, against the classical labels


@pytest.mark.parametrize("fold", ["fold-1", "fold-2"])
def test_lesion_classifier_folds_reproduce_card(fold: str) -> None:
    """Slice AUC and Grad-CAM peaks of each fold's package on the held-out case."""
    _data("lung1_image.nrrd", "lung1_label.nrrd", "lung2_image.nrrd", "lung2_label.nrrd")
    folder = MODELS / "chest-ct-lesion-classifier"
    train = _train_module(folder)
    card = _fold_figures(folder)[fold]
    got = train.evaluate(read_manifest(folder / "evaluation" / fold), train.FOLDS[fold][1])
    assert got["auc"] == pytest.approx(card["auc"], abs=0.01)
    assert abs(got["peak_inside"] - card["peak_inside"]) <= 1  # one slice's peak may move
    assert f"**{card['auc']:.3f}**" in (folder / "MODEL_CARD.md").read_text()


def test_brain_model_zoo_bundle_gives_identical_output(tmp_path: Path) -> None:
    """The brain model's Model-Zoo form (configs/, models/model.pt) imported through the
    bundle path segments the demo MR exactly as the package does."""
    import numpy as np
    from monai.bundle import ConfigParser

    from medview.inference.bundle import import_bundle
    from medview.inference.loading import load_model
    from medview.inference.runner import segment
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from tests.conftest import DEMO_MR

    folder = MODELS / "brain-extraction-mr"
    shipped = read_manifest(folder)
    imported = import_bundle(folder, tmp_path / "models")
    for field in (
        "network_class",
        "network_args",
        "orientation",
        "spacing",
        "intensity",
        "roi_size",
        "overlap",
        "largest_component",
        "modality",
        "task",
    ):
        assert getattr(imported, field) == getattr(shipped, field), field
    assert [(lb.value, lb.name) for lb in imported.labels] == [(1, "brain")]
    # MONAI's own parser builds the bundle's network, and model.pt loads into it
    import torch

    parser = ConfigParser()
    parser.read_config(str(folder / "configs" / "inference.json"))
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(folder / "models" / "model.pt", weights_only=True))
    ref = load_model(shipped).state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in net.state_dict().items())

    vol = load_series(scan([DEMO_MR]).series[0])
    a = segment(vol, shipped, device="cpu")
    b = segment(vol, imported, device="cpu")
    assert np.array_equal(a.labels.array, b.labels.array)
    assert a.stats[0].volume_ml == b.stats[0].volume_ml > 1000


@pytest.mark.parametrize("script", sorted(MODELS.glob("*/train.py")), ids=lambda p: p.parent.name)
def test_train_script_smoke_run(script: Path, tmp_path: Path) -> None:
    _data("ch2.nii.gz", "ch2bet.nii.gz", "lung1_image.nrrd", "lung1_label.nrrd")
    r = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "smoke run" in r.stdout
