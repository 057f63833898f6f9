"""``medview batch`` on a local Ray with two cores, as a researcher runs it: 40 generated chest
CTs, the two demo studies and one series that cannot be decoded. One inference worker is
killed in the middle of the run. Every series must come back as a row; the figures and label
maps must equal what ``medview run-model`` gives for each series alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from medview.cli import main as medview_main
from tests.batch.cohort import PIPELINE, write_cohort, write_corrupt
from tests.batch.raytools import (
    batch_command,
    kill_marked,
    marked_env,
    need_ray,
    processes_named,
    ray_temp,
)
from tests.conftest import DEMO_CT, DEMO_MR

COUNT = 40


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    need_ray()
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root / "cohort", COUNT)
    write_corrupt(root / "cohort" / "broken")
    pipeline = root / "chest.toml"
    pipeline.write_text(PIPELINE)
    out = root / "out"
    env = marked_env("cohort")
    env["MEDVIEW_HOME"] = str(root / "home")
    killed: list[int] = []
    with ray_temp() as tmp:
        cmd = batch_command(
            pipeline,
            out,
            root / "cohort",
            DEMO_CT,
            DEMO_MR,
            "--cpus",
            "2",
            "--no-dashboard",
            "--ray-temp-dir",
            tmp,
            "--progress",
            "jsonl",
            "--include-identifiers",
        )
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            updates = []
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):  # Ray's own messages (a worker died) go here too
                    continue
                updates.append(json.loads(line))
                if not killed and updates[-1]["done"] >= 6:
                    workers = processes_named("cohort", "ray::ModelWorker")
                    assert len(workers) == 2, workers
                    os.kill(workers[0], signal.SIGKILL)  # mid-run: others are in flight
                    killed.append(workers[0])
            rc = proc.wait(timeout=600)
            stderr = proc.stderr.read() if proc.stderr else ""
        finally:
            proc.kill()
            kill_marked("cohort")
    seconds = time.monotonic() - t0
    assert (out / "results.parquet").exists(), stderr[-3000:]
    table = pq.read_table(out / "results.parquet").to_pylist()
    return {
        "rc": rc,
        "stderr": stderr,
        "out": out,
        "rows": table,
        "killed": killed,
        "updates": updates,
        "seconds": seconds,
        "root": root,
    }


def test_every_series_has_a_row_after_a_worker_is_killed(run: dict) -> None:
    assert run["killed"], "the run ended before a worker could be killed"
    rows = run["rows"]
    assert len(rows) == COUNT + 3, run["stderr"][-3000:]
    assert len({r["key"] for r in rows}) == len(rows)
    by_status = {s: [r for r in rows if r["status"] == s] for s in ("done", "error")}
    assert len(by_status["done"]) == COUNT + 2 and len(by_status["error"]) == 1
    assert run["rc"] == 1  # one series failed
    # the killed worker's calls were retried on its restarted process
    workers = {r["worker"].split("/")[1] for r in by_status["done"]}
    assert str(run["killed"][0]) not in workers or len(workers) >= 3
    last = run["updates"][-1]
    assert (last["done"], last["failed"], last["total"]) == (COUNT + 2, 1, COUNT + 3)
    print(f"\n{COUNT + 3} series in {run['seconds']:.1f} s with one worker killed")


def test_a_corrupt_series_is_an_error_row_with_the_reason(run: dict) -> None:
    (bad,) = [r for r in run["rows"] if r["status"] == "error"]
    assert bad["patient_id"] == "BROKEN"
    assert bad["error"].startswith("load: ") and "cannot decode pixel data" in bad["error"]
    assert bad["chest-ct-segmentation:lung:volume_ml"] is None


def test_results_equal_single_series_run_model(run: dict, tmp_path: Path) -> None:
    """Each series through ``medview run-model`` alone: the same label map, voxel for voxel,
    and the same figures (classification probabilities included)."""
    done = [r for r in run["rows"] if r["status"] == "done"]
    checked = 0
    for r in done:
        models = (
            ["brain-extraction-mr"]
            if r["modality"] == "MR"
            else ["chest-ct-segmentation", "chest-ct-lesion-classifier"]
        )
        for model in models:
            alone = tmp_path / r["key"] / model
            folder = str(Path(r["source"]).parent)
            rc = medview_main(
                ["run-model", model, folder, "--series", r["series_uid"], "--out", str(alone)]
            )
            assert rc == 0
            mine = run["out"] / r["outputs"] / model
            a = json.loads((alone / "summary.json").read_text())
            b = json.loads((mine / "summary.json").read_text())
            for k in (
                "series_uid",
                "model",
                "labels",
                "probabilities",
                "finding",
                "finding_probability",
                "per_slice",
                "shape",
                "spacing",
                "notes",
            ):
                assert a.get(k) == b.get(k), (model, k)
            if a.get("labels") is not None:
                x = np.asarray(nib.load(alone / "labels.nii.gz").dataobj)
                y = np.asarray(nib.load(mine / "labels.nii.gz").dataobj)
                assert np.array_equal(x, y), (r["key"], model, int((x != y).sum()))
                for label in a["labels"]:
                    assert r[f"{model}:{label['name']}:volume_ml"] == label["volume_ml"]
            else:
                assert r[f"{model}:probability"] == pytest.approx(
                    a["finding_probability"], abs=1e-6
                )
            assert r[f"{model}:weights_sha256"] == a["model"]["weights_sha256"]
            checked += 1
    assert checked == 2 * COUNT + 1 + 1 + 1  # CT: two models each; the MR: one
    assert all(r["research_use"] == "Research use only, not for diagnosis." for r in done)


def test_csv_beside_the_parquet_table_has_the_same_rows(run: dict) -> None:
    import csv

    with open(run["out"] / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["key"] for r in rows] == [r["key"] for r in run["rows"]]
    assert rows[0].keys() == run["rows"][0].keys()
