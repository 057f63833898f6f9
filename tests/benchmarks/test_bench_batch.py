"""Cohort throughput on this machine, same cohort, same outputs, one run each:

- the peer a researcher has today: a shell loop of ``medview run-model`` processes (two models,
  then ``medview export`` for the bundle: one process per step, models loaded every time);
- MedView's in-process sequential loop (``medview batch --engine sequential``);
- ``medview batch`` on a local Ray with 1 and 2 inference workers.

The cohort: generated chest CTs of 48 x 256 x 256 (1.4 x 1.4 x 5 mm); the pipeline: the chest
segmentation and the lesion classifier, a summary, the label map and the report bundle (SEG,
SR, RTSTRUCT, PDF) per series. The shell loop runs on the first few series (its rate per
series does not depend on the cohort's size). Then peak memory of the whole job (driver and
every Ray process) at 40 and at 400 small series. Prints tables; asserts nothing timed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.batch.cohort import chest, write_cohort
from tests.batch.raytools import kill_marked, marked, marked_env, ray_temp
from tests.benchmarks.common import print_table
from tests.conftest import write_ct

pytestmark = pytest.mark.benchmark
BIN = Path(sys.executable).parent
SERIES = int(os.environ.get("MEDVIEW_BENCH_COHORT", "24"))
SHELL_SERIES = 4

PIPELINE = """\
format = "medview-pipeline/1"
name = "chest"
[[select]]
modality = "CT"
[[models]]
id = "chest-ct-segmentation"
[[models]]
id = "chest-ct-lesion-classifier"
[export]
formats = ["summary", "nifti", "bundle"]
"""


def _pss_mib(pids: list[int]) -> float:
    """The processes' memory with shared pages divided among them (PSS): a sum of RSS counts
    torch's libraries and Ray's shared object store once per process."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total / 1024


def _run(cmd: list[str], marker: str) -> tuple[float, list[float], str]:
    """Seconds, peak PSS (MiB) of every process carrying the marker (sampled), stderr."""
    env = marked_env(marker)
    peak = [0.0, 0.0]  # MiB, and how many processes then
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pids = marked(marker)
            mib = _pss_mib(pids)
            if mib > peak[0]:
                peak[:] = [mib, len(pids)]
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    finally:
        seconds = time.perf_counter() - t0
        stop.set()
        sampler.join()
        kill_marked(marker)
    assert r.returncode == 0, r.stderr[-3000:]
    return seconds, peak, r.stderr


def _write_big(folder: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        sub = folder / f"p{i:03d}"
        write_ct(
            sub,
            values=chest(i, n=48, size=256),
            spacing=(1.4, 1.4, 5.0),
            origin=(-180.0, -180.0, -120.0),
            seed=f"bench-{i}",
            patient_id=f"B{i:03d}",
        )
        out.append(sub)
    return out


def _shell_loop(folders: list[Path], out: Path) -> float:
    """What a researcher scripts today: one process per step and series."""
    t0 = time.perf_counter()
    for i, folder in enumerate(folders):
        d = out / f"s{i}"
        for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
            subprocess.run(
                [BIN / "medview", "run-model", model, folder, "--out", d / model],
                check=True,
                capture_output=True,
                timeout=600,
            )
        subprocess.run(
            [
                BIN / "medview",
                "export",
                folder,
                "--seg",
                d / "chest-ct-segmentation" / "labels.nii.gz",
                "--out",
                d / "bundle",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return time.perf_counter() - t0


def test_bench_batch_throughput() -> None:
    with tempfile.TemporaryDirectory(prefix="mvbench-") as tmp:
        root = Path(tmp)
        folders = _write_big(root / "cohort", SERIES)
        (root / "p.toml").write_text(PIPELINE)
        shell = _shell_loop(folders[:SHELL_SERIES], root / "shell")
        rows = [
            [
                "shell loop of run-model + export",
                SHELL_SERIES,
                f"{shell:.1f}",
                f"{3600 * SHELL_SERIES / shell:.0f}",
                "-",
            ]
        ]
        rates = {"shell": 3600 * SHELL_SERIES / shell}
        with ray_temp() as ray_tmp:
            for name, extra in (
                ("sequential", ["--engine", "sequential"]),
                ("ray, 1 worker", ["--workers", "1"]),
                ("ray, 2 workers", ["--workers", "2"]),
            ):
                out = root / name.replace(" ", "").replace(",", "")
                cmd = [
                    str(BIN / "medview"),
                    "batch",
                    str(root / "p.toml"),
                    str(root / "cohort"),
                    "--out",
                    str(out),
                    "--no-dashboard",
                    "--ray-temp-dir",
                    ray_tmp,
                    "--progress",
                    "none",
                    *extra,
                ]
                seconds, peak, _ = _run(cmd, f"bench-{name[:3]}")
                table = pq.read_table(out / "results.parquet").to_pylist()
                assert len(table) == SERIES and {r["status"] for r in table} == {"done"}
                infer = statistics.median(r["infer_s"] for r in table)
                export = statistics.median(r["export_s"] for r in table)
                rates[name] = 3600 * SERIES / seconds
                rows.append(
                    [
                        f"medview batch, {name}",
                        SERIES,
                        f"{seconds:.1f}",
                        f"{rates[name]:.0f}",
                        f"{peak:.0f}",
                    ]
                )
                print(f"{name}: median infer {infer:.2f} s, export {export:.2f} s per series")
        print_table(
            f"Cohort throughput, {SERIES} chest CTs 48x256x256 (2 models, summary, NIfTI, "
            "bundle), 2 cores",
            rows,
            ["run", "series", "seconds", "series/hour", "peak MiB, PSS (processes)"],
        )
        best = rates["ray, 2 workers"]
        print(
            f"ratios: ray 2 workers / shell loop = {best / rates['shell']:.1f}x; "
            f"/ in-process sequential = {best / rates['sequential']:.2f}x; "
            f"2 workers / 1 worker = {best / rates['ray, 1 worker']:.2f}x"
        )


def test_bench_batch_memory_is_flat() -> None:
    """Peak memory of the whole job at 40 and at 400 series: bounded in-flight work."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="mvbench-") as tmp, ray_temp() as ray_tmp:
        root = Path(tmp)
        write_cohort(root / "cohort", 400)
        (root / "p.toml").write_text(PIPELINE.replace(', "bundle"', ""))
        for n in (40, 400):
            paths = [str(root / "cohort" / f"p{i:03d}") for i in range(n)]
            cmd = [
                str(BIN / "medview"),
                "batch",
                str(root / "p.toml"),
                *paths,
                "--out",
                str(root / f"out{n}"),
                "--no-dashboard",
                "--ray-temp-dir",
                ray_tmp,
                "--progress",
                "none",
                "--workers",
                "2",
            ]
            seconds, peak, _ = _run(cmd, f"mem-{n}")
            rows.append(
                [
                    n,
                    f"{seconds:.1f}",
                    f"{3600 * n / seconds:.0f}",
                    f"{peak[0]:.0f}",
                    f"{peak[1]:.0f}",
                ]
            )
    print_table(
        "Peak memory of medview batch (driver + Ray), 80x80x20 CTs, 2 workers",
        rows,
        ["series", "seconds", "series/hour", "peak MiB (PSS, all processes)", "processes"],
    )
    print(f"peak at 400 / peak at 40 = {float(rows[1][3]) / float(rows[0][3]):.2f}")
