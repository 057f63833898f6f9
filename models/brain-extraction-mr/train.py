#!/usr/bin/env python3
"""Train, evaluate and package the MR brain-extraction model.

    python models/brain-extraction-mr/train.py             # train, evaluate, write the package
    python models/brain-extraction-mr/train.py --smoke     # a few steps on tiny data (tests)

Training data: Colin27 (``ch2.nii.gz`` with its brain mask ``ch2bet.nii.gz``, Debian
``mricron-data``). Held-out evaluation: a different subject, the ITK example T1
(``KmeansTest_T1UCharRaw.nii.gz`` with ``KmeansTest_T1RawSkullStrip.nii.gz``, Debian
``insighttoolkit5-examples``), run through MedView's own engine (``segment``). Fixed seeds, CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import medview_training as mt  # noqa: E402

SEED = 20261123

MANIFEST: dict[str, Any] = {
    "id": "brain-extraction-mr",
    "name": "Brain extraction (T1 MR)",
    "version": "1.0",
    "task": "segmentation",
    "modality": "MR",
    "body_part": "HEAD",
    "dimensions": 3,
    "network": {
        "class": "UNet",
        "args": {
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 2,
            "channels": [16, 32, 64, 128],
            "strides": [2, 2, 2],
            "num_res_units": 1,
            "norm": "instance",
        },
    },
    "preprocessing": {
        "orientation": "RAS",
        "spacing": [2.0, 2.0, 2.0],
        "intensity": {
            "kind": "percentiles",
            "a_min": 1.0,
            "a_max": 99.0,
            "b_min": 0.0,
            "b_max": 1.0,
            "clip": True,
        },
    },
    "inference": {"roi_size": [96, 96, 96], "overlap": 0.25, "sw_batch_size": 1},
    "postprocessing": {"largest_component": [1]},
    "labels": [
        {
            "value": 1,
            "name": "brain",
            "color": [255, 196, 64],
            "snomed": {"code": "12738006", "meaning": "Brain"},
        }
    ],
}


def training_pair(manifest: Any, image_path: Path, mask_path: Path) -> tuple[Any, Any]:
    """Image and mask on the model grid, made by MedView's own preprocessing."""
    import numpy as np
    import torch

    from medview.core.volume import Volume
    from medview.inference.resample import resample_grid
    from medview.inference.runner import preprocess, spatial_plan, to_metatensor

    vol = mt.read_nifti(image_path, "MR")
    mask_vol = mt.read_nifti(mask_path, "MR")
    mask = Volume((mask_vol.array > 0).astype(np.int16), vol.geometry, modality="MR")
    image = to_metatensor(vol)
    pre = preprocess(image, manifest)
    affine, shape = spatial_plan(image, manifest)
    lab = resample_grid(to_metatensor(mask).as_tensor().float(), image.affine, affine, shape)
    return pre.as_tensor().float(), (lab > 0.5).to(torch.float32)


