"""The LIDC-IDRI nodule segmentation model's card, reproduced: every kept fold package scored
again on its held-out patients through MedView's click engine, and the cross-validation
figures printed. (The malignancy model's card is `test_nodule_malignancy_card.py`: a file of
its own, so `make test`'s two workers reproduce the two cards at once.)"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from medview.inference.manifest import read_manifest
from tests.conftest import REPO, missing_outside_ci

MODELS = REPO / "models"
SEG = MODELS / "lung-nodule-segmentation"
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


# `make test` scores fold 1's packages again (a fifth of the nodules, a fifth of the time);
# MEDVIEW_ALL_FOLDS=1 scores all five, as `make models` does
FOLDS = (1, 2, 3, 4, 5) if os.environ.get("MEDVIEW_ALL_FOLDS") == "1" else (1,)


@pytest.fixture(scope="module")
def segmentation_scores() -> dict[str, dict]:
    train = _module(SEG)
    return {
        f"fold-{k}": train.evaluate(read_manifest(SEG / "evaluation" / f"fold-{k}"), k - 1)
        for k in FOLDS
    }


def test_segmentation_folds_reproduce_the_card(segmentation_scores: dict[str, dict]) -> None:
    card = _figures(SEG)
    for fold, got in segmentation_scores.items():
        for key in ("dice_mean", "dice_refined_mean"):
            assert got[key] == pytest.approx(card[fold][key], abs=0.005), (fold, key)
    # the card's whole-CV figures from its five folds' kept figures
    segmentation_scores = {f"fold-{k}": card[f"fold-{k}"] for k in range(1, 6)}
    total = sum(s["nodules"] for s in segmentation_scores.values())
    assert total == 792  # every nodule is held out once
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
