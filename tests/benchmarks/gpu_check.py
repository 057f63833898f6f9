"""`make gpu-check`: every shipped model on the GPU against the same run on the CPU.

Runs each shipped model through `medview run-model` (the path users take) with ``--device cpu``
and ``--device cuda`` on the demo chest CT (61 x 512 x 512) and on the demo T1 in a whole-head
field of view (181 x 256 x 256), compares the outputs and prints a table:

- segmentation: per-label Dice between the CUDA and the CPU label maps and the fraction of
  voxels that agree; it passes when every label's Dice >= 0.99 and >= 99.9 % of voxels agree
  (float32 sums differ in order between cuDNN and the CPU, so a boundary voxel may flip);
- classification: the largest difference of any slice probability (<= 0.01) and of the heat
  map (<= 0.05).

Exit status 0 when every model passes, 1 when one does not, 2 when there is no CUDA device.
``--bench`` also runs the inference benchmark (MedView vs MONAI's bare inference) on the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

DICE_MIN = 0.99
AGREE_MIN = 0.999
PROB_MAX_DIFF = 0.01
HEAT_MAX_DIFF = 0.05


def medview(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "medview.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return time.perf_counter() - t0, run


def big_head(folder: Path) -> Path:
    from tests.test_runtime_install import write_big_head

    return write_big_head(folder)


def demo_tumour_click() -> str:
    """The centre of the demo CT's reference tumour, as ``--click`` takes it (LPS mm)."""
    import SimpleITK as sitk

    ref = sitk.ReadImage(str(REPO / "resources" / "reference" / "lung2_tumour_label.nii.gz"))
    centre = np.argwhere(sitk.GetArrayFromImage(ref) > 0).mean(axis=0)[::-1]
    point = ref.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre])
    return ",".join(f"{v:.2f}" for v in point)


def read_labels(path: Path) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.load(str(path)).dataobj)


def compare_segmentation(cpu: Path, cuda: Path) -> tuple[bool, str]:
    a, b = read_labels(cpu / "labels.nii.gz"), read_labels(cuda / "labels.nii.gz")
    agree = float((a == b).mean())
    dices = []
    for v in sorted((set(np.unique(a)) | set(np.unique(b))) - {0}):
        x, y = a == v, b == v
        total = int(x.sum() + y.sum())
        dices.append((int(v), 2 * float((x & y).sum()) / total if total else 1.0))
    ok = agree >= AGREE_MIN and all(d >= DICE_MIN for _, d in dices)
    detail = f"{100 * agree:.3f} % voxels agree; Dice " + ", ".join(
        f"{v}: {d:.4f}" for v, d in dices
    )
    return ok, detail


def compare_classification(cpu: Path, cuda: Path) -> tuple[bool, str]:
    a = json.loads((cpu / "summary.json").read_text())
    b = json.loads((cuda / "summary.json").read_text())
    if "malignant" in a:  # a click model: one nodule's probability
        pa, pb = np.asarray([a["malignant"]]), np.asarray([b["malignant"]])
    else:
        pa, pb = np.asarray(a["per_slice"] or [0.0]), np.asarray(b["per_slice"] or [0.0])
    prob = float(np.abs(pa - pb).max())
    heat = 0.0
    if (cpu / "heatmap.nii.gz").is_file():
        heat = float(
            np.abs(read_labels(cpu / "heatmap.nii.gz") - read_labels(cuda / "heatmap.nii.gz")).max()
        )
    ok = prob <= PROB_MAX_DIFF and heat <= HEAT_MAX_DIFF
    return ok, f"max slice-probability difference {prob:.2e}; heat map {heat:.2e}"


def three_d_on_the_gpu() -> bool:
    """The 3-D view's GPU ray casting on the 300 x 512 x 512 CT at 1024² (goal: 30 frames/s),
    beside the CPU caster on the same machine."""
    from tests.benchmarks.test_bench_3d import big_ct, run

    print("\n| 3-D view, 300 x 512 x 512 CT, 1024² | first frame | turning | still | fps turning |")
    print("|---|---|---|---|---|")
    ok = True
    with tempfile.TemporaryDirectory(prefix="medview-3d-") as tmp:
        data, spacing, _ = big_ct(Path(tmp))
        for mapper in ("gpu", "cpu"):
            os.environ["MEDVIEW_3D_MAPPER"] = mapper
            try:
                r = run("medview", data, spacing, 1024)
            except AssertionError as e:
                print(f"| {mapper} | failed: {str(e)[-200:]} | | | |")
                ok = False
                continue
            finally:
                os.environ.pop("MEDVIEW_3D_MAPPER", None)
            print(
                f"| {r['mapper']} on {r['renderer']} | {r['first']:.2f} s | "
                f"{r['moving'] * 1000:.0f} ms | {r['still'] * 1000:.0f} ms | "
                f"{1 / r['moving']:.0f} |"
            )
            ok &= mapper != "gpu" or r["mapper"] == "gpu"
    return ok


