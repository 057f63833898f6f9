"""Training and evaluation shared by the tabular risk models (needs scikit-learn: the ``test``
extra). A model is a scikit-learn pipeline -- median imputation, standardisation, logistic
regression whose L2 strength is chosen by an inner 5-fold cross-validation on log loss -- saved
as JSON coefficients (the scaler folded in) with a bootstrap ensemble for the interval; no
Python objects are serialised.

Evaluation: 10 x repeated stratified 10-fold cross-validation of the *whole* procedure
(including the choice of the L2 strength), metrics on each repeat's out-of-fold predictions,
reported as mean, SD, min and max over the 10 repeats; a reliability diagram of all
out-of-fold predictions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
BOOTSTRAP = 200
SEED = 0
ECE_BINS = 10


@dataclass
class Data:
    x: np.ndarray  # (n, features), NaN = missing, raw units
    y: np.ndarray  # (n,) 0/1, 1 = the outcome
    names: list[str]
    transforms: list[str]


def transformed(data_x: np.ndarray, transforms: list[str]) -> np.ndarray:
    t = np.array(data_x, dtype=np.float64)
    for j, name in enumerate(transforms):
        if name == "log1p":
            t[:, j] = np.log1p(t[:, j])
    return t


def pipeline(c: float | None = None, seed: int = SEED) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if c is None:
        inner = StratifiedKFold(5, shuffle=True, random_state=seed)
        lr: Any = LogisticRegressionCV(
            Cs=list(CS),
            cv=inner,
            scoring="neg_log_loss",
            max_iter=5000,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
        )
    else:
        lr = LogisticRegression(C=c, max_iter=5000)
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), lr)


def fitted_c(pipe: Any) -> float:
    lr = pipe[-1]
    return float(np.ravel(lr.C_)[0]) if hasattr(lr, "C_") else float(lr.C)


def folded(pipe: Any) -> tuple[float, np.ndarray]:
    """(intercept, coef) on transformed features with the scaler folded in."""
    scaler, lr = pipe[1], pipe[-1]
    w = lr.coef_[0] / scaler.scale_
    return float(lr.intercept_[0] - w @ scaler.mean_), w


def ece(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error with equal-width bins."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    pred = (p >= threshold).astype(int)
    return {
        "accuracy": accuracy_score(y, pred),
        "recall": recall_score(y, pred, zero_division=0),
        "specificity": recall_score(1 - y, 1 - pred, zero_division=0),
        "precision": precision_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
        "roc_auc": roc_auc_score(y, p),
        "brier": brier_score_loss(y, p),
        "ece": ece(y, p),
    }


def cross_validate(
    data: Data, repeats: int = 10, folds: int = 10, threshold: float = 0.5
) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray, float]:
    """Repeated stratified k-fold of the whole procedure. Returns per-metric summaries,
    the pooled out-of-fold probabilities and outcomes, and the seconds taken."""
    from sklearn.model_selection import StratifiedKFold

    t0 = time.perf_counter()
    x = transformed(data.x, data.transforms)
    per_repeat: dict[str, list[float]] = {}
    all_p, all_y = [], []
    for r in range(repeats):
        p = np.zeros(len(data.y))
        split = StratifiedKFold(folds, shuffle=True, random_state=r)
        for train, test in split.split(x, data.y):
            pipe = pipeline(seed=r).fit(x[train], data.y[train])
            p[test] = pipe.predict_proba(x[test])[:, 1]
        for k, v in metrics(data.y, p, threshold).items():
            per_repeat.setdefault(k, []).append(float(v))
        all_p.append(p)
        all_y.append(data.y)
    summary = {
        k: {
            "mean": float(np.mean(v)),
            "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "min": float(np.min(v)),
            "max": float(np.max(v)),
        }
        for k, v in per_repeat.items()
    }
    return summary, np.concatenate(all_p), np.concatenate(all_y), time.perf_counter() - t0


def reliability(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append(
                {
                    "bin": b,
                    "n": int(m.sum()),
                    "mean_predicted": float(p[m].mean()),
                    "observed": float(y[m].mean()),
                }
            )
    return out


def draw_reliability(path: Path, table: list[dict[str, float]], title: str) -> None:
    """The reliability diagram as a PNG (Qt's painter, offscreen)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen

    _app = QGuiApplication.instance() or QGuiApplication([])
    size, margin = 520, 64
    img = QImage(size, size, QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setFont(QFont("DejaVu Sans", 10))
    plot = QRectF(margin, 40, size - margin - 20, size - margin - 40)

    def at(px: float, py: float) -> QPointF:
        return QPointF(plot.left() + px * plot.width(), plot.bottom() - py * plot.height())

    p.setPen(QPen(QColor("#bbbbbb"), 1, Qt.PenStyle.DashLine))
    p.drawLine(at(0, 0), at(1, 1))
    p.setPen(QPen(QColor("black"), 1))
    p.drawRect(plot)
    for k in range(6):
        v = k / 5
        p.drawText(at(v, 0) + QPointF(-10, 18), f"{v:.1f}")
        p.drawText(at(0, v) + QPointF(-34, 4), f"{v:.1f}")
    p.drawText(QRectF(0, size - 22, size, 20), Qt.AlignmentFlag.AlignCenter, "mean predicted")
    p.save()
    p.translate(14, size / 2)
    p.rotate(-90)
    p.drawText(QRectF(-100, -10, 200, 20), Qt.AlignmentFlag.AlignCenter, "observed frequency")
    p.restore()
    p.drawText(QRectF(0, 8, size, 24), Qt.AlignmentFlag.AlignCenter, title)
    total = sum(row["n"] for row in table)
    p.setPen(QPen(QColor("#1f77b4"), 2))
    points = [at(row["mean_predicted"], row["observed"]) for row in table]
    for a, b in itertools.pairwise(points):
        p.drawLine(a, b)
    p.setBrush(QColor("#1f77b4"))
    for row, pt in zip(table, points, strict=True):
        r = 3 + 9 * math.sqrt(row["n"] / total)
        p.drawEllipse(pt, r, r)
        p.setPen(QColor("#444444"))
        p.drawText(pt + QPointF(r + 3, 14), f"n={row['n']}")
        p.setPen(QPen(QColor("#1f77b4"), 2))
    p.end()
    img.save(str(path))


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1) + "\n").encode()


