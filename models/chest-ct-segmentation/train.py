#!/usr/bin/env python3
"""Train, evaluate and package the chest CT segmentation model (body, lungs, bone, lesion).

    python models/chest-ct-segmentation/train.py            # 2 folds + the shipped model
    python models/chest-ct-segmentation/train.py --smoke    # a few steps on tiny data (tests)
    python models/chest-ct-segmentation/train.py --evaluate-only   # re-score the kept folds

Data: the two pyradiomics chest CTs (``lung1``, ``lung2``; PyPI ``pyradiomics-bhklab`` 3.1.4,
BSD-3-Clause). Body, lung and bone labels come from the classical pipeline in
``models/chest_ct.py``; the lesion label is each case's real tumour label, and every training
crop also gets synthetic lesions inserted into real lung parenchyma.

Protocol: fold 1 trains on lung1 and is evaluated on lung2, fold 2 the reverse; each fold's
evaluation runs the fold's package through MedView's engine (``segment``) on the held-out CT
and scores it on that CT's grid. The shipped model is trained the same way on both cases. The
fold packages are kept in ``evaluation/`` so that ``make test`` can reproduce the figures.
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

SEED = 20261124
HU_MIN, HU_MAX = -1000.0, 1000.0
AIR = (-1000.0 - HU_MIN) / (HU_MAX - HU_MIN)
FOLDS = {"fold-1": ("lung1", "lung2"), "fold-2": ("lung2", "lung1")}  # train on, test on

MANIFEST: dict[str, Any] = {
    "id": "chest-ct-segmentation",
    "name": "Chest CT: body, lungs, bone, lung lesion",
    "version": "1.0",
    "task": "segmentation",
    "modality": "CT",
    "body_part": "CHEST",
    "dimensions": 3,
    "network": {
        "class": "UNet",
        "args": {
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 5,
            "channels": [16, 32, 64, 128],
            "strides": [2, 2, 2],
            "num_res_units": 1,
            "norm": "instance",
        },
    },
    "preprocessing": {
        "orientation": "RAS",
        "spacing": [1.6, 1.6, 5.0],
        "intensity": {
            "kind": "window",
            "a_min": HU_MIN,
            "a_max": HU_MAX,
            "b_min": 0.0,
            "b_max": 1.0,
            "clip": True,
        },
    },
    "inference": {"roi_size": [128, 128, 32], "overlap": 0.25, "sw_batch_size": 1},
    # a lung lesion is at least 0.5 mL (about 1 cm across) and touches the lung; lungs lie
    # inside the body, so "lung" lying against the outside air (the air under a blanket,
    # taken for lung by the fold-2 model) is not lung; such components go to the label around
    "postprocessing": {
        "min_component_ml": {str(chest_ct.LESION): 0.5},
        "must_touch": {str(chest_ct.LESION): [chest_ct.LUNG]},
        "must_not_touch": {str(chest_ct.LUNG): [0]},
    },
    "labels": [
        {
            "value": chest_ct.BODY,
            "name": "body",
            "color": [230, 160, 120],
            "snomed": {"code": "38266002", "meaning": "Entire body as a whole"},
        },
        {
            "value": chest_ct.LUNG,
            "name": "lung",
            "color": [80, 160, 255],
            "snomed": {"code": "39607008", "meaning": "Lung"},
        },
        {
            "value": chest_ct.BONE,
            "name": "bone",
            "color": [255, 214, 0],
            "snomed": {"code": "272673000", "meaning": "Bone"},
        },
        {
            "value": chest_ct.LESION,
            "name": "lung lesion",
            "color": [255, 40, 40],
            "snomed": {"code": "126713003", "meaning": "Neoplasm of lung"},
        },
    ],
}


def model_grid_case(name: str, manifest: Any) -> tuple[Any, Any, Any]:
    """(image, labels, lung-interior mask) on the model grid, by MedView's preprocessing;
    labels are resampled one-hot and decided by argmax."""
    import numpy as np
    import torch

    from medview.core.volume import Volume
    from medview.inference.resample import resample_grid
    from medview.inference.runner import preprocess, spatial_plan, to_metatensor

    ct, lab = chest_ct.load_case(name)
    image = to_metatensor(ct)
    pre = preprocess(image, manifest)
    affine, shape = spatial_plan(image, manifest)
    onehot = []
    for k in range(len(MANIFEST["labels"]) + 1):
        mask = Volume((lab == k).astype(np.int16), ct.geometry, modality="CT")
        onehot.append(
            resample_grid(to_metatensor(mask).as_tensor().float(), image.affine, affine, shape)
        )
    labels = torch.cat(onehot).argmax(0).numpy().astype(np.uint8)
    img = pre.as_tensor().float()[0].numpy()
    lung = labels == chest_ct.LUNG
    return img, labels, lung


class Sampler:
    """Training crops: 60 % centred on a lesion (real or synthetic), the rest anywhere; every crop
    gets 0-2 synthetic lesions inserted into lung parenchyma before cropping."""

    def __init__(self, cases: list[tuple[Any, Any, Any]], roi: tuple[int, int, int], seed: int):
        import numpy as np
        import SimpleITK as sitk

        self.roi = roi
        self.rng = np.random.default_rng(seed)
        self.cases = []
        spacing = MANIFEST["preprocessing"]["spacing"]
        for img, lab, lung in cases:
            # lesion centres at least 4 mm inside the lung (radius in voxels, x/y only)
            inner = sitk.GetArrayFromImage(
                sitk.BinaryErode(sitk.GetImageFromArray(lung.astype(np.uint8)), [1, 3, 3])
            ).astype(bool)
            self.cases.append((img, lab, np.argwhere(inner), np.argwhere(lab == chest_ct.LESION)))
        self.spacing = tuple(float(s) for s in spacing)

    def _blanket(self, img: Any, lab: Any) -> None:
        """A thin soft-tissue sheet 5-40 mm in front of the body (a blanket or gown), in place,
        labelled background: without it, air enclosed between a blanket and the chest (as in
        lung1, unlike lung2) was taken for lung by a model trained on lung2 alone."""
        import numpy as np

        rng = self.rng
        nx, ny, _ = img.shape  # RAS: +y is anterior
        body = lab > 0
        ys = np.arange(ny)[None, :, None]
        top = np.where(body, ys, -1).max(axis=1)  # (x, z): the most anterior body voxel
        gap = rng.uniform(5.0, 40.0) / self.spacing[1]
        wobble = rng.uniform(0, 3) * np.sin(
            np.arange(nx) / nx * 2 * np.pi * rng.uniform(0.5, 2) + rng.uniform(0, 2 * np.pi)
        )
        value = (rng.uniform(-200.0, 100.0) - HU_MIN) / (HU_MAX - HU_MIN)
        xs, zs = np.nonzero(top >= 0)
        for t in range(int(rng.integers(1, 3))):
            yy = np.round(top[xs, zs] + gap + wobble[xs] + t).astype(int)
            ok = (yy >= 0) & (yy < ny)
            sel = (xs[ok], yy[ok], zs[ok])
            outside = lab[sel] == 0
            img[sel[0][outside], sel[1][outside], sel[2][outside]] = value

    def sample(self) -> tuple[Any, Any]:
        import numpy as np

        rng = self.rng
        img, lab, inner, real = self.cases[int(rng.integers(len(self.cases)))]
        img, lab = img.copy(), lab.copy()
        placed = []
        for _ in range(int(rng.integers(0, 3))):
            if len(inner) == 0:
                break
            c = tuple(int(v) for v in inner[int(rng.integers(len(inner)))])
            radius = float(np.exp(rng.uniform(np.log(3.0), np.log(20.0))))  # 3-20 mm
            hu = rng.uniform(-100.0, 80.0)  # solid soft tissue, sometimes part-solid
            value = (hu - HU_MIN) / (HU_MAX - HU_MIN)
            chest_ct.insert_lesion(img, lab, c, radius, self.spacing, value, rng)
            placed.append(c)
        if rng.uniform() < 0.5:
            self._blanket(img, lab)
        centres = placed + ([tuple(real[int(rng.integers(len(real)))])] if len(real) else [])
        if centres and rng.uniform() < 0.6:
            centre = centres[int(rng.integers(len(centres)))]
        else:
            centre = tuple(int(rng.integers(0, n)) for n in img.shape)
        # zoom out half the time (a smaller patient in a larger field of view, with more
        # outside air): a larger in-plane region, padded with air, shrunk to the crop size
        zoom = rng.uniform(0.6, 1.0) if rng.uniform() < 0.33 else 1.0
        size = (round(self.roi[0] / zoom), round(self.roi[1] / zoom), self.roi[2])
        starts = [  # inside the grid where it is large enough, as a scanner's field of view
            int(
                np.clip(
                    c - r // 2 + rng.integers(-r // 4, r // 4 + 1), min(0, n - r), max(0, n - r)
                )
            )
            for c, r, n in zip(centre, size, img.shape, strict=True)
        ]
        x = np.full(size, AIR, dtype=np.float32)
        y = np.zeros(size, dtype=np.uint8)
        src = tuple(
            slice(max(0, a), min(n, a + r)) for a, r, n in zip(starts, size, img.shape, strict=True)
        )
        dst = tuple(slice(sl.start - a, sl.stop - a) for sl, a in zip(src, starts, strict=True))
        x[dst], y[dst] = img[src], lab[src]
        if zoom < 1.0:
            import torch
            import torch.nn.functional as F

            xt = torch.from_numpy(x)[None, None]
            yt = torch.from_numpy(y.astype(np.float32))[None, None]
            x = F.interpolate(xt, size=self.roi, mode="trilinear", align_corners=False)[
                0, 0
            ].numpy()
            y = F.interpolate(yt, size=self.roi, mode="nearest")[0, 0].numpy().astype(np.uint8)
        # intensity: scanner and reconstruction differences
        x = x * rng.uniform(0.95, 1.05) + rng.uniform(-0.02, 0.02)
        x = x + rng.normal(0, rng.uniform(0.002, 0.01), x.shape)
        return x.astype(np.float32), y


def train(
    cases: list[str], steps: int, roi: tuple[int, int, int], smoke: bool
) -> tuple[Any, float]:
    import torch
    from monai.losses import DiceCELoss

    from medview.inference.loading import build_network

    mt.set_seeds(SEED)
    m = mt.manifest_object(MANIFEST, HERE)
    data = [model_grid_case(c, m) for c in cases]
    if smoke:  # tiny data: every fourth voxel in-plane
        data = [(i[::4, ::4], lab[::4, ::4], lung[::4, ::4]) for i, lab, lung in data]
    sampler = Sampler(data, roi, SEED)
    net = build_network(MANIFEST["network"]["class"], MANIFEST["network"]["args"])
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)

    def batch() -> tuple[Any, Any]:
        pairs = [sampler.sample() for _ in range(2)]
        x = torch.stack([torch.from_numpy(p[0])[None] for p in pairs])
        y = torch.stack([torch.from_numpy(p[1].astype("int64"))[None] for p in pairs])
        return x, y

    return net, mt.fit(net, batch, loss_fn, steps)


def evaluate(manifest: Any, case: str, device: str = "cpu") -> dict[str, float]:
    """Lesion Dice / sensitivity / false positives and lung, bone, body Dice on ``case``
    through MedView's engine, scored on the CT's own grid against its labels."""
    import numpy as np
    import SimpleITK as sitk

    from medview.inference.runner import segment

    ct, truth = chest_ct.load_case(case)
    res = segment(ct, manifest, device=device)
    found = np.asarray(res.labels.array)
    out: dict[str, float] = {"seconds": res.provenance.seconds}
    for name, k in (("body", chest_ct.BODY), ("lung", chest_ct.LUNG), ("bone", chest_ct.BONE)):
        out[f"{name}_dice"] = mt.dice(found == k, truth == k)
    les_t, les_f = truth == chest_ct.LESION, found == chest_ct.LESION
    out["lesion_dice"] = mt.dice(les_f, les_t)
    out["lesion_sensitivity"] = float((les_f & les_t).sum() / max(1, les_t.sum()))
    cc = sitk.GetArrayFromImage(
        sitk.ConnectedComponent(sitk.GetImageFromArray(les_f.astype(np.uint8)))
    )
    hit = set(np.unique(cc[les_t]).tolist()) - {0}
    out["lesion_detected"] = float(bool(hit))
    out["false_positive_components"] = float(int(cc.max()) - len(hit))
    spacing = np.prod(ct.geometry.spacing) / 1000.0
    out["lesion_ml_found"] = float(les_f.sum() * spacing)
    out["lesion_ml_truth"] = float(les_t.sum() * spacing)
    return out


def _figures(
    results: dict[str, dict[str, float]], seconds: dict[str, float], steps: int, threads: int
) -> str:
    r1, r2 = results["fold-1"], results["fold-2"]
    rows = [
        ("lesion Dice", "lesion_dice", "{:.3f}"),
        ("lesion voxel sensitivity", "lesion_sensitivity", "{:.3f}"),
        ("real lesion detected (any overlap)", "lesion_detected", "{:.0f}"),
        ("false-positive lesion components", "false_positive_components", "{:.0f}"),
        ("lesion volume found / reference (mL)", None, ""),
        ("lung Dice (vs classical labels)", "lung_dice", "{:.3f}"),
        ("bone Dice (vs classical labels)", "bone_dice", "{:.3f}"),
        ("body Dice (vs classical labels)", "body_dice", "{:.3f}"),
        ("inference through MedView's engine, CPU", "seconds", "{:.1f} s"),
    ]
    lines = [
        "| held-out case | fold 1: trained on lung1, tested on lung2 "
        "| fold 2: trained on lung2, tested on lung1 |",
        "|---|---|---|",
    ]
    for title, key, fmt in rows:
        if key is None:
            a = f"{r1['lesion_ml_found']:.1f} / {r1['lesion_ml_truth']:.1f}"
            b = f"{r2['lesion_ml_found']:.1f} / {r2['lesion_ml_truth']:.1f}"
        else:
            a, b = fmt.format(r1[key]), fmt.format(r2[key])
        if key in ("lesion_dice", "lung_dice", "bone_dice"):
            a, b = f"**{a}**", f"**{b}**"
        lines.append(f"| {title} | {a} | {b} |")
    lines.append("")
    lines.append(
        f"Training: {steps} steps of 2 crops of 128 x 128 x 32 voxels each; fold 1 "
        f"{seconds['fold-1'] / 60:.1f} min, fold 2 {seconds['fold-2'] / 60:.1f} min, shipped "
        f"model {seconds['shipped'] / 60:.1f} min on the CPU "
        f"({threads} thread{'s' if threads != 1 else ''}), seed {SEED}."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return int(
        mt.two_fold_main(
            argv,
            __doc__ or "",
            HERE,
            MANIFEST,
            FOLDS,
            lambda cases, steps, smoke: train(
                cases,
                steps,
                (32, 32, 16) if smoke else tuple(MANIFEST["inference"]["roi_size"]),
                smoke,
            ),
            evaluate,
            _figures,
            default_steps=500,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