def batch_on_the_gpu() -> bool:
    """A small cohort through `medview batch` on a local Ray: the inference actors ask Ray for
    the GPU (one actor per GPU) and every row must say it ran on cuda; the same cohort on the
    CPU beside it, for the rate and the figures."""
    import pyarrow.parquet as pq

    from tests.batch.cohort import write_cohort

    print("\n| medview batch, 12 chest CTs | engine | workers | seconds | series/hour | device |")
    print("|---|---|---|---|---|---|")
    ok = True
    with tempfile.TemporaryDirectory(prefix="medview-batch-") as tmp:
        root = Path(tmp)
        write_cohort(root / "cohort", 12)
        (root / "p.toml").write_text(
            'format = "medview-pipeline/1"\nname = "gpu"\n[[select]]\nmodality = "CT"\n'
            '[[models]]\nid = "chest-ct-segmentation"\n[export]\nformats = ["summary"]\n'
        )
        tables = {}
        for name, extra in (("gpu", []), ("cpu", ["--engine", "sequential"])):
            env = dict(os.environ)
            if name == "cpu":
                env["CUDA_VISIBLE_DEVICES"] = ""
            seconds, r = medview(
                "batch",
                str(root / "p.toml"),
                str(root / "cohort"),
                "--out",
                str(root / name),
                "--no-dashboard",
                "--progress",
                "none",
                *extra,
                env=env,
            )
            if r.returncode != 0:
                print(f"| {name} | failed: {r.stderr[-300:]} | | | | |")
                ok = False
                continue
            rows = pq.read_table(root / name / "results.parquet").to_pylist()
            tables[name] = rows
            devices = sorted({str(row.get("chest-ct-segmentation:device")) for row in rows})
            workers = r.stderr.rsplit("; ", 1)[-1].split(",")[1].strip() if "; " in r.stderr else ""
            print(
                f"| {name} | {'ray' if not extra else 'sequential'} | {workers} | "
                f"{seconds:.1f} | {3600 * len(rows) / seconds:.0f} | {', '.join(devices)} |"
            )
            ok &= name != "gpu" or devices == ["cuda"]
        if len(tables) == 2:
            key = "chest-ct-segmentation:lung:volume_ml"
            diff = max(
                abs(a[key] - b[key]) / max(b[key], 1e-9)
                for a, b in zip(
                    sorted(tables["gpu"], key=lambda r: r["key"]),
                    sorted(tables["cpu"], key=lambda r: r["key"]),
                    strict=True,
                )
            )
            print(f"lung volume, GPU against CPU: largest relative difference {diff:.2e}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", action="store_true", help="also run the inference benchmark")
    ap.add_argument(
        "--devices",
        nargs=2,
        default=("cpu", "cuda"),
        metavar=("REFERENCE", "CHECKED"),
        help="the two devices compared (default: cpu cuda; `cpu cpu` checks the script)",
    )
    ap.add_argument(
        "--models-only",
        action="store_true",
        help="only the shipped models (a machine without VTK or Ray: the 3-D view and the "
        "batch checks are not run)",
    )
    args = ap.parse_args()
    import torch

    ref, dev = args.devices
    if "cuda" in args.devices:
        if not torch.cuda.is_available():
            print("gpu-check: no CUDA device here (torch.cuda.is_available() is False)")
            return 2
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    rows = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="medview-gpu-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "MEDVIEW_HOME": str(work / "home")}
        data = {"CT": REPO / "resources" / "demo" / "lung2", "MR": big_head(work / "head")}
        _, listed = medview("models", "list", "--json", env=env)
        models = [m for m in json.loads(listed.stdout) if not m["refused"]]
        for m in models:
            outs = {}
            seconds = {}
            for side, device in (("ref", ref), ("dev", dev)):
                # the first CUDA run pays for CUDA's start: run twice, report the second
                for _ in range(2 if device == "cuda" else 1):
                    out = work / side / m["id"]
                    seconds[side], run = medview(
                        "run-model",
                        m["id"],
                        str(data[m["modality"]]),
                        "--device",
                        device,
                        "--out",
                        str(out),
                        *(
                            ("--click", demo_tumour_click())
                            if m["task"].startswith("click")
                            else ()
                        ),
                        env=env,
                    )
                    if run.returncode != 0:
                        break
                outs[side] = (out, run)
            bad = [d for d, (_, r) in outs.items() if r.returncode != 0]
            if bad:
                failed = True
                rows.append((m["id"], "-", "-", "-", "FAIL", outs[bad[0]][1].stderr[-300:]))
                continue
            compare = (
                compare_segmentation
                if m["task"] in ("segmentation", "click-segmentation")
                else compare_classification
            )
            ok, detail = compare(outs["ref"][0], outs["dev"][0])
            failed |= not ok
            rows.append(
                (
                    m["id"],
                    f"{seconds['ref']:.1f}",
                    f"{seconds['dev']:.1f}",
                    f"{seconds['ref'] / seconds['dev']:.1f}x",
                    "ok" if ok else "FAIL",
                    detail,
                )
            )
    print(f"\n| model | {ref} s | {dev} s | speed-up | labels | agreement |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("(wall time of `medview run-model`, process start and model load included)")
    if args.models_only:
        print("3-D view and batch checks: not run (--models-only)")
    elif "cuda" in args.devices:
        failed |= not three_d_on_the_gpu()
        failed |= not batch_on_the_gpu()
    if args.bench:
        bench = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-s",
                "-m",
                "benchmark",
                "tests/benchmarks/test_bench_inference.py",
            ],
            cwd=REPO,
            check=False,  # the benchmark runs on the GPU when there is one
        )
        failed |= bench.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
