"""What a user gets from `make run`: a virtual environment with MedView's runtime dependencies
and nothing from the test extra. From it, every shipped model runs through `medview run-model`
on volumes larger than 8.4 M voxels, the demo export works, and the window starts.

`make test` builds that environment (`.venv-runtime`) and names its interpreter in
``MEDVIEW_RUNTIME_PYTHON``; without it these tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.gpu_check import demo_tumour_click
from tests.conftest import DEMO_CT, DEMO_MR, REPO, missing_outside_ci


@pytest.fixture(scope="module")
def runtime() -> Path:
    python = os.environ.get("MEDVIEW_RUNTIME_PYTHON")
    if not python or not Path(python).is_file():
        missing_outside_ci("the runtime-only environment (make test builds .venv-runtime)")
    return Path(python)


def medview(
    runtime: Path, *args: str, home: Path, timeout: int = 600
) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDVIEW_HOME": str(home), "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(
        [str(runtime.parent / "medview"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_big_head(folder: Path) -> Path:
    """The demo T1 (Colin27, 181 x 217 x 181 at 1 mm) in a whole-head field of view of
    181 x 256 x 256 voxels (11.9 M), written as an MR series into ``folder``: the size of an
    ordinary 1 mm head scan, above the 8.4 M voxels where a dangling SimpleITK view used to
    crash."""
    from medview.core.geometry import Geometry
    from medview.export.series_writer import SeriesInfo, write_series
    from medview.io.loader import load_series
    from medview.io.scan import scan

    v = load_series(scan([str(DEMO_MR)]).series[0])
    z, y, x = v.shape
    big = np.zeros((z, 256, 256), dtype=np.uint16)
    y0, x0 = (256 - y) // 2, (256 - x) // 2
    big[:, y0 : y0 + y, x0 : x0 + x] = v.array
    g = v.geometry
    direction = np.asarray(g.direction)
    origin = np.asarray(g.affine)[:3, 3] - direction @ (np.array([x0, y0, 0.0]) * g.spacing)
    write_series(
        big,
        Geometry(shape=big.shape, origin=tuple(origin), spacing=g.spacing, direction=direction),
        folder,
        SeriesInfo(seed="big-head", modality="MR", body_part="HEAD", series_description="T1 3D"),
    )
    return folder


@pytest.fixture(scope="module")
def big_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_head(tmp_path_factory.mktemp("big-head"))


def test_runtime_environment_has_no_test_extra(runtime: Path) -> None:
    for test_only in ("pytest", "sklearn", "psutil"):
        r = subprocess.run([str(runtime), "-c", f"import {test_only}"], capture_output=True)
        assert r.returncode != 0, f"{test_only} is in the runtime environment"


def shipped_models(runtime: Path, home: Path) -> list[dict[str, object]]:
    r = medview(runtime, "models", "list", "--json", home=home)
    assert r.returncode == 0, r.stderr
    rows = [m for m in json.loads(r.stdout) if not m["refused"]]
    assert {
        "brain-extraction-mr",
        "chest-ct-segmentation",
        "chest-ct-lesion-classifier",
        "lung-nodule-segmentation",
        "lung-nodule-malignancy",
    } <= {str(m["id"]) for m in rows}
    return rows


def test_every_shipped_model_runs_on_a_large_volume(
    runtime: Path, big_head: Path, tmp_path: Path
) -> None:
    data = {"CT": DEMO_CT, "MR": big_head}  # 61 x 512 x 512 (16.0 M) and 11.9 M voxels
    for m in shipped_models(runtime, tmp_path / "home"):
        out = tmp_path / str(m["id"])
        click = ("--click", demo_tumour_click()) if str(m["task"]).startswith("click") else ()
        r = medview(
            runtime,
            "run-model",
            str(m["id"]),
            str(data[str(m["modality"])]),
            "--out",
            str(out),
            *click,
            home=tmp_path / "home",
        )
        assert r.returncode == 0, f"{m['id']} exit {r.returncode}:\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["research_use"]
        if m["task"] in ("segmentation", "click-segmentation"):
            assert any(lb["voxels"] > 0 for lb in summary["labels"]), m["id"]
        if m["task"] == "click-classification":
            assert 0 <= summary["malignant"] <= 1, m["id"]


def test_demo_export_from_the_runtime_install(runtime: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    seg = tmp_path / "seg"
    r = medview(
        runtime, "run-model", "chest-ct-segmentation", str(DEMO_CT), "--out", str(seg), home=home
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "export"
    r = medview(
        runtime,
        "export",
        str(DEMO_CT),
        "--seg",
        str(seg / "labels.nii.gz"),
        "--out",
        str(out),
        "--json",
        home=home,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    written = [p.suffix for p in out.rglob("*") if p.is_file()]
    assert ".pdf" in written and ".dcm" in written


REPORT_SCRIPT = """
import json, sys
from medview.export.content import ExportOptions
from medview.io.database import StudyDatabase
from medview.io.scan import scan
from medview.report.templates import templates
from medview.session import StudySession, reporting

