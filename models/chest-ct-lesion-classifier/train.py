#!/usr/bin/env python3
"""Train, evaluate and package the 2-D chest CT lung-lesion slice classifier.

    python models/chest-ct-lesion-classifier/train.py           # 2 folds + the shipped model
    python models/chest-ct-lesion-classifier/train.py --smoke   # a few steps on tiny data
    python models/chest-ct-lesion-classifier/train.py --evaluate-only   # re-score the folds

Data: the two pyradiomics chest CTs (``lung1``, ``lung2``; PyPI ``pyradiomics-bhklab`` 3.1.4,
BSD-3-Clause). A slice is positive when it holds voxels of the case's real tumour label.
Training also inserts synthetic lesions into the real lung parenchyma of negative slices
(lung masks from the classical pipeline in ``models/chest_ct.py``).

Protocol: fold 1 trains on lung1 and is evaluated on the real slices of lung2, fold 2 the
reverse. Each fold's package runs through MedView's engine (``classify``, slice by slice, with
Grad-CAM) on the held-out CT: ROC AUC of the slice probabilities against the real label, and
for every real lesion slice whether the Grad-CAM peak of that slice lies inside the lesion.
The shipped model is trained the same way on both cases; the fold packages stay in
``evaluation/`` so ``make test`` can reproduce the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import chest_ct  # noqa: E402
import medview_training as mt  # noqa: E402

SEED = 20261125
SIZE = 128
HU_MIN, HU_MAX = -1000.0, 1000.0
FOLDS = {"fold-1": ("lung1", "lung2"), "fold-2": ("lung2", "lung1")}  # train on, test on

MANIFEST: dict[str, Any] = {
    "id": "chest-ct-lesion-classifier",
    "name": "Chest CT: lung lesion per slice",
    "version": "1.0",
    "task": "classification",
    "modality": "CT",
    "body_part": "CHEST",
    "dimensions": 2,
    "network": {
        "class": "ResNet",
        "args": {
            "block": "basic",
            "layers": [1, 1, 1, 1],
            "block_inplanes": [16, 32, 64, 128],
            "spatial_dims": 2,
            "n_input_channels": 1,
            "conv1_t_stride": 2,
            "no_max_pool": True,
            "num_classes": 2,
        },
    },
    "preprocessing": {
        "intensity": {
            "kind": "window",
            "a_min": HU_MIN,
            "a_max": HU_MAX,
            "b_min": 0.0,
            "b_max": 1.0,
            "clip": True,
        },
    },
    "inference": {"roi_size": [SIZE, SIZE], "overlap": 0, "sw_batch_size": 8},
    "classes": ["no lesion", "lung lesion"],
    "gradcam_layer": "layer4",
    "labels": [],
}


def slices(case: str) -> tuple[Any, Any, Any, Any, tuple[float, float]]:
    """(model inputs (n, 1, 256, 256), lesion masks, lung masks (both resized, nearest),
    slice labels, pixel spacing in mm at 256 x 256) — the inputs as ``classify`` makes them."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    ct, lab = chest_ct.load_case(case)
    hu = torch.from_numpy(np.asarray(ct.array, dtype=np.float32))[:, None]
    x = ((hu - HU_MIN) / (HU_MAX - HU_MIN)).clamp(0, 1)  # the manifest's window
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    lab_t = torch.from_numpy(lab.astype(np.float32))[:, None]
    lab_s = F.interpolate(lab_t, size=(SIZE, SIZE), mode="nearest")[:, 0].numpy().astype(np.uint8)
    y = (lab == chest_ct.LESION).reshape(len(lab), -1).any(1)
    sy, sx = ct.geometry.spacing[1], ct.geometry.spacing[0]
    scale = (lab.shape[1] * sy / SIZE, lab.shape[2] * sx / SIZE)
    return x.numpy(), lab_s == chest_ct.LESION, lab_s == chest_ct.LUNG, y, scale


class Sampler:
    """Batches half positive: real lesion slices and negative slices with 1-2 synthetic
    lesions in their lung; the other half real negative slices. Light geometric and intensity
    augmentation on top."""

    def __init__(self, cases: list[str], seed: int, tiny: bool = False):
        import numpy as np
        from monai.transforms import RandAffine

        self.rng = np.random.default_rng(seed)
        self.pos, self.neg = [], []
        for c in cases:
            x, _, lung, y, spacing = slices(c)
            if tiny:
                x, lung = x[:, :, ::4, ::4], lung[:, ::4, ::4]
                spacing = (spacing[0] * 4, spacing[1] * 4)
            for i in range(len(x)):
                (self.pos if y[i] else self.neg).append((x[i, 0], lung[i], spacing))
        self.affine = RandAffine(
            prob=0.8,
            rotate_range=(0.2,),
            scale_range=(0.1, 0.1),
            translate_range=(12, 12),
            padding_mode="zeros",
        )
        self.affine.set_random_state(seed)

    def _synthetic(self) -> Any:
        import numpy as np

        rng = self.rng
        for _ in range(50):
            img, lung, spacing = self.neg[int(rng.integers(len(self.neg)))]
            inside = np.argwhere(lung)
            if len(inside) > 200:
                break
        img, dummy = img.copy(), np.zeros(img.shape, np.uint8)
        for _ in range(int(rng.integers(1, 3))):
            c = tuple(int(v) for v in inside[int(rng.integers(len(inside)))])
            radius = float(np.exp(rng.uniform(np.log(5.0), np.log(25.0))))
            value = (rng.uniform(-100.0, 80.0) - HU_MIN) / (HU_MAX - HU_MIN)
            chest_ct.insert_lesion(img, dummy, c, radius, spacing, value, rng)
        return img

    def batch(self, n: int) -> tuple[Any, Any]:
        import numpy as np
        import torch

        rng = self.rng
        xs, ys = [], []
        for i in range(n):
            if i % 2 == 0:
                real = self.pos and rng.uniform() < 0.5
                img = self.pos[int(rng.integers(len(self.pos)))][0] if real else self._synthetic()
                ys.append(1)
            else:
                img = self.neg[int(rng.integers(len(self.neg)))][0]
                ys.append(0)
            t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None]
            if rng.uniform() < 0.5:
                t = torch.flip(t, dims=[2])
            t = torch.as_tensor(self.affine(t))
            t = t * rng.uniform(0.95, 1.05) + rng.uniform(-0.02, 0.02)
            xs.append(t)
        return torch.stack(xs).float(), torch.tensor(ys)