def augmentations(roi: tuple[int, int, int]) -> Any:
    """Geometry, contrast, bias field, noise, blur and lower resolution: one training subject
    has to stand in for scanners and subjects it has never seen."""
    from monai import transforms as T

    keys = ["image", "label"]
    return T.Compose(
        [
            T.RandAffined(
                keys,
                prob=0.9,
                rotate_range=(0.26, 0.26, 0.26),
                scale_range=(0.15, 0.15, 0.15),
                translate_range=(6, 6, 6),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            T.RandFlipd(keys, prob=0.5, spatial_axis=0),
            T.RandSpatialCropd(keys, roi_size=roi, random_size=False),
            T.SpatialPadd(keys, spatial_size=roi),
            T.RandBiasFieldd("image", prob=0.5, coeff_range=(0.0, 0.3)),
            T.RandAdjustContrastd("image", prob=0.5, gamma=(0.6, 1.6)),
            T.RandScaleIntensityd("image", factors=0.2, prob=0.5),
            T.RandShiftIntensityd("image", offsets=0.1, prob=0.5),
            T.RandGaussianSmoothd(
                "image", prob=0.3, sigma_x=(0.3, 1.2), sigma_y=(0.3, 1.2), sigma_z=(0.3, 1.2)
            ),
            T.RandGaussianNoised("image", prob=0.3, std=0.03),
        ]
    )


def train(manifest_dict: dict[str, Any], steps: int, roi: tuple[int, int, int], smoke: bool) -> Any:
    import torch
    from monai.losses import DiceCELoss

    from medview.inference.loading import build_network

    mt.set_seeds(SEED)
    paths = mt.fetch(["ch2.nii.gz", "ch2bet.nii.gz"])
    m = _manifest_object(manifest_dict)
    image, label = training_pair(m, paths["ch2.nii.gz"], paths["ch2bet.nii.gz"])
    if smoke:  # tiny data: a quarter of the grid
        image, label = image[:, ::4, ::4, ::4], label[:, ::4, ::4, ::4]
    net = build_network(manifest_dict["network"]["class"], manifest_dict["network"]["args"])
    aug = augmentations(roi)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    t0 = time.perf_counter()
    for step in range(steps):
        batch = [aug({"image": image, "label": label}) for _ in range(2)]
        x = torch.stack([torch.as_tensor(b["image"]) for b in batch])
        y = torch.stack([torch.as_tensor(b["label"]) for b in batch])
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0 or step == steps - 1:
            print(
                f"step {step:4d}  loss {float(loss.detach()):.4f}  {time.perf_counter() - t0:.0f} s"
            )
    net.eval()
    return net, time.perf_counter() - t0


def _manifest_object(manifest_dict: dict[str, Any]) -> Any:
    """The manifest as MedView reads it (weights are not needed to preprocess)."""
    from medview.inference.manifest import parse_manifest

    data = dict(manifest_dict)
    data["weights"] = {"file": "weights.safetensors", "sha256": "0" * 64}
    return parse_manifest(data, HERE)


def evaluate(manifest: Any, device: str = "cpu") -> dict[str, float]:
    """Dice, sensitivity and precision on the held-out ITK T1, through MedView's engine."""
    import numpy as np

    from medview.inference.runner import segment

    paths = mt.fetch(["KmeansTest_T1UCharRaw.nii.gz", "KmeansTest_T1RawSkullStrip.nii.gz"])
    vol = mt.read_nifti(paths["KmeansTest_T1UCharRaw.nii.gz"], "MR")
    truth = mt.read_nifti(paths["KmeansTest_T1RawSkullStrip.nii.gz"], "MR").array > 0
    res = segment(vol, manifest, device=device)
    found = res.labels.array == 1
    tp = int(np.sum(found & truth))
    return {
        "dice": mt.dice(found, truth),
        "sensitivity": tp / max(1, int(truth.sum())),
        "precision": tp / max(1, int(found.sum())),
        "seconds": res.seconds,
        "brain_ml": res.stats[0].volume_ml,
        "truth_ml": float(truth.sum() * np.prod(vol.geometry.spacing) / 1000),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--smoke", action="store_true", help="2 steps on tiny data; no package")
    ap.add_argument("--out", type=Path, default=HERE, help="package folder to write")
    args = ap.parse_args(argv)
    import torch

    from medview.inference.manifest import read_manifest
    from medview.inference.package import save_package

    steps = 2 if args.smoke else args.steps
    roi = (16, 16, 16) if args.smoke else (80, 80, 80)
    net, seconds = train(MANIFEST, steps, roi, args.smoke)
    card = (HERE / "MODEL_CARD.md").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        pkg = save_package(tmp, MANIFEST, net.state_dict(), card)
        if args.smoke:
            print(f"smoke run: {steps} steps in {seconds:.0f} s, package {pkg.id} written")
            return 0
        figures = evaluate(pkg)
        print(json.dumps(figures, indent=2))
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("weights.safetensors", "manifest.json"):
            shutil.copyfile(Path(tmp) / pkg.id / name, args.out / name)
    if not (args.out / "MODEL_CARD.md").exists():
        shutil.copyfile(HERE / "MODEL_CARD.md", args.out / "MODEL_CARD.md")
    threads = torch.get_num_threads()
    mt.write_figures(
        args.out / "MODEL_CARD.md",
        f"""| held-out subject (ITK example T1, 128 x 128 x 62, 2 x 2 x 3 mm, coronal) | value |
|---|---|
| Dice | **{figures["dice"]:.3f}** |
| sensitivity | {figures["sensitivity"]:.3f} |
| precision | {figures["precision"]:.3f} |
| brain volume found / reference | {figures["brain_ml"]:.0f} mL / {figures["truth_ml"]:.0f} mL |
| inference through MedView's engine, CPU ({threads} threads) | {figures["seconds"]:.1f} s |

Training: {steps} steps of 2 crops of 80^3 voxels, {seconds / 60:.1f} min on the CPU
({threads} threads), seed {SEED}.""",
    )
    read_manifest(args.out)  # the written package must load
    return 0


if __name__ == "__main__":
    sys.exit(main())
