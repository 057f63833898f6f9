#!/usr/bin/env python3
"""Train, evaluate and package the MR brain-extraction model.

    python models/brain-extraction-mr/train.py             # train, evaluate, write the package
    python models/brain-extraction-mr/train.py --smoke     # a few steps on tiny data (tests)
    python models/brain-extraction-mr/train.py --bundle-only   # rewrite the Model-Zoo form

The package is also written as a MONAI Model-Zoo bundle (``configs/metadata.json``,
``configs/inference.json``, ``models/model.pt``) in the layout of the Zoo's
``spleen_ct_segmentation``, with the same weights.

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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import medview_training as mt  # noqa: E402

from medview.inference.manifest import BRAIN_LABEL  # noqa: E402

SEED = 20261123
AIR_MARGIN = 32  # voxels of air added round the training head (64 mm at 2 mm)

MANIFEST: dict[str, Any] = {
    "id": "brain-extraction-mr",
    "name": "Brain extraction (T1 MR)",
    "version": "1.1",
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
    "labels": [dict(BRAIN_LABEL)],
    # 2-D heads with slices up to 7 mm: trained with thick slices, and the real 6.5 mm heads
    # in tests/inference/test_hdbet.py come out brain-sized
    "domain": {
        "modalities": ["MR"],
        "min_slices": 20,
        "spacing_mm": [0.4, 7.0],
        "plausible_ml": {"1": [900, 1900]},
    },
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


class RandThickSlices:
    """A 2-D acquisition's thick slices: along one random axis, average ``factor`` voxels and
    stretch them back (a slab profile), as 4-7 mm slices look on the 2 mm model grid."""

    def __init__(self, prob: float, factors: tuple[float, float], seed: int) -> None:
        import numpy as np

        self.prob, self.factors = prob, factors
        self.rng = np.random.default_rng(seed)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        if self.rng.random() >= self.prob:
            return data
        image = torch.as_tensor(data["image"])
        axis = int(self.rng.integers(3))
        factor = float(self.rng.uniform(*self.factors))
        shape = list(image.shape[1:])
        small = list(shape)
        small[axis] = max(2, round(shape[axis] / factor))
        low = F.interpolate(image[None].float(), size=small, mode="area")
        out = dict(data)
        out["image"] = F.interpolate(low, size=shape, mode="trilinear", align_corners=False)[0]
        return out


def augmentations(roi: tuple[int, int, int]) -> Any:
    """Geometry, field of view, contrast, bias field, noise, blur and thick slices: one training
    subject has to stand in for scanners, subjects and framings it has never seen. The head is
    moved up to 48 mm and turned up to 30 degrees inside a field padded with air, so the model
    learns that air is never brain wherever the head lies (version 1.0, trained on centred
    crops, put brain into the air round an off-centre head)."""
    from monai import transforms as T

    keys = ["image", "label"]
    return T.Compose(
        [
            T.RandAffined(
                keys,
                prob=0.95,
                rotate_range=(0.52, 0.52, 0.52),
                scale_range=(0.2, 0.2, 0.2),
                translate_range=(24, 24, 24),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            T.RandFlipd(keys, prob=0.5, spatial_axis=0),
            T.RandSpatialCropd(keys, roi_size=roi, random_size=False),
            T.SpatialPadd(keys, spatial_size=roi),
            RandThickSlices(prob=0.3, factors=(1.5, 3.5), seed=SEED),
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
    m = mt.manifest_object(manifest_dict, HERE)
    image, label = training_pair(m, paths["ch2.nii.gz"], paths["ch2bet.nii.gz"])
    if smoke:  # tiny data: a quarter of the grid
        image, label = image[:, ::4, ::4, ::4], label[:, ::4, ::4, ::4]
    else:  # air round the head (the scaled image's background is 0), for the moves above
        pad = (AIR_MARGIN,) * 6
        image = torch.nn.functional.pad(image, pad)
        label = torch.nn.functional.pad(label, pad)
    net = build_network(manifest_dict["network"]["class"], manifest_dict["network"]["args"])
    aug = augmentations(roi)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

    def batch() -> tuple[Any, Any]:
        pairs = [aug({"image": image, "label": label}) for _ in range(2)]
        x = torch.stack([torch.as_tensor(b["image"]) for b in pairs])
        y = torch.stack([torch.as_tensor(b["label"]) for b in pairs])
        return x, y

    seconds = mt.fit(net, batch, loss_fn, steps)
    return net, seconds


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
        "seconds": res.provenance.seconds,
        "brain_ml": res.stats[0].volume_ml,
        "truth_ml": float(truth.sum() * np.prod(vol.geometry.spacing) / 1000),
    }


def bundle_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """``configs/metadata.json`` of the Model-Zoo form, as the Zoo's bundles write it."""
    import monai
    import numpy
    import torch

    roi = manifest["inference"]["roi_size"]
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": manifest["version"],
        "changelog": {manifest["version"]: "trained on Colin27; see MODEL_CARD.md"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "optional_packages_version": {},
        "name": manifest["name"],
        "task": "Brain extraction (skull stripping) on T1-weighted head MR",
        "description": "MedView's brain-extraction model as a MONAI bundle; the same weights as "
        "the MedView package beside it (MODEL_CARD.md there has the evaluation).",
        "authors": "MedView",
        "copyright": "MedView contributors",
        "license": "BSD-3-Clause (training data: Colin27, Debian mricron-data)",
        "data_source": "Colin27 ch2.nii.gz / ch2bet.nii.gz (Debian mricron-data)",
        "data_type": "nibabel",
        "image_classes": "single channel T1 MR, intensity scaled by the 1st-99th percentiles",
        "label_classes": "single channel data, 1 is brain, 0 is everything else",
        "pred_classes": "2 channels OneHot data, channel 1 is brain, channel 0 is background",
        "intended_use": "Research use only, not for diagnosis",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": manifest["modality"],
                    "num_channels": 1,
                    "spatial_shape": roi,
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": {"0": "image"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": 2,
                    "spatial_shape": roi,
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": {"0": "background", "1": "brain"},
                }
            },
        },
    }


def write_bundle(out: Path) -> None:
    """The package in ``out`` also as a Model-Zoo bundle (configs/, models/model.pt)."""
    from medview.inference.loading import verified_weights
    from medview.inference.manifest import read_manifest

    manifest = read_manifest(out)
    mt.write_bundle(MANIFEST, verified_weights(manifest), out, bundle_metadata(MANIFEST))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--smoke", action="store_true", help="2 steps on tiny data; no package")
    ap.add_argument("--out", type=Path, default=HERE, help="package folder to write")
    ap.add_argument(
        "--bundle-only", action="store_true", help="only rewrite the Model-Zoo bundle form"
    )
    args = ap.parse_args(argv)
    if args.bundle_only:
        write_bundle(args.out)
        return 0
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
    write_bundle(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
