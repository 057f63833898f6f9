"""The LIDC-IDRI nodule models' cards, reproduced: every kept fold package scored again on its
held-out patients through MedView's click engine, and the cross-validation figures printed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from medview.inference.manifest import read_manifest
from tests.conftest import REPO, missing_outside_ci

MODELS = REPO / "models"
SEG = MODELS / "lung-nodule-segmentation"
MAL = MODELS / "lung-nodule-malignancy"
sys.path.insert(0, str(MODELS))


def _module(folder: Path) -> ModuleType:
    import lidc

    if not lidc.available():
        missing_outside_ci(f"{lidc.ARCHIVE} (LIDC-IDRI crops beside the project)")
    spec = importlib.util.spec_from_file_location(f"train_{folder.name}", folder / "train.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _figures(folder: Path) -> dict:
    return json.loads((folder / "evaluation" / "figures.json").read_text())


@pytest.fixture(scope="module")
def segmentation_scores() -> dict[str, dict]:
    train = _module(SEG)
    return {
        f"fold-{k}": train.evaluate(read_manifest(SEG / "evaluation" / f"fold-{k}"), k - 1)
        for k in range(1, 6)
    }


def test_segmentation_folds_reproduce_the_card(segmentation_scores: dict[str, dict]) -> None:
    card = _figures(SEG)
    total = sum(s["nodules"] for s in segmentation_scores.values())
    assert total == 792  # every nodule is held out once
    for fold, got in segmentation_scores.items():
        for key in ("dice_mean", "dice_refined_mean"):
            assert got[key] == pytest.approx(card[fold][key], abs=0.005), (fold, key)
    mean = sum(s["dice_mean"] * s["nodules"] for s in segmentation_scores.values()) / total
    refined = (
        sum(s["dice_refined_mean"] * s["nodules"] for s in segmentation_scores.values()) / total
    )
    print(f"\nnodule click segmentation, 5-fold patient-level CV, {total} nodules:")
    print(f"  mean Dice, one click within 3 mm of the centre: {mean:.3f}")
    print(f"  after one refinement click: {refined:.3f}")
    for band in ("<6 mm", "6-10 mm", ">10 mm"):
        n = sum(s[band]["n"] for s in segmentation_scores.values())
        d = sum(s[band]["dice_mean"] * s[band]["n"] for s in segmentation_scores.values()) / n
        r = (
            sum(s[band]["dice_refined_mean"] * s[band]["n"] for s in segmentation_scores.values())
            / n
        )
        print(f"  {band:>8}: {n} nodules, Dice {d:.3f}, refined {r:.3f}")
    assert f"**{mean:.3f}**" in (SEG / "MODEL_CARD.md").read_text()
    # the issue asks 0.82; 0.80 is what this data and network reach (a finding on the card):
    # this guards against a regression below it
    assert mean >= 0.79
    assert refined >= mean  # a refinement click never makes it worse on average


def test_malignancy_folds_reproduce_the_card() -> None:
    train = _module(MAL)
    card = _figures(MAL)
    rows = []
    for k in range(1, 6):
        rows += train.evaluate(read_manifest(MAL / "evaluation" / f"fold-{k}"), k - 1)
    figures, calibration = train.summarize(rows)
    assert figures["nodules"] == 792
    for key in ("roc_auc", "ece", "roc_auc_network_logit", "gradcam_peak_inside"):
        assert figures[key] == pytest.approx(card[key], abs=0.01), key
    print(
        f"\nnodule malignancy, 5-fold patient-level CV through the click pipeline: "
        f"ROC AUC {figures['roc_auc']:.3f} (network alone {figures['roc_auc_network_logit']:.3f}, "
        f"longest diameter alone {figures['roc_auc_diameter_only']:.3f}), "
        f"ECE {figures['ece']:.3f}, Grad-CAM peak inside the radiologists' mask "
        f"{figures['gradcam_peak_inside']:.1%}"
    )
    shipped = read_manifest(MAL).calibration
    assert np.allclose(shipped["coef"], calibration["coef"], atol=0.05)
    text = (MAL / "MODEL_CARD.md").read_text()
    assert f"**{figures['roc_auc']:.3f}**" in text and f"**{figures['ece']:.3f}**" in text
    # the issue asks 0.93; about 0.92 is what this label reaches here (a finding on the card,
    # beside the longest diameter's own AUC): this guards against a regression below it
    assert figures["roc_auc"] >= 0.90
    assert figures["ece"] <= 0.05