def fit_package(data: Data, seed: int = SEED) -> tuple[dict[str, Any], float, Any]:
    """The shipped model's coefficients file (as a dict), the chosen L2 strength C and the
    fitted scikit-learn pipeline."""
    x = transformed(data.x, data.transforms)
    main = pipeline(seed=seed).fit(x, data.y)
    c = fitted_c(main)
    intercept, coef = folded(main)
    rng = np.random.default_rng(seed)
    m_int, m_coef = [], []
    for _ in range(BOOTSTRAP):
        rows = rng.integers(0, len(data.y), len(data.y))
        member = pipeline(c).fit(x[rows], data.y[rows])
        b0, w = folded(member)
        m_int.append(b0)
        m_coef.append(w.tolist())
    quantiles = np.nanpercentile(x, np.linspace(0, 100, 101), axis=0).T
    coefficients = {
        "format": "medview-risk-coefficients/1",
        "features": data.names,
        "intercept": intercept,
        "coef": coef.tolist(),
        "impute": main[0].statistics_.tolist(),
        "reference": main[1].mean_.tolist(),
        "quantiles": quantiles.tolist(),
        "bootstrap": {"intercept": m_int, "coef": m_coef},
    }
    return coefficients, c, main


def print_summary(summary: dict[str, dict[str, float]]) -> None:
    for k, v in summary.items():
        print(f"{k:12s} {fmt(v, percent=False)}")


def fit_and_write(
    folder: Path, data: Data, y: np.ndarray, p: np.ndarray, title: str
) -> tuple[float, Any, str, list[dict[str, float]]]:
    """Fit the shipped model, write ``coefficients.json`` and the reliability diagram of the
    out-of-fold predictions ``p`` (outcomes ``y``). Returns C, the fitted pipeline, the
    coefficients' SHA-256 and the reliability table."""
    folder.mkdir(parents=True, exist_ok=True)
    coefficients, c, pipe = fit_package(data)
    sha = write_json(folder / "coefficients.json", coefficients)
    table = reliability(y, p)
    draw_reliability(folder / "reliability.png", table, title)
    return c, pipe, sha, table


def write_manifest(
    folder: Path,
    identity: dict[str, str],
    features: list[dict[str, Any]],
    sha: str,
    bands: list[tuple[float | None, str]],
    threshold: float,
    evaluation: dict[str, Any],
    max_missing: int,
    suits: dict[str, list[str]],
) -> None:
    """``manifest.json``: ``identity`` holds id, name, version, outcome and description;
    ``bands`` are (upper probability or None for the last, label); ``max_missing``: the most
    missing inputs with which a band is still shown; ``suits``: the studies (modalities, body
    parts) the panel offers the model for first."""
    manifest = {
        "format": "medview-risk/1",
        **identity,
        "features": features,
        "weights": {"file": "coefficients.json", "sha256": sha},
        "bands": [
            {"label": label} if upper is None else {"below": upper, "label": label}
            for upper, label in bands
        ],
        "threshold": threshold,
        "max_missing": max_missing,
        "suits": suits,
        "interval": f"{BOOTSTRAP} bootstrap refits; missing values drawn from the training "
        "distribution",
        "card": "MODEL_CARD.md",
        "evaluation": evaluation,
    }
    write_json(folder / "manifest.json", manifest)


def write_json(path: Path, obj: Any) -> str:
    """Atomic write; returns the SHA-256 of the bytes written."""
    data = _dump(obj)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def examples(data: Data, pipe: Any, rows: list[int]) -> list[dict[str, Any]]:
    """Known rows with the probability the fitted scikit-learn pipeline gives them (tests
    check MedView's JSON model reproduces them)."""
    p = pipe.predict_proba(transformed(data.x, data.transforms))[:, 1]
    return [
        {
            "row": int(i),
            "values": {
                n: (None if np.isnan(v) else float(v))
                for n, v in zip(data.names, data.x[i], strict=True)
            },
            "outcome": int(data.y[i]),
            "probability": float(p[i]),
        }
        for i in rows
    ]


def fmt(summary: dict[str, float], percent: bool = True) -> str:
    if percent:
        return (
            f"{100 * summary['mean']:.1f} % (SD {100 * summary['sd']:.1f}; "
            f"{100 * summary['min']:.1f}–{100 * summary['max']:.1f})"
        )
    return (
        f"{summary['mean']:.4f} (SD {summary['sd']:.4f}; {summary['min']:.4f}–{summary['max']:.4f})"
    )


def write_card(folder: Path, text: str) -> None:
    tmp = folder / "MODEL_CARD.md.tmp"
    tmp.write_text(text)
    tmp.replace(folder / "MODEL_CARD.md")


def main_args(argv: list[str]) -> dict[str, Any]:
    """``--quick``: 1 x 10-fold instead of 10 x 10 (a smoke run; shipped files are not
    touched unless ``--out`` is given)."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    return {"quick": args.quick, "out": args.out}
