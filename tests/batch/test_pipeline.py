"""Pipeline files are refused before any work starts, with the line at fault; a good one is
read, hashed by what it runs, and written back from a reading."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from medview.batch.pipeline import Pipeline, pipeline_toml, read_pipeline
from medview.cli import main as medview_main
from medview.core.errors import PipelineError

GOOD = """\
format = "medview-pipeline/1"
name = "chest"

[[select]]
modality = "CT"
description = "chest|thorax"
min_images = 16

[[models]]
id = "chest-ct-segmentation"

[[models]]
id = "chest-ct-lesion-classifier"

[export]
formats = ["summary", "nifti"]
folder = "results"
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def refused(tmp_path: Path, text: str, name: str = "p.toml", **kw) -> PipelineError:
    with pytest.raises(PipelineError) as e:
        read_pipeline(write(tmp_path, text, name), **kw)
    return e.value


def line_of(text: str, needle: str, after: str = "") -> int:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def test_good_pipeline_is_read_and_hashed_by_what_it_runs(tmp_path: Path) -> None:
    p = read_pipeline(write(tmp_path, GOOD))
    assert [m.id for m in p.models] == ["chest-ct-segmentation", "chest-ct-lesion-classifier"]
    assert p.takes("CT", "Chest 5 mm", 61) and not p.takes("CT", "Abdomen", 61)
    assert not p.takes("CT", "chest", 10) and not p.takes("MR", "chest", 61)
    assert p.folder == str((tmp_path / "results").resolve())
    assert dict(p.fingerprint)["chest-ct-segmentation"]  # the weights' SHA-256
    # layout and comments do not change the hash; a step does
    same = read_pipeline(write(tmp_path, "# a comment\n" + GOOD.replace(" = ", "=")))
    assert same.hash == p.hash
    other = read_pipeline(write(tmp_path, GOOD.replace("min_images = 16", "min_images = 17")))
    assert other.hash != p.hash


def test_unknown_model_is_refused_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace('id = "chest-ct-lesion-classifier"', 'id = "chest-ct-lesion-classifer"')
    e = refused(tmp_path, text)
    assert "chest-ct-lesion-classifer" in e.message and e.line == line_of(text, "classifer")
    assert f"p.toml:{e.line}:" in str(e)


def test_malformed_rules_are_refused_with_their_line(tmp_path: Path) -> None:
    for bad, needle in (
        ('description = "chest|thorax"', 'description = "chest[thorax"'),
        ("min_images = 16", "min_images = -3"),
        ('modality = "CT"', 'modality = "C T"'),
        ("min_images = 16", "min_slices = 16"),  # unknown key
    ):
        text = GOOD.replace(bad, needle)
        e = refused(tmp_path, text)
        assert e.line == line_of(text, needle), (needle, e.line, e.message)


def test_toml_and_json_syntax_errors_give_the_line(tmp_path: Path) -> None:
    text = GOOD.replace('name = "chest"', 'name = "chest')
    assert refused(tmp_path, text).line == 2
    data = tomllib.loads(GOOD)
    body = json.dumps(data, indent=1).replace('"CT"', "'CT'")
    e = refused(tmp_path, body, "p.json")
    assert e.line == line_of(body, "'CT'")


def test_a_path_outside_the_allowed_roots_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pipes").mkdir()
    outside = GOOD.replace('folder = "results"', 'folder = "../../elsewhere"')
    e = refused(tmp_path / "pipes", outside)
    assert "outside the allowed folders" in e.message
    assert e.line == line_of(outside, "elsewhere")
    risk = GOOD + '\n[[risk]]\nid = "framingham-chd-10y"\nfeatures = "/etc/passwd"\n'
    e = refused(tmp_path / "pipes", risk)
    assert e.line == line_of(risk, "/etc/passwd")
    # allowed when its folder is named on the command line
    allowed = GOOD.replace('folder = "results"', f'folder = "{tmp_path / "elsewhere"}"')
    p = read_pipeline(write(tmp_path / "pipes", allowed), roots=(tmp_path,))
    assert p.folder == str(tmp_path / "elsewhere")


def test_an_export_folder_blocked_by_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    text = GOOD.replace('folder = "results"', 'folder = "taken/results"')
    e = refused(tmp_path, text)
    assert "cannot be written" in e.message and e.line == line_of(text, "taken/results")


def test_click_models_unknown_exports_and_risk_columns_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace('id = "chest-ct-lesion-classifier"', 'id = "lung-nodule-segmentation"')
    assert "click" in refused(tmp_path, text).message
    text = GOOD.replace('["summary", "nifti"]', '["summary", "dicom"]')
    e = refused(tmp_path, text)
    assert "unknown export 'dicom'" in e.message and e.line == line_of(text, "dicom")
    (tmp_path / "clinical.csv").write_text("mrn,age\nA1,60\n")
    text = GOOD + '\n[[risk]]\nid = "framingham-chd-10y"\nfeatures = "clinical.csv"\n'
    e = refused(tmp_path, text)
    assert "no column 'accession'" in e.message


