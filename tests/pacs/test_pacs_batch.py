"""A cohort from the PACS: ``medview batch --pacs NODE`` finds the studies by C-FIND, Ray's
workers retrieve each selected series by C-GET, run the pipeline and send the DICOM objects
back by C-STORE; the archive then holds them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.parquet as pq

from medview.pacs.nodes import save_nodes
from tests.batch.raytools import batch_command, kill_marked, marked_env, need_ray, ray_temp
from tests.pacs.conftest import Orthanc

PIPELINE = """\
format = "medview-pipeline/1"
name = "from the PACS"

[[select]]
modality = "CT"
description = "^Axial 5 mm$"

[[models]]
id = "chest-ct-segmentation"

[export]
formats = ["summary", "bundle"]

[send]
node = "orthanc"
"""


def test_pacs_cohort_is_retrieved_by_workers_and_sent_back(
    orthanc: Orthanc, demo_in_orthanc: str, medview_home: Path, tmp_path: Path
) -> None:
    need_ray()
    save_nodes([orthanc.node()])  # in this test's MedView home, which the workers share
    (tmp_path / "p.toml").write_text(PIPELINE)
    env = marked_env("pacs-batch")
    env["MEDVIEW_HOME"] = str(medview_home)
    seg_before = orthanc.rest("/tools/find", b'{"Level": "Series", "Query": {"Modality": "SEG"}}')
    series_before = orthanc.series_ids()
    try:
        _run_and_check(orthanc, tmp_path, env, seg_before)
    finally:  # what was sent back leaves the archive the session's other tests use
        orthanc.delete_series(orthanc.series_ids() - series_before)


def _run_and_check(orthanc: Orthanc, tmp_path: Path, env: dict, seg_before: object) -> None:
    with ray_temp() as tmp:
        cmd = batch_command(
            tmp_path / "p.toml",
            tmp_path / "out",
            "--pacs",
            "orthanc",
            "--modality",
            "CT",
            "--patient-id",  # other tests of this archive store other patients' series
            "DEMO-LUNG2",
            "--cpus",
            "2",
            "--no-dashboard",
            "--ray-temp-dir",
            tmp,
            "--progress",
            "none",
        )
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        finally:
            kill_marked("pacs-batch")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 series selected" in r.stderr, r.stderr[-3000:]
    rows = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    (row,) = [x for x in rows if x["status"] == "done"]
    assert len(rows) == 1 and row["images"] == 61
    assert row["chest-ct-segmentation:lung:volume_ml"] > 1000
    assert row["sent"] >= 2  # SEG, SR, RT structure set
    seg_after = orthanc.rest("/tools/find", b'{"Level": "Series", "Query": {"Modality": "SEG"}}')
    assert len(seg_after) > len(seg_before)  # type: ignore[arg-type]
    # the retrieved copy was removed once the series was done
    assert not list((tmp_path / "out" / ".medview-batch" / "retrieved").glob("*/*"))
