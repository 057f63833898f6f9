"""Tabular risk models: loading (no code runs), input checks, prediction, interval,
contributions, study prefill and the ``medview risk`` command."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.cli import main as cli_main
from medview.core.errors import RiskInputError, RiskModelError
from medview.risk.model import read_risk_model
from medview.risk.predict import Severity, check_inputs, predict
from medview.risk.registry import SHIPPED, find_risk_model, list_risk_models
from medview.risk.study import SegmentStat, facts_from_file, facts_from_header, prefill
from tests.conftest import edit, write_ct

SHIPPED_IDS = ("breast-mass-malignancy", "framingham-chd-10y")
FULL_CHD_ROW = {
    "male": 1,
    "age": 61,
    "education": 2,
    "currentSmoker": 1,
    "cigsPerDay": 20,
    "BPMeds": 0,
    "prevalentStroke": 0,
    "prevalentHyp": 1,
    "diabetes": 0,
    "totChol": 250,
    "sysBP": 150,
    "diaBP": 92,
    "BMI": 28.5,
    "heartRate": 75,
    "glucose": 90,
}


@pytest.fixture
def chd():  # type: ignore[no-untyped-def]
    return find_risk_model("framingham-chd-10y")


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    dest = tmp_path / "pkg"
    shutil.copytree(SHIPPED / "framingham-chd-10y", dest)
    return dest


def _rehash(folder: Path) -> None:
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["weights"]["sha256"] = hashlib.sha256(
        (folder / "coefficients.json").read_bytes()
    ).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_shipped_models_load_with_cards_and_ranges() -> None:
    entries = {e.folder.name: e for e in list_risk_models()}
    for model_id in SHIPPED_IDS:
        entry = entries[model_id]
        assert entry.error is None and entry.model is not None
        model = entry.model
        assert model.card is not None and "Research use only" in model.card.read_text()
        assert (model.folder / "reliability.png").stat().st_size > 1000
        for f in model.features:
            assert f.description and f.possible[0] <= f.plausible[0] < f.plausible[1]
        assert model.coefficients.member_coef.shape == (200, len(model.features))


@pytest.mark.parametrize("model_id", SHIPPED_IDS)
def test_known_rows_match_the_fitted_pipeline(model_id: str) -> None:
    """examples.json holds rows of the training data with the probability scikit-learn's
    fitted pipeline gave them; MedView's JSON model must give the same."""
    model = find_risk_model(model_id)
    rows = json.loads((model.folder / "examples.json").read_text())
    assert any(None in r["values"].values() for r in rows) or model_id.startswith("breast")
    for row in rows:
        result = predict(model, row["values"])
        assert result.probability == pytest.approx(row["probability"], abs=1e-9)
        assert result.low <= result.probability <= result.high


def test_contributions_sum_to_the_logit(chd) -> None:  # type: ignore[no-untyped-def]
    r = predict(chd, FULL_CHD_ROW)
    logit = math.log(r.probability / (1 - r.probability))
    base = math.log(r.reference_probability / (1 - r.reference_probability))
    assert sum(c.log_odds for c in r.contributions) == pytest.approx(logit - base, abs=1e-9)
    by_name = {c.name: c.log_odds for c in r.contributions}
    assert by_name["age"] > 0 and by_name["sysBP"] > 0  # older and hypertensive: more risk
    older = predict(chd, FULL_CHD_ROW | {"age": 69})
    assert older.probability > r.probability


def test_missing_values_widen_the_interval(chd) -> None:  # type: ignore[no-untyped-def]
    full = predict(chd, FULL_CHD_ROW)
    partial = predict(chd, {k: v for k, v in FULL_CHD_ROW.items() if k in ("male", "age")})
    assert full.missing == () and len(partial.missing) == 13
    assert (partial.high - partial.low) > 2 * (full.high - full.low)
    assert 0 < full.low < full.probability < full.high < 1
    # repeatable: the draws are seeded
    assert predict(chd, {"male": 1, "age": 50}).low == predict(chd, {"male": 1, "age": 50}).low


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"age": "sixty"}, "'sixty' is not a number"),
        ({"totChol": "5.2"}, "looks like mmol/L"),
        ({"glucose": 5.0}, "looks like mmol/L"),
        ({"BMI": 80 / 175**2}, "height in cm"),
        ({"age": 150}, "impossible"),
        ({"male": 2}, "impossible"),
        ({"cigsPerDay": 2.5}, "whole number"),
        ({"education": 0}, "impossible"),
        ({"sysbp": 120}, "not a feature"),
        ({"heartRate": "inf"}, "not a number"),
    ],
)
def test_bad_values_are_refused_with_a_reason(chd, entry, expected) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RiskInputError, match=expected):
        predict(chd, FULL_CHD_ROW | entry)