def test_the_command_refuses_before_any_work(tmp_path: Path, capsys) -> None:
    text = GOOD.replace('id = "chest-ct-segmentation"', 'id = "no-such-model"')
    rc = medview_main(
        ["batch", str(write(tmp_path, text)), str(tmp_path), "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and f"p.toml:{line_of(text, 'no-such-model')}:" in err
    assert not (tmp_path / "out" / "journal.sqlite").exists()


def test_pipeline_file_round_trips(tmp_path: Path) -> None:
    p = read_pipeline(write(tmp_path, GOOD))
    again = read_pipeline(write(tmp_path, pipeline_toml(p), "again.toml"))
    assert isinstance(again, Pipeline) and again.hash == p.hash


def test_a_study_database_search_is_a_cohort(tmp_path: Path, capsys) -> None:
    """``--database`` with the window's search (here: studies with an MR series)."""
    from medview.io.database import StudyDatabase
    from tests.batch.cohort import PIPELINE
    from tests.conftest import DEMO

    with StudyDatabase() as db:  # the user's database, in this test's MedView home
        db.import_paths([str(DEMO)])
    (tmp_path / "p.toml").write_text(PIPELINE)
    out = tmp_path / "out"
    argv = [
        "batch",
        str(tmp_path / "p.toml"),
        "--database",
        "--modality",
        "MR",
        "--out",
        str(out),
        "--engine",
        "sequential",
        "--progress",
        "none",
        "--include-identifiers",
    ]
    assert medview_main(argv) == 0
    import pyarrow.parquet as pq

    (row,) = pq.read_table(out / "results.parquet").to_pylist()
    assert row["modality"] == "MR" and row["patient_id"] == "DEMO-COLIN27"
    assert row["brain-extraction-mr:brain:volume_ml"] > 900
    assert "1 series selected" in capsys.readouterr().err


def test_transient_failures_are_tried_again_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch
) -> None:
    """An I/O error while reading is tried twice more; a third one makes the row's error."""
    from medview.batch import steps
    from medview.batch.inputs import WorkItem
    from medview.io.scan import scan
    from medview.session import StudySession
    from tests.conftest import write_ct

    series = scan([str(d) for d in [write_ct(tmp_path / "ct", n=4)[0].parent]]).series[0]
    item = WorkItem("k", "CT", 4, series=series)
    real = StudySession.read
    calls = []

    def flaky(self, s, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= failures:
            raise OSError(5, "Input/output error")
        return real(self, s, *a, **kw)

    monkeypatch.setattr(StudySession, "read", flaky)
    monkeypatch.setattr(steps.time, "sleep", lambda _: None)
    failures = 2
    loaded = steps.load(item, tmp_path)
    assert isinstance(loaded, steps.Loaded) and loaded.attempts == 3
    calls.clear()
    failures = 3
    failed = steps.load(item, tmp_path)
    assert isinstance(failed, steps.Failed) and failed.attempts == 3 == len(calls)
    assert "Input/output error" in failed.error


def test_risk_model_takes_its_features_from_a_csv_row_matched_to_the_study(
    tmp_path: Path,
) -> None:
    """Patient COHORT000's row gives every feature: the risk equals the model's own worked
    example. Patient COHORT001's row gives two: the risk says which features were missing."""
    import csv

    import pyarrow.parquet as pq

    from tests.batch.cohort import write_cohort
    from tests.conftest import REPO

    example = json.loads((REPO / "models/tabular/framingham-chd-10y/examples.json").read_text())[0]
    write_cohort(tmp_path / "cohort", 2)
    with open(tmp_path / "clinical.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["patient_id", *example["values"]])
        w.writeheader()
        w.writerow({"patient_id": "COHORT000", **example["values"]})
        w.writerow({"patient_id": "COHORT001", "male": "0", "age": "61"})
    text = (
        GOOD.replace('description = "chest|thorax"\n', "").replace(
            'folder = "results"', 'folder = "out"'
        )
        + '\n[[risk]]\nid = "framingham-chd-10y"\nfeatures = "clinical.csv"\n'
        'match = "patient_id"\n'
    )
    argv = [
        "batch",
        str(write(tmp_path, text)),
        str(tmp_path / "cohort"),
        "--engine",
        "sequential",
        "--progress",
        "none",
        "--include-identifiers",
    ]
    assert medview_main(argv) == 0
    rows = {r["patient_id"]: r for r in pq.read_table(tmp_path / "out/results.parquet").to_pylist()}
    given, absent = rows["COHORT000"], rows["COHORT001"]
    assert given["framingham-chd-10y:probability"] == pytest.approx(
        example["probability"], abs=1e-6
    )
    assert given["framingham-chd-10y:low"] <= given["framingham-chd-10y:probability"]
    assert given["framingham-chd-10y:missing"] == ""
    assert "totChol" in absent["framingham-chd-10y:missing"]
    assert absent["framingham-chd-10y:probability"] != given["framingham-chd-10y:probability"]
