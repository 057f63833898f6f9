"""Checking inputs and predicting: a probability, a 95 % interval and exact contributions.

Input checks never change a value. Text that is not a number, a value outside the feature's
possible range (often a unit mistake, which the message names) or a non-integer where an
integer is needed is an error and there is no prediction. A value outside the plausible range
(the range the model was trained on) is a warning: the prediction is made, flagged as an
extrapolation.

Interval: each of the B bootstrap models (refits on resampled training rows) predicts; a
missing value is drawn, per model, from the training distribution of that feature (a
quantile picked at random; a fixed seed makes it repeatable). The 2.5th and 97.5th
percentiles of the B probabilities are the interval (widened, if need be, to hold the point
estimate), so missing values widen it. The point estimate is the fitted model with the
training median imputed, exactly what the fitted pipeline predicts.

Contributions (log-odds): ``coef_j * (t_j - reference_j)``, where ``reference`` is the mean
training patient. They sum exactly to ``logit p - logit p_reference``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from medview.core.errors import RiskInputError
from medview.risk.model import Feature, FeatureKind, RiskModel

RESEARCH_USE = "Research use only, not for diagnosis."
# the band of a result with more missing inputs than the model card allows
INSUFFICIENT = "insufficient inputs"
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "none", "null", "missing", "?", "-", "—"})
SEED = 20261124
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


class Severity(Enum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Issue:
    feature: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Contribution:
    name: str
    label: str
    value: float | None  # the entered value, None when missing
    shown: str  # the value as shown (level name or number; "missing (median)": imputed)
    log_odds: float


@dataclass(frozen=True)
class RiskResult:
    model_id: str
    model_version: str
    outcome: str
    probability: float
    low: float
    high: float
    band: str
    reference_probability: float
    contributions: tuple[Contribution, ...]
    missing: tuple[str, ...]
    warnings: tuple[Issue, ...]
    weights_sha256: str
    research_use: str = RESEARCH_USE

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "version": self.model_version,
            "outcome": self.outcome,
            "probability": round(self.probability, 6),
            "interval_95": [round(self.low, 6), round(self.high, 6)],
            "band": self.band,
            "reference_probability": round(self.reference_probability, 6),
            "contributions_log_odds": {c.name: round(c.log_odds, 6) for c in self.contributions},
            "missing": list(self.missing),
            "warnings": [{"feature": i.feature, "message": i.message} for i in self.warnings],
            "weights_sha256": self.weights_sha256,
            "research_use": self.research_use,
        }


def _sigmoid(z: np.ndarray | float) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _unit_hint(f: Feature, value: float) -> str:
    for alt in f.alternate_units:
        converted = value * alt.factor
        if f.plausible[0] <= converted <= f.plausible[1]:
            return (
                f"; it looks like {alt.unit} — {value:g} {alt.unit} is {converted:.4g} {f.unit}. "
                f"Enter the value in {f.unit}"
            )
    return ""


def parse_value(f: Feature, raw: object) -> tuple[float | None, Issue | None]:
    """One entered value: a float, None for missing, or an error Issue. Level names
    (``male``, ``yes``) are accepted for binary and ordinal features."""
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, int | float):
        value = float(raw)
        if math.isnan(value):
            return None, None
    else:
        text = str(raw).strip()
        if text.lower() in MISSING_TEXT:
            return None, None
        by_name = {v.lower(): k for k, v in f.levels.items()}
        if f.kind is FeatureKind.BINARY:
            by_name |= {"yes": 1, "no": 0, "true": 1, "false": 0}
        for source in f.sources:  # codes such as DICOM's M/F
            by_name |= {k.lower(): int(v) for k, v in source.mapping.items()}
        if text.lower() in by_name:
            return float(by_name[text.lower()]), None
        if not _NUMBER.match(text):
            return None, Issue(f.name, Severity.ERROR, f"{f.label}: {text!r} is not a number")
        value = float(text.replace(",", "."))
    if not math.isfinite(value):
        return None, Issue(f.name, Severity.ERROR, f"{f.label}: {value} is not a finite number")
    return value, None


def check_value(f: Feature, value: float) -> Issue | None:
    """Range and type checks of one parsed value (the value itself is never changed)."""
    unit = f" {f.unit}" if f.unit else ""
    lo, hi = f.possible
    if not lo <= value <= hi:
        return Issue(
            f.name,
            Severity.ERROR,
            f"{f.label}: {value:g}{unit} is impossible (possible {lo:g}–{hi:g}{unit})"
            + _unit_hint(f, value),
        )
    if f.kind is not FeatureKind.CONTINUOUS and not float(value).is_integer():
        return Issue(f.name, Severity.ERROR, f"{f.label}: must be a whole number, not {value:g}")
    if f.kind is FeatureKind.BINARY and value not in (0.0, 1.0):
        return Issue(f.name, Severity.ERROR, f"{f.label}: must be 0 or 1")
    if f.levels and f.kind is FeatureKind.ORDINAL and int(value) not in f.levels:
        allowed = ", ".join(f"{k} = {v}" for k, v in sorted(f.levels.items()))
        return Issue(f.name, Severity.ERROR, f"{f.label}: must be one of {allowed}")
    lo, hi = f.plausible
    if not lo <= value <= hi:
        return Issue(
            f.name,
            Severity.WARNING,
            f"{f.label}: {value:g}{unit} is outside the range the model was trained on "
            f"({lo:g}–{hi:g}{unit}); the prediction extrapolates",
        )
    return None


def check_inputs(
    model: RiskModel, raw: Mapping[str, object]
) -> tuple[dict[str, float | None], list[Issue]]:
    """Parse and check every feature's entry (absent keys are missing values). Unknown keys
    are an error: a misspelt column must not pass as a missing value."""
    issues: list[Issue] = []
    known = {f.name for f in model.features}
    for key in raw:
        if key not in known:
            issues.append(
                Issue(str(key), Severity.ERROR, f"{key!r} is not a feature of {model.id}")
            )
    values: dict[str, float | None] = {}
    for f in model.features:
        value, issue = parse_value(f, raw.get(f.name))
        if issue is None and value is not None:
            issue = check_value(f, value)
        if issue is not None:
            issues.append(issue)
        values[f.name] = value
    if all(v is None for v in values.values()):
        # the training average dressed up as a patient's risk: refused
        issues.append(Issue("", Severity.ERROR, "no values entered: every feature is missing"))
    return values, issues


def _transformed(model: RiskModel, x: np.ndarray) -> np.ndarray:
    """Rows (n, features) in the manifest's order, NaN for missing -> the model's inputs:
    each feature's transform applied, missing values set to the training median."""
    t = np.array(x, dtype=np.float64)
    log = [j for j, f in enumerate(model.features) if f.transform == "log1p"]
    t[:, log] = np.log1p(t[:, log])
    return np.where(np.isnan(t), model.coefficients.impute, t)