def test_out_of_range_is_flagged_not_clipped(chd) -> None:  # type: ignore[no-untyped-def]
    values, issues = check_inputs(chd, FULL_CHD_ROW | {"age": 25})
    assert values["age"] == 25.0  # never clipped to the training minimum
    assert [i.severity for i in issues] == [Severity.WARNING]
    r = predict(chd, FULL_CHD_ROW | {"age": 25})
    assert "extrapolates" in r.warnings[0].message
    clipped = predict(chd, FULL_CHD_ROW | {"age": 32})
    assert r.probability < clipped.probability


def test_level_names_and_codes_are_accepted(chd) -> None:  # type: ignore[no-untyped-def]
    p = predict(chd, FULL_CHD_ROW).probability
    assert predict(chd, FULL_CHD_ROW | {"male": "male"}).probability == p
    assert predict(chd, FULL_CHD_ROW | {"male": "M", "currentSmoker": "yes"}).probability == p
    assert predict(chd, FULL_CHD_ROW | {"BMI": "28,5"}).probability == p


def test_altered_weights_are_refused(copied: Path) -> None:
    coefficients = json.loads((copied / "coefficients.json").read_text())
    coefficients["coef"][1] *= 2
    (copied / "coefficients.json").write_text(json.dumps(coefficients))
    with pytest.raises(RiskModelError, match="SHA-256"):
        read_risk_model(copied)


def test_weights_for_other_features_are_refused(copied: Path) -> None:
    manifest = json.loads((copied / "manifest.json").read_text())
    manifest["features"] = manifest["features"][:-1]  # the manifest lost glucose
    (copied / "manifest.json").write_text(json.dumps(manifest))
    _rehash(copied)
    with pytest.raises(RiskModelError, match="other features"):
        read_risk_model(copied)
    coefficients = json.loads((copied / "coefficients.json").read_text())
    coefficients["features"] = coefficients["features"][:-1]
    coefficients["coef"] = coefficients["coef"][:-1]
    (copied / "coefficients.json").write_text(json.dumps(coefficients))
    _rehash(copied)
    with pytest.raises(RiskModelError, match="shape"):
        read_risk_model(copied)


@pytest.mark.parametrize(
    "content",
    [b"\x80\x04\x95pickle", b"{not json", b'{"format": "medview-risk/1"}', b"[]"],
)
def test_unreadable_manifests_are_refused(copied: Path, content: bytes) -> None:
    (copied / "manifest.json").write_bytes(content)
    with pytest.raises(RiskModelError):
        read_risk_model(copied)


def test_unknown_model_names_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(RiskModelError, match="framingham-chd-10y"):
        find_risk_model("no-such-model")
    stray = tmp_path / "model.pkl"
    stray.write_bytes(b"\x80\x04\x95")
    with pytest.raises(RiskModelError, match="not a risk model package"):
        find_risk_model(str(stray))


def test_header_facts_fill_age_sex_and_bmi(chd) -> None:  # type: ignore[no-untyped-def]
    facts = facts_from_header(
        {"PatientAge": "063Y", "PatientSex": "M", "PatientWeight": "80", "PatientSize": "1.75"}
    )
    filled = prefill(chd, facts)
    assert filled.values["age"].value == 63
    assert filled.values["male"].value == 1
    assert filled.values["BMI"].value == pytest.approx(80 / 1.75**2, abs=0.01)
    assert all(v.origin.startswith("from study") for v in filled.values.values())
    assert set(filled.values) == {"age", "male", "BMI"}


def test_header_size_in_centimetres_is_not_used(chd) -> None:  # type: ignore[no-untyped-def]
    facts = facts_from_header({"PatientSex": "F", "PatientWeight": 70, "PatientSize": 168})
    filled = prefill(chd, facts)
    assert "BMI" not in filled.values and filled.values["male"].value == 0
    assert any("centimetres" in n for n in filled.notes)


def test_age_from_birth_and_study_dates() -> None:
    facts = facts_from_header({"PatientBirthDate": "19600301", "StudyDate": "20240229"})
    assert math.floor(facts.age_years or 0) == 63
    assert facts_from_header({"PatientAge": "018M"}).age_years == 1.5


