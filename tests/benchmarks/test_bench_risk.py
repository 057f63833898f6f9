"""Risk prediction: MedView's JSON model (input checks, 200-member bootstrap interval and
contributions) against scikit-learn's fitted pipeline (probability only), one row and the
whole Framingham table."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from medview.risk.predict import predict, predict_matrix
from medview.risk.registry import SHIPPED, find_risk_model
from tests.benchmarks.common import median_time, print_table

pytestmark = pytest.mark.benchmark


def test_bench_risk() -> None:
    spec = importlib.util.spec_from_file_location(
        "train_chd", SHIPPED / "framingham-chd-10y" / "train.py"
    )
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    rt = sys.modules["risk_training"]
    data, _ = train.load()
    model = find_risk_model("framingham-chd-10y")
    x = rt.transformed(data.x, data.transforms)
    pipe = rt.pipeline(model.evaluation["chosen_C"]).fit(x, data.y)
    row = {
        n: (None if np.isnan(v) else float(v)) for n, v in zip(data.names, data.x[0], strict=True)
    }
    one_ours = median_time(lambda: predict(model, row), repeats=200)
    one_peer = median_time(lambda: pipe.predict_proba(x[:1]), repeats=200)
    all_ours = median_time(lambda: predict_matrix(model, data.x), repeats=20)
    all_peer = median_time(lambda: pipe.predict_proba(x), repeats=20)
    print_table(
        "Risk prediction, Framingham model (median ms)",
        [
            [
                "one row",
                f"{one_ours * 1e3:.3f}",
                f"{one_peer * 1e3:.3f}",
                f"{one_peer / one_ours:.1f}x",
            ],
            [
                "4,240 rows",
                f"{all_ours * 1e3:.3f}",
                f"{all_peer * 1e3:.3f}",
                f"{all_peer / all_ours:.1f}x",
            ],
        ],
        [
            "case",
            "MedView (checks + interval + contributions; rows: point)",
            "scikit-learn pipeline",
            "speed-up",
        ],
    )
