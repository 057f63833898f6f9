"""A killed driver loses no finished series, and ``--resume`` does not do them again; a real
two-node Ray cluster on this machine (``ray start --head`` and a second ``ray start
--address``) runs the job with work on both nodes; the table holds no identifier unless asked."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.batch.cohort import write_cohort
from tests.batch.raytools import (
    batch_command,
    kill_marked,
    marked_env,
    need_ray,
    ray_temp,
    two_node_cluster,
)

SEGMENT_ONLY = """\
format = "medview-pipeline/1"
name = "chest segmentation"

[[select]]
modality = "CT"

[[models]]
id = "chest-ct-segmentation"

[export]
formats = ["summary"]
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_ray()
    root = tmp_path_factory.mktemp("resume")
    write_cohort(root / "cohort", 14)
    (root / "p.toml").write_text(SEGMENT_ONLY)
    return root


def _done(out: Path) -> list[tuple[str, float]]:
    try:
        with sqlite3.connect(out / "journal.sqlite") as db:
            q = "SELECT key, committed FROM rows WHERE status='done'"
            return list(db.execute(q))
    except sqlite3.Error:  # not made yet
        return []


def test_killed_driver_then_resume_recomputes_nothing_finished(cohort: Path) -> None:
    out = cohort / "out"
    env = marked_env("resume")
    with ray_temp() as tmp:
        args = ("--cpus", "2", "--no-dashboard", "--ray-temp-dir", tmp, "--progress", "none")
        cmd = batch_command(cohort / "p.toml", out, cohort / "cohort", *args)
        try:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 300
            while len(_done(out)) < 4 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)  # the driver, mid-run, with no chance to tidy up
            proc.wait(timeout=30)
        finally:
            kill_marked("resume")  # what the dead driver's Ray left behind
        before = dict(_done(out))
        assert 4 <= len(before) < 14, "the driver was not killed mid-run"
        assert not (out / "results.parquet").exists()

        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 2 and "--resume" in again.stderr  # never silently redone

        resumed = subprocess.run(
            [*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600
        )
        kill_marked("resume")
        # once more: everything is done, so nothing is computed and no engine is started
        t0 = time.monotonic()
        idle = subprocess.run(
            [*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=600
        )
        idle_seconds = time.monotonic() - t0
        kill_marked("resume")
    assert idle.returncode == 0 and "14 already done (skipped)" in idle.stderr, idle.stderr
    assert idle_seconds < 8, idle_seconds  # a local Ray alone takes about 8 s to start
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(before)} already done (skipped)" in resumed.stderr
    with sqlite3.connect(out / "journal.sqlite") as db:
        runs = list(db.execute("SELECT series, skipped, computed FROM runs ORDER BY rowid"))
    assert runs[-2] == (14, len(before), 14 - len(before))  # counted: only the rest was done
    assert runs[-1] == (14, 14, 0)
    after = dict(_done(out))
    assert len(after) == 14
    assert all(after[k] == t for k, t in before.items())  # the finished rows were not redone
    table = pq.read_table(out / "results.parquet").to_pylist()
    assert len(table) == 14 and {r["status"] for r in table} == {"done"}
    # no identifier in the table without --include-identifiers
    text = (out / "results.csv").read_text()
    assert "COHORT0" not in text and "Cohort^" not in text
    assert not {"patient_id", "series_uid", "study_uid", "source"} & set(table[0])


def test_two_node_cluster_runs_the_job_on_both_nodes(cohort: Path) -> None:
    out = cohort / "cluster-out"
    with two_node_cluster() as (address, env):
        six = [cohort / "cohort" / f"p{i:03d}" for i in range(6)]
        cmd = batch_command(
            cohort / "p.toml", out, *six, "--address", address, "--progress", "none"
        )
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 node(s)" in r.stderr
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert len(rows) == 6 and {r["status"] for r in rows} == {"done"}
    inference_nodes = {r["worker"].split("/")[0] for r in rows}
    task_nodes = {r["finisher"].split("/")[0] for r in rows}
    assert len(inference_nodes) == 2 and len(task_nodes) == 2, (inference_nodes, task_nodes)
