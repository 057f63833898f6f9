"""The LIDC-IDRI nodule malignancy model's card, reproduced. The card's cross-validation figures
and the shipped calibrator come from the kept out-of-fold rows (``evaluation/rows.json``, one
per nodule, without case names); a fold package scored again through MedView's click pipeline
(segmentation, then malignancy) gives those rows, nodule by nodule. `make test` scores fold 1
(about a fifth of the time); ``MEDVIEW_ALL_FOLDS=1`` scores every fold."""

from __future__ import annotations

import os

import numpy as np
import pytest

from medview.inference.manifest import read_manifest
from tests.models.test_nodule_models import FOLDS, MODELS, _figures, _module

MAL = MODELS / "lung-nodule-malignancy"


def test_card_and_calibrator_come_from_the_kept_rows() -> None:
    train = _module(MAL)
    card = _figures(MAL)
    rows = train.read_kept_rows(MAL / "evaluation" / "rows.json")
    figures, calibration = train.summarize(rows)
    assert figures["nodules"] == 792
    for key in ("roc_auc", "ece", "roc_auc_network_logit", "gradcam_peak_inside", "brier",
                "roc_auc_without_rating_3"):  # fmt: skip
        assert figures[key] == pytest.approx(card[key], abs=1e-6), key
    assert figures["roc_auc_by_fold"] == pytest.approx(card["roc_auc_by_fold"], abs=1e-6)
    print(
        f"\nnodule malignancy, 5-fold patient-level CV through the click pipeline: "
        f"ROC AUC {figures['roc_auc']:.3f} (network alone {figures['roc_auc_network_logit']:.3f}, "
        f"longest diameter alone {figures['roc_auc_diameter_only']:.3f}), "
        f"ECE {figures['ece']:.3f}, Grad-CAM peak inside the radiologists' mask "
        f"{figures['gradcam_peak_inside']:.1%}"
    )
    shipped = read_manifest(MAL).calibration
    assert np.allclose(shipped["coef"], calibration["coef"], atol=1e-6)
    text = (MAL / "MODEL_CARD.md").read_text()
    assert f"**{figures['roc_auc']:.3f}**" in text and f"**{figures['ece']:.3f}**" in text
    # the issue asks 0.93; about 0.92 is what this label reaches here (a finding on the card,
    # beside the longest diameter's own AUC): this guards against a regression below it
    assert figures["roc_auc"] >= 0.90
    assert figures["ece"] <= 0.05


@pytest.mark.parametrize("fold", FOLDS)
def test_a_fold_package_gives_its_kept_rows(fold: int) -> None:
    train = _module(MAL)
    kept = [r for r in train.read_kept_rows(MAL / "evaluation" / "rows.json")
            if r["fold"] == fold - 1]  # fmt: skip
    got = train.evaluate(read_manifest(MAL / "evaluation" / f"fold-{fold}"), fold - 1)
    assert [r["name"] for r in got] == [r["name"] for r in kept]
    scored = [(g, k) for g, k in zip(got, kept, strict=True) if k["logit"] is not None]
    assert all(g["logit"] is not None for g, _ in scored)
    logits = np.array([[g["logit"], k["logit"]] for g, k in scored])
    sizes = np.array([[g["long_axis_mm"], k["long_axis_mm"]] for g, k in scored])
    moved = np.abs(logits[:, 0] - logits[:, 1])
    print(f"\nfold {fold}: {len(got)} nodules scored again, logits within {moved.max():.2e}")
    assert moved.max() < 1e-3
    assert np.allclose(sizes[:, 0], sizes[:, 1], atol=1e-3)
    assert [g["peak_inside"] for g, _ in scored] == [k["peak_inside"] for _, k in scored]
    assert os.environ.get("MEDVIEW_ALL_FOLDS") == "1" or len(FOLDS) == 1