def main():
    db = StudyDatabase(sys.argv[2])
    db.import_paths([sys.argv[1]])
    session = StudySession(db)
    session.open(scan([sys.argv[1]]).series[0])
    reporting.start_report(session, templates().best("CT", "CHEST"))
    text = "1. Mass. \u05e9\u05dc\u05d5\u05dd \u00c5ngstr\u00f6m"
    reporting.edit_section(session, "impression", text)
    reporting.sign_report(session, "Dr Ada Reader", "MD")
    result = session.export(sys.argv[3], ExportOptions())
    print(json.dumps({"files": list(result.files), "validation": result.validation}))

if __name__ == "__main__":
    main()
"""


def test_signed_report_from_the_runtime_install(runtime: Path, tmp_path: Path) -> None:
    """The report's templates, fonts and DICOM objects come with the user's install."""
    script = tmp_path / "report.py"
    script.write_text(REPORT_SCRIPT)
    env = {**os.environ, "MEDVIEW_HOME": str(tmp_path / "home")}
    r = subprocess.run(
        [
            str(runtime),
            str(script),
            str(DEMO_CT),
            str(tmp_path / "db.sqlite"),
            str(tmp_path / "out"),
        ],
        env=env,
        cwd=tmp_path,  # not the checkout: what the installed package finds
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"report.pdf", "report-pdf.dcm", "report-sr.dcm"} <= set(result["files"])
    (bundle,) = (tmp_path / "out").iterdir()
    pdf = (bundle / "report.pdf").read_bytes()
    assert b"DejaVuSans" in pdf  # the shipped font, embedded


def test_batch_runs_from_the_runtime_install_without_ray(runtime: Path, tmp_path: Path) -> None:
    """Ray is an extra: without it ``medview batch`` runs the cohort in its own process, says
    so, and writes the same results table (Parquet comes with the user's install)."""
    r = subprocess.run([str(runtime), "-c", "import ray"], capture_output=True, timeout=60)
    assert r.returncode != 0, "the runtime environment has Ray: it is the cluster extra's"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        'format = "medview-pipeline/1"\nname = "demo"\n[[select]]\nmodality = "CT"\n'
        '[[models]]\nid = "chest-ct-segmentation"\n[export]\nformats = ["summary", "bundle"]\n'
    )
    out = tmp_path / "out"
    r = medview(
        runtime,
        "batch",
        str(pipeline),
        str(DEMO_CT),
        str(DEMO_MR),
        "--out",
        str(out),
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Ray is not installed: running in this process" in r.stderr
    assert "1 done, 0 failed" in r.stderr and "sequential" in r.stderr
    assert (out / "results.parquet").is_file() and (out / "results.csv").is_file()
    assert list(out.glob("series/*/bundle/MedView-*/report.pdf"))
