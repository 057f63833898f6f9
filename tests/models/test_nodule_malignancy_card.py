"""The LIDC-IDRI nodule malignancy model's card, reproduced: every kept fold package scored
again on its held-out patients through MedView's click pipeline (segmentation, then
malignancy), and the cross-validation figures printed."""

from __future__ import annotations

import numpy as np
import pytest

from medview.inference.manifest import read_manifest
from tests.models.test_nodule_models import MODELS, _figures, _module

MAL = MODELS / "lung-nodule-malignancy"


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