def test_facts_from_a_real_file(tmp_path: Path, chd) -> None:  # type: ignore[no-untyped-def]
    path = write_ct(tmp_path / "ct", n=1)[0]
    edit(path, PatientAge="058Y", PatientSex="F", PatientWeight=64, PatientSize=1.6)
    facts = facts_from_file(path)
    assert (facts.age_years, facts.sex, facts.weight_kg, facts.size_m) == (58, "F", 64, 1.6)
    assert pydicom.dcmread(path).PatientAge == "058Y"  # read only


def test_segmentation_sources(copied: Path) -> None:
    manifest = json.loads((copied / "manifest.json").read_text())
    manifest["features"][9]["sources"] = [
        {"kind": "segmentation", "attribute": "volume_ml", "label": "Lesion"}
    ]
    (copied / "manifest.json").write_text(json.dumps(manifest))
    model = read_risk_model(copied)
    filled = prefill(model, None, [SegmentStat("lesion", 212.5, -20.0)])
    assert filled.values["totChol"].value == 212.5
    assert "segmentation" in filled.values["totChol"].origin


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(text)
    return path


def test_cli_list_and_rows(tmp_path: Path, capsys, chd) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["risk", "--list", "--json"]) == 0
    listed = {m["id"] for m in json.loads(capsys.readouterr().out)}
    assert set(SHIPPED_IDS) <= listed
    header = ",".join(FULL_CHD_ROW)
    row = ",".join(str(v) for v in FULL_CHD_ROW.values())
    rows = _csv(tmp_path, f"{header}\n{row}\n1,50,,,,,,,,,,,,,\n")
    assert cli_main(["risk", "framingham-chd-10y", "--input", str(rows), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["probability"] == pytest.approx(
        predict(chd, FULL_CHD_ROW).probability, abs=1e-6
    )
    assert len(out["rows"][1]["missing"]) == 13
    assert "not for diagnosis" in out["research_use"]
    assert cli_main(["risk", "framingham-chd-10y", "--input", str(rows)]) == 0
    text = capsys.readouterr().out
    assert "row 1:" in text and "95 % interval" in text and "not for diagnosis" in text


def test_cli_bad_rows_get_no_number(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rows = _csv(tmp_path, "age,totChol\n61,5.2\n61,210\nsixty,210\n")
    assert cli_main(["risk", "framingham-chd-10y", "--input", str(rows), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)["rows"]
    assert "mmol/L" in out[0]["error"] and "probability" not in out[0]
    assert 0 < out[1]["probability"] < 1
    assert "not a number" in out[2]["error"]
    assert cli_main(["risk", "nope", "--input", str(rows)]) == 1
    assert "installed" in capsys.readouterr().err
    ragged = _csv(tmp_path, "age,totChol\n61,210,7\n")
    assert cli_main(["risk", "framingham-chd-10y", "--input", str(ragged)]) == 1


def test_risk_results_are_kept_with_the_study(tmp_path: Path) -> None:
    from medview.io.database import StudyDatabase

    db = StudyDatabase(tmp_path / "db.sqlite")
    try:
        db.save_risk_result("1.2.3", "framingham-chd-10y", {"result": {"probability": 0.2}})
        db.save_risk_result("1.2.3", "framingham-chd-10y", {"result": {"probability": 0.3}})
        kept = db.risk_results("1.2.3")
        assert kept == {"framingham-chd-10y": {"result": {"probability": 0.3}}}
        assert db.risk_results("9.9") == {}
    finally:
        db.close()


def test_predict_matrix_equals_predict(chd) -> None:  # type: ignore[no-untyped-def]
    from medview.risk.predict import predict_matrix

    x = np.array([[FULL_CHD_ROW[f.name] for f in chd.features]], dtype=float)
    x2 = x.copy()
    x2[0, -1] = np.nan
    p = predict_matrix(chd, np.vstack([x, x2]))
    assert p[0] == pytest.approx(predict(chd, FULL_CHD_ROW).probability, abs=1e-12)
    partial = {k: v for k, v in FULL_CHD_ROW.items() if k != "glucose"}
    assert p[1] == pytest.approx(predict(chd, partial).probability, abs=1e-12)


def test_an_empty_row_gets_no_prediction(chd, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RiskInputError, match="every feature is missing"):
        predict(chd, {})
    with pytest.raises(RiskInputError, match="every feature is missing"):
        predict(chd, {"age": "", "glucose": "NA"})
    rows = _csv(tmp_path, "age,glucose\n,NA\n")
    assert cli_main(["risk", "framingham-chd-10y", "--input", str(rows), "--json"]) == 1
    assert "every feature is missing" in json.loads(capsys.readouterr().out)["rows"][0]["error"]
