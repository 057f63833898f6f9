"""A tabular risk model package: ``manifest.json`` (outcome, feature schema, risk bands, card,
evaluation figures) and ``coefficients.json`` (a logistic model and its bootstrap ensemble).

Both are plain JSON, read with ``json.loads``: loading a model never executes code. The
coefficients file is checked against the SHA-256 the manifest names, and its feature list must
equal the manifest's, in order, so weights are never applied to the wrong inputs.

The model, on each feature's transformed value ``t_j = T_j(x_j)`` (``T`` is the identity or
``log1p``), is ``logit p = intercept + sum_j coef_j * t_j``: a pipeline's scaler is folded into
the coefficients by the training script.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from medview.core.errors import RiskModelError

MANIFEST_FORMAT = "medview-risk/1"
COEFFICIENTS_FORMAT = "medview-risk-coefficients/1"
TRANSFORMS = ("identity", "log1p")
SOURCE_KINDS = ("dicom", "derived", "measurement", "segmentation", "manual")
DICOM_ATTRIBUTES = ("PatientAge", "PatientSex")
DERIVED = ("bmi",)  # PatientWeight (kg) / PatientSize (m) squared
MAX_FEATURES = 1000
MAX_MEMBERS = 5000


class FeatureKind(Enum):
    CONTINUOUS = "continuous"
    INTEGER = "integer"
    BINARY = "binary"
    ORDINAL = "ordinal"


@dataclass(frozen=True)
class Source:
    """Where a feature's value can come from besides manual entry.

    ``dicom``: ``attribute`` (PatientAge in years, PatientSex through ``mapping``);
    ``derived``: ``attribute`` names a formula (``bmi``); ``measurement``: ``attribute`` names a
    measurement figure (``length_mm``, ``mean``, ``area_mm2`` ...); ``segmentation``:
    ``attribute`` is ``volume_ml`` or ``mean`` of the segment named ``label``."""

    kind: str
    attribute: str = ""
    label: str = ""
    mapping: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "dicom":
            return f"DICOM {self.attribute}"
        if self.kind == "derived" and self.attribute == "bmi":
            return "DICOM PatientWeight / PatientSize²"
        if self.kind == "segmentation":
            return f"segmentation {self.label} {self.attribute}"
        if self.kind == "measurement":
            return f"selected measurement ({self.attribute})"
        return "manual entry"


@dataclass(frozen=True)
class AlternateUnit:
    """A unit users often enter by mistake: ``value_in_model_unit = value * factor``. Used only
    to explain an impossible value; values are never converted silently."""

    unit: str
    factor: float


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    unit: str
    kind: FeatureKind
    description: str
    plausible: tuple[float, float]  # outside: highlighted, explained; the model extrapolates
    possible: tuple[float, float]  # outside: refused (impossible or a unit mistake)
    transform: str = "identity"
    levels: dict[int, str] = field(default_factory=dict)
    sources: tuple[Source, ...] = ()
    alternate_units: tuple[AlternateUnit, ...] = ()

    def display(self, value: float) -> str:
        if self.levels and float(value).is_integer() and int(value) in self.levels:
            return self.levels[int(value)]
        if self.kind in (FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.ORDINAL):
            return f"{value:.0f}"
        return f"{value:.4g}"


@dataclass(frozen=True)
class Band:
    upper: float  # probabilities below this (and at or above the previous band's) fall here
    label: str


@dataclass(frozen=True)
class Coefficients:
    """The fitted model: ``intercept`` + ``coef`` (n,) on transformed features; ``impute`` (n,)
    the training median of each transformed feature (what the fitted pipeline imputes);
    ``reference`` (n,) the training mean of each transformed feature (contributions are
    measured from it); ``quantiles`` (n, q) the training distribution of each transformed
    feature (missing values are drawn from it for the interval); the bootstrap ensemble
    ``member_intercept`` (B,), ``member_coef`` (B, n)."""

    intercept: float
    coef: np.ndarray
    impute: np.ndarray
    reference: np.ndarray
    quantiles: np.ndarray
    member_intercept: np.ndarray
    member_coef: np.ndarray


@dataclass(frozen=True)
class RiskModel:
    id: str
    name: str
    version: str
    folder: Path
    outcome: str  # what the probability is of, in words
    description: str
    features: tuple[Feature, ...]
    coefficients: Coefficients
    bands: tuple[Band, ...]
    threshold: float  # the decision threshold the card's accuracy figures use
    card: Path | None
    weights_sha256: str
    evaluation: dict[str, Any]
    interval_method: str
    # the most missing inputs with which the card still vouches for a band; beyond, the
    # result is the interval alone, marked "insufficient inputs"
    max_missing: int = 10**6
    # the studies the model is offered for first: (modalities, body parts); empty: none
    suits_modalities: tuple[str, ...] = ()
    suits_body_parts: tuple[str, ...] = ()

    def band(self, probability: float) -> str:
        for b in self.bands:
            if probability < b.upper:
                return b.label
        return self.bands[-1].label if self.bands else ""

    def suits(self, modality: str, body_part: str) -> bool:
        """Whether a study of ``modality`` and ``body_part`` is one this model is made for."""
        if not self.suits_modalities or modality.upper() not in self.suits_modalities:
            return False
        return not (self.suits_body_parts and body_part) or (
            body_part.upper() in self.suits_body_parts
        )


def _need(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise RiskModelError(f"{where}: missing {key!r}")
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RiskModelError(f"{where}: {key!r} has the wrong type")
    return value


def _pair(value: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not value[0] < value[1]
    ):
        raise RiskModelError(f"{where}: a range must be [low, high] with low < high")
    return float(value[0]), float(value[1])


def _source(d: Any, where: str) -> Source:
    if not isinstance(d, dict):
        raise RiskModelError(f"{where}: a source must be an object")
    kind = _need(d, "kind", str, where)
    if kind not in SOURCE_KINDS:
        raise RiskModelError(f"{where}: unknown source kind {kind!r}")
    attribute = str(d.get("attribute", ""))
    if kind == "dicom" and attribute not in DICOM_ATTRIBUTES:
        raise RiskModelError(f"{where}: DICOM source {attribute!r} is not one MedView reads")
    if kind == "derived" and attribute not in DERIVED:
        raise RiskModelError(f"{where}: unknown derived value {attribute!r}")
    mapping = d.get("mapping", {})
    if not isinstance(mapping, dict) or not all(
        isinstance(v, int | float) for v in mapping.values()
    ):
        raise RiskModelError(f"{where}: mapping must map codes to numbers")
    codes = {str(k): float(v) for k, v in mapping.items()}
    return Source(kind, attribute, str(d.get("label", "")), codes)


def _feature(d: Any, i: int) -> Feature:
    where = f"feature {i + 1}"
    if not isinstance(d, dict):
        raise RiskModelError(f"{where}: must be an object")
    name = _need(d, "name", str, where)
    where = f"feature {name!r}"
    try:
        kind = FeatureKind(_need(d, "type", str, where))
    except ValueError:
        raise RiskModelError(f"{where}: unknown type {d['type']!r}") from None
    transform = d.get("transform", "identity")
    if transform not in TRANSFORMS:
        raise RiskModelError(f"{where}: unknown transform {transform!r}")
    plausible = _pair(d.get("plausible_range"), f"{where} plausible_range")
    possible = _pair(d.get("possible_range"), f"{where} possible_range")
    if not (possible[0] <= plausible[0] and plausible[1] <= possible[1]):
        raise RiskModelError(f"{where}: the plausible range must lie inside the possible range")
    if transform == "log1p" and possible[0] <= -1:
        raise RiskModelError(f"{where}: log1p needs values above -1")
    levels_raw = d.get("levels", {})
    if not isinstance(levels_raw, dict):
        raise RiskModelError(f"{where}: levels must map values to names")
    try:
        levels = {int(k): str(v) for k, v in levels_raw.items()}
    except ValueError:
        raise RiskModelError(f"{where}: level values must be integers") from None
    sources = tuple(_source(s, where) for s in d.get("sources", []))
    alternates = []
    for a in d.get("alternate_units", []):
        if not isinstance(a, dict) or not isinstance(a.get("factor"), int | float):
            raise RiskModelError(f"{where}: alternate_units need a unit and a numeric factor")
        alternates.append(AlternateUnit(str(a.get("unit", "")), float(a["factor"])))
    return Feature(
        name=name,
        label=str(d.get("label", name)),
        unit=str(d.get("unit", "")),
        kind=kind,
        description=str(d.get("description", "")),
        plausible=plausible,
        possible=possible,
        transform=transform,
        levels=levels,
        sources=sources,
        alternate_units=tuple(alternates),
    )


def _array(d: dict[str, Any], key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        a = np.asarray(d[key], dtype=np.float64)
    except KeyError:
        raise RiskModelError(f"{where}: missing {key!r}") from None
    except (TypeError, ValueError):
        raise RiskModelError(f"{where}: {key!r} must hold numbers") from None
    if a.shape != shape:
        raise RiskModelError(
            f"{where}: {key!r} has shape {list(a.shape)}, the manifest's features need "
            f"{list(shape)}"
        )
    if not np.isfinite(a).all():
        raise RiskModelError(f"{where}: {key!r} holds non-finite numbers")
    a.setflags(write=False)
    return a


def _coefficients(raw: dict[str, Any], names: list[str], where: str) -> Coefficients:
    if raw.get("format") != COEFFICIENTS_FORMAT:
        raise RiskModelError(f"{where}: not a {COEFFICIENTS_FORMAT} file")
    if raw.get("features") != names:
        theirs = raw.get("features")
        detail = f"{len(theirs)} features" if isinstance(theirs, list) else "no feature list"
        raise RiskModelError(
            f"{where}: the weights were fitted on other features ({detail}) than the manifest "
            f"names ({len(names)}); refusing to apply them"
        )
    n = len(names)
    members = raw.get("bootstrap", {})
    if not isinstance(members, dict):
        raise RiskModelError(f"{where}: 'bootstrap' must be an object")
    b = len(members.get("intercept", []))
    if not 0 < b <= MAX_MEMBERS:
        raise RiskModelError(f"{where}: the bootstrap must have 1 to {MAX_MEMBERS} members")
    quantiles = raw.get("quantiles")
    q = 0
    if isinstance(quantiles, list) and quantiles and isinstance(quantiles[0], list):
        q = len(quantiles[0])
    if q < 2:
        raise RiskModelError(f"{where}: 'quantiles' must give at least 2 values per feature")
    intercept = raw.get("intercept")
    if not isinstance(intercept, int | float) or not np.isfinite(intercept):
        raise RiskModelError(f"{where}: 'intercept' must be a number")
    return Coefficients(
        intercept=float(intercept),
        coef=_array(raw, "coef", (n,), where),
        impute=_array(raw, "impute", (n,), where),
        reference=_array(raw, "reference", (n,), where),
        quantiles=_array(raw, "quantiles", (n, q), where),
        member_intercept=_array(members, "intercept", (b,), f"{where} bootstrap"),
        member_coef=_array(members, "coef", (b, n), f"{where} bootstrap"),
    )


def _read_json(path: Path) -> tuple[Any, bytes]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RiskModelError(f"cannot read: {e.strerror or e}", path=path) from None
    try:
        return json.loads(data), data
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RiskModelError(f"not valid JSON ({e})", path=path) from None


def read_risk_model(folder: str | Path) -> RiskModel:
    """Read and check a package folder (or its ``manifest.json``)."""
    folder = Path(folder)
    if folder.name == "manifest.json":
        folder = folder.parent
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise RiskModelError("no manifest.json here: not a risk model package", path=folder)
    m, _ = _read_json(manifest_path)
    where = str(manifest_path)
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise RiskModelError(f"not a {MANIFEST_FORMAT} manifest", path=manifest_path)
    raw_features = _need(m, "features", list, where)
    if not 0 < len(raw_features) <= MAX_FEATURES:
        raise RiskModelError(f"{where}: 1 to {MAX_FEATURES} features")
    features = tuple(_feature(f, i) for i, f in enumerate(raw_features))
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise RiskModelError(f"{where}: feature names repeat")
    weights = _need(m, "weights", dict, where)
    file_name = _need(weights, "file", str, where)
    if Path(file_name).name != file_name:
        raise RiskModelError(f"{where}: the weights file must lie in the package folder")
    raw, data = _read_json(folder / file_name)
    sha = hashlib.sha256(data).hexdigest()
    if sha != weights.get("sha256"):
        raise RiskModelError(
            f"{where}: {file_name} does not match the SHA-256 in the manifest (altered or "
            "replaced weights)"
        )
    if not isinstance(raw, dict):
        raise RiskModelError(f"{file_name}: must be an object", path=folder)
    coefficients = _coefficients(raw, names, str(folder / file_name))
    bands = []
    previous = 0.0
    for b in m.get("bands", []):
        upper = b.get("below", 1.0 + 1e-9) if isinstance(b, dict) else None
        if not isinstance(upper, int | float) or upper <= previous:
            raise RiskModelError(f"{where}: bands must rise ('below' values in order)")
        bands.append(Band(float(upper), str(b.get("label", ""))))
        previous = float(upper)
    card = folder / str(m.get("card", "MODEL_CARD.md"))
    suits = m.get("suits") or {}
    if not isinstance(suits, dict):
        raise RiskModelError(f"{where}: 'suits' must be an object")
    return RiskModel(
        id=_need(m, "id", str, where),
        name=str(m.get("name", m["id"])),
        version=str(m.get("version", "")),
        folder=folder,
        outcome=_need(m, "outcome", str, where),
        description=str(m.get("description", "")),
        features=features,
        coefficients=coefficients,
        bands=tuple(bands),
        threshold=float(m.get("threshold", 0.5)),
        card=card if card.is_file() else None,
        weights_sha256=sha,
        evaluation=dict(m.get("evaluation", {})),
        interval_method=str(m.get("interval", "")),
        max_missing=int(m.get("max_missing", len(features))),
        suits_modalities=tuple(str(x).upper() for x in suits.get("modalities", ())),
        suits_body_parts=tuple(str(x).upper() for x in suits.get("body_parts", ())),
    )