def train(cases: list[str], steps: int, smoke: bool) -> tuple[Any, float]:
    import torch

    from medview.inference.loading import build_network

    mt.set_seeds(SEED)
    sampler = Sampler(cases, SEED, tiny=smoke)
    net = build_network(MANIFEST["network"]["class"], MANIFEST["network"]["args"])
    seconds = mt.fit(
        net, lambda: sampler.batch(4 if smoke else 16), torch.nn.CrossEntropyLoss(), steps
    )
    return net, seconds


def evaluate(manifest: Any, case: str, device: str = "cpu") -> dict[str, float]:
    """Slice AUC and Grad-CAM peak localisation on ``case`` through MedView's ``classify``."""
    import numpy as np

    from medview.inference.classify import classify

    ct, lab = chest_ct.load_case(case)
    res = classify(ct, manifest, device=device, heatmap=True)
    lesion = lab == chest_ct.LESION
    y = lesion.reshape(len(lesion), -1).any(1)
    p = np.asarray(res.per_slice)[:, 1]
    heat = np.asarray(res.heatmap.array) if res.heatmap is not None else None
    inside, distances = 0, []
    spacing = ct.geometry.spacing
    for z in np.nonzero(y)[0]:
        assert heat is not None
        r, c = np.unravel_index(int(np.argmax(heat[z])), heat[z].shape)
        inside += int(lesion[z, r, c])
        lr, lc = np.nonzero(lesion[z])
        distances.append(float(np.min(np.hypot((lr - r) * spacing[1], (lc - c) * spacing[0]))))
    return {
        "auc": mt.roc_auc(p, y),
        "slices": float(len(y)),
        "lesion_slices": float(y.sum()),
        "series_probability": float(res.probabilities[MANIFEST["classes"][1]]),
        "peak_inside": float(inside),
        "peak_distance_mm_median": float(np.median(distances)) if distances else float("nan"),
        "mean_p_lesion_slices": float(p[y].mean()),
        "mean_p_other_slices": float(p[~y].mean()),
        "seconds": res.provenance.seconds,
    }


def _figures(
    results: dict[str, dict[str, float]], seconds: dict[str, float], steps: int, threads: int
) -> str:
    r1, r2 = results["fold-1"], results["fold-2"]

    def both(fmt: str, key: str) -> tuple[str, str]:
        return fmt.format(r1[key]), fmt.format(r2[key])

    rows = [
        ("slice ROC AUC (real slices)", *[f"**{v}**" for v in both("{:.3f}", "auc")]),
        (
            "slices with the real lesion / all slices",
            f"{r1['lesion_slices']:.0f} / {r1['slices']:.0f}",
            f"{r2['lesion_slices']:.0f} / {r2['slices']:.0f}",
        ),
        (
            "mean probability, lesion slices / other slices",
            f"{r1['mean_p_lesion_slices']:.2f} / {r1['mean_p_other_slices']:.2f}",
            f"{r2['mean_p_lesion_slices']:.2f} / {r2['mean_p_other_slices']:.2f}",
        ),
        ("series probability (maximum over slices)", *both("{:.2f}", "series_probability")),
        (
            "lesion slices whose Grad-CAM peak is inside the lesion",
            f"**{r1['peak_inside']:.0f} of {r1['lesion_slices']:.0f}**",
            f"**{r2['peak_inside']:.0f} of {r2['lesion_slices']:.0f}**",
        ),
        (
            "median distance from the peak to the lesion",
            *both("{:.1f} mm", "peak_distance_mm_median"),
        ),
        ("classification + Grad-CAM through MedView's engine, CPU", *both("{:.1f} s", "seconds")),
    ]
    lines = [
        "| held-out case | fold 1: trained on lung1, tested on lung2 "
        "| fold 2: trained on lung2, tested on lung1 |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"Training: {steps} steps of 16 slices; fold 1 {seconds['fold-1'] / 60:.1f} min, fold 2 "
        f"{seconds['fold-2'] / 60:.1f} min, shipped model {seconds['shipped'] / 60:.1f} min on the "
        f"CPU ({threads} thread{'s' if threads != 1 else ''}), seed {SEED}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return int(
        mt.two_fold_main(
            argv,
            __doc__ or "",
            HERE,
            MANIFEST,
            FOLDS,
            lambda cases, steps, smoke: train(cases, steps, smoke=smoke),
            evaluate,
            _figures,
            default_steps=1500,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
