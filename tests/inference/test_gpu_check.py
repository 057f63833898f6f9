"""`make gpu-check` works before it ever meets a GPU: run with the CPU on both sides it runs
every shipped model twice through `medview run-model`, compares the outputs and passes; with
CUDA asked for and none present it says so and exits 2."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "tests" / "benchmarks" / "gpu_check.py"


def test_gpu_check_compares_every_model() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--devices", "cpu", "cpu"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and " ok " in line]
    names = {r.split("|")[1].strip() for r in rows}
    assert {"brain-extraction-mr", "chest-ct-segmentation", "chest-ct-lesion-classifier"} <= names
    assert "100.000 % voxels agree" in run.stdout


def test_gpu_check_without_cuda_says_so() -> None:
    import torch

    if torch.cuda.is_available():  # a GPU machine runs the real check instead
        return
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "no CUDA device" in run.stdout