def predict(model: RiskModel, raw: Mapping[str, object]) -> RiskResult:
    """Check ``raw`` (feature name -> number, text or None) and predict. Raises
    `RiskInputError` listing every error; warnings travel with the result."""
    values, issues = check_inputs(model, raw)
    errors = [i for i in issues if i.severity is Severity.ERROR]
    if errors:
        raise RiskInputError("; ".join(i.message for i in errors))
    return predict_checked(model, values, tuple(issues))


def predict_checked(
    model: RiskModel, values: Mapping[str, float | None], warnings: tuple[Issue, ...] = ()
) -> RiskResult:
    """Predict from values `check_inputs` has parsed and found free of errors (its
    ``warnings`` travel with the result)."""
    c = model.coefficients
    x = np.array([np.nan if values[f.name] is None else values[f.name] for f in model.features])
    missing = np.isnan(x)
    t = _transformed(model, x[None, :])[0]
    logit = c.intercept + float(c.coef @ t)
    base = c.intercept + float(c.coef @ c.reference)
    contributions = []
    for j, f in enumerate(model.features):
        v = values[f.name]
        shown = "missing (median)" if v is None else f.display(v)
        contributions.append(
            Contribution(f.name, f.label, v, shown, float(c.coef[j] * (t[j] - c.reference[j])))
        )
    # the interval: bootstrap members, each with its own draw of the missing values
    mc, mi = c.member_coef, c.member_intercept
    tm = np.broadcast_to(t, mc.shape).copy()
    if missing.any():
        rng = np.random.default_rng(SEED)
        q = c.quantiles.shape[1]
        for k in np.flatnonzero(missing):
            tm[:, k] = c.quantiles[k, rng.integers(0, q, size=len(mi))]
    member_p = _sigmoid(mi + np.einsum("bn,bn->b", mc, tm))
    low, high = (float(v) for v in np.percentile(member_p, [2.5, 97.5]))
    probability = float(_sigmoid(logit))
    return RiskResult(
        model_id=model.id,
        model_version=model.version,
        outcome=model.outcome,
        probability=probability,
        low=min(low, probability),
        high=max(high, probability),
        band=model.band(probability) if int(missing.sum()) <= model.max_missing else INSUFFICIENT,
        reference_probability=float(_sigmoid(base)),
        contributions=tuple(contributions),
        missing=tuple(f.name for f, m in zip(model.features, missing, strict=True) if m),
        warnings=tuple(i for i in warnings if i.severity is Severity.WARNING),
        weights_sha256=model.weights_sha256,
    )


def predict_matrix(model: RiskModel, x: np.ndarray) -> np.ndarray:
    """Point probabilities of many rows (n, features) in the manifest's feature order, NaN
    for missing; no checks (for evaluation scripts and tests)."""
    c = model.coefficients
    return np.asarray(_sigmoid(c.intercept + _transformed(model, x) @ c.coef))
