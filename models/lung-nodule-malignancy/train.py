#!/usr/bin/env python3
"""Train, evaluate and package the lung nodule malignancy model.

    python models/lung-nodule-malignancy/train.py                  # 5 folds + the shipped model
    python models/lung-nodule-malignancy/train.py --evaluate-only  # re-score the kept folds
    python models/lung-nodule-malignancy/train.py --smoke          # a few steps, no packages

Label: "malignant by radiologists' consensus", the LIDC table's ``Diagnosis``: malignant when at
least 2 of the 4 radiologists rated malignancy above 3 (of 5). These are opinions on the CT, not
pathology.

Data: the 792 LIDC-IDRI crops (``models/lidc.py``). The network (a small 3-D ResNet) reads the
box of ``medview.inference.nodule.classifier_input`` around the nodule: HU window and the nodule
mask (the radiologists' in training, jittered 1.5 mm and grown or shrunk by a voxel at random;
the click model's at evaluation and in use).

Protocol: the folds of ``lidc.fold_of`` (patient-level, 5). Fold k's classifier trains on the
other folds; it is scored on fold k's patients through the whole click pipeline: a click within
3 mm of the nodule centre, segmentation by the click model's own fold-k package
(``lung-nodule-segmentation/evaluation/fold-k``, which never saw these patients either), then
the classifier. The calibrator (logistic on the network's logit and log longest diameter) is
cross-fitted: fold k's probabilities come from a calibrator fitted on the other four folds'
out-of-fold rows. The shipped calibrator is fitted on all out-of-fold rows, with 200 bootstrap
members for the 95 % interval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tabular"))
sys.path.insert(0, str(HERE.parents[1]))

import lidc  # noqa: E402
import medview_training as mt  # noqa: E402

SEED = 20261204
EPOCHS = 30
BATCH = 16
LR = 2e-3
JITTER_MM = 1.5
MEMBERS = 200
CARD = "MODEL_CARD.md"
SEGMENTER = HERE.parent / "lung-nodule-segmentation"
CALIBRATION_FEATURES = ["logit", "log_long_axis_mm"]

MANIFEST: dict[str, Any] = {
    "id": "lung-nodule-malignancy",
    "name": "Lung nodule: malignancy by radiologists' consensus (LIDC-IDRI)",
    "version": "1.0",
    "task": "click-classification",
    "modality": "CT",
    "body_part": "CHEST",
    "dimensions": 3,
    "network": {
        "class": "ResNet",
        "args": {
            "block": "basic",
            "layers": [1, 1, 1, 1],
            "block_inplanes": [16, 32, 64, 128],
            "spatial_dims": 3,
            "n_input_channels": 2,
            "conv1_t_size": 3,
            "conv1_t_stride": 2,
            "no_max_pool": True,
            "num_classes": 1,
        },
    },
    "preprocessing": lidc.PREPROCESSING,
    "prompt": {**lidc.BOX, "segmenter": "lung-nodule-segmentation"},
    "classes": ["malignant"],
    "gradcam_layer": "layer2",
    "heatmap": {
        "threshold": 0.5,
        "note": "Grad-CAM of the malignant logit at layer2: cells of about 4 x 3 x 3 mm, "
        "inside the 32 x 36 x 36 mm box around the nodule",
    },
    "calibration": {},
    "supersedes": ["chest-ct-lesion-classifier"],
    "card": CARD,
    "domain": lidc.DOMAIN,
}


def make_net() -> Any:
    from medview.inference.loading import build_network

    return build_network(MANIFEST["network"]["class"], MANIFEST["network"]["args"])


class Case:
    def __init__(self, nodule: lidc.Nodule) -> None:
        self.nodule = nodule
        self.volume, self.mask = lidc.read(nodule)
        self.centre = lidc.centre_lps(self.volume, self.mask)


def draw(case: Case, rng: Any, p: Any) -> Any:
    import numpy as np
    from scipy import ndimage

    from medview.inference.click import ClickSegment, box_geometry
    from medview.inference.nodule import classifier_input

    mask = case.mask
    r = rng.uniform()
    if r < 0.2:
        mask = ndimage.binary_dilation(mask)
    elif r < 0.4 and mask.sum() > 30:
        mask = ndimage.binary_erosion(mask) | (mask & ~ndimage.binary_erosion(mask).any())
    seg = ClickSegment(tuple(slice(0, n) for n in mask.shape), mask, int(mask.sum()))  # type: ignore[arg-type]
    centre = lidc.point_near(case.centre, JITTER_MM, rng)
    x = classifier_input(case.volume, seg, box_geometry(centre, p), p)
    for axis in (1, 2, 3):
        if rng.uniform() < 0.5:
            x = np.flip(x, axis)
    if rng.uniform() < 0.5:
        x = x.swapaxes(2, 3)
    x = x.copy()
    x[0] = x[0] * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)
    return x


def train(cases: list[Case], epochs: int, seed: int) -> tuple[Any, float]:
    import numpy as np
    import torch

    from medview.inference.click import Prompt

    mt.set_seeds(seed)
    rng = np.random.default_rng(seed)
    p = Prompt.of(mt.manifest_object(MANIFEST, HERE))
    net = make_net()
    steps = epochs * (len(cases) // BATCH)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    labels = np.array([c.nodule.malignant for c in cases], dtype=np.float32)
    net.train()
    t0 = time.perf_counter()
    step = 0
    for _epoch in range(epochs):
        order = rng.permutation(len(cases))
        for k in range(0, len(order) - BATCH + 1, BATCH):
            idx = order[k : k + BATCH]
            x = torch.from_numpy(np.stack([draw(cases[i], rng, p) for i in idx]))
            y = torch.from_numpy(labels[idx][:, None])
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
            loss.backward()
            opt.step()
            sched.step()
            mt.log_step(step, steps, loss.detach(), t0)
            step += 1
    net.eval()
    return net, time.perf_counter() - t0


def evaluate(manifest: Any, fold: int) -> list[dict[str, Any]]:
    """One row per held-out nodule of ``fold`` (0-based) through the whole click pipeline."""
    import numpy as np

    from medview.inference.click import Prompt, segment_at
    from medview.inference.loading import load_model
    from medview.inference.manifest import read_manifest
    from medview.inference.nodule import score

    seg_manifest = read_manifest(SEGMENTER / "evaluation" / f"fold-{fold + 1}")
    seg_net, seg_prompt = load_model(seg_manifest), Prompt.of(seg_manifest)
    net = load_model(manifest)
    rng = np.random.default_rng(SEED + fold)
    rows = []
    for nod in (n for n in lidc.nodules() if n.fold == fold):
        volume, truth = lidc.read(nod)
        centre = lidc.centre_lps(volume, truth)
        click = lidc.point_near(centre, lidc.EVAL_CLICK_MM, rng)
        seg = segment_at(seg_net, volume, [click], [], seg_prompt)
        row: dict[str, Any] = {"name": nod.name, "fold": fold, "malignant": nod.malignant}
        if seg.voxels == 0:
            row.update(logit=None)
            rows.append(row)
            continue
        logit, m, cam, box = score(net, manifest, volume, seg)
        peak = box.index_to_lps(np.asarray(np.unravel_index(int(np.argmax(cam)), cam.shape), float))
        i = np.round(volume.geometry.lps_to_index(peak)).astype(int)
        inside = bool(np.all(i >= 0) and np.all(i < truth.shape) and truth[tuple(i)])
        row.update(
            logit=logit,
            long_axis_mm=m.long_axis_mm,
            volume_ml=m.volume_ml,
            mean_hu=m.mean_hu,
            peak_inside=inside,
        )
        rows.append(row)
    return rows


# what `make test` checks a fold package against, nodule by nodule (rows.json)
KEPT = ("fold", "malignant", "logit", "long_axis_mm", "volume_ml", "mean_hu", "peak_inside")


def write_kept_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """The out-of-fold rows without the LIDC case names, in each fold's nodule order
    (`read_kept_rows` names them again from the data)."""
    ordered = sorted(rows, key=lambda r: r["fold"])  # stable: each fold's own order stays
    path.write_text(json.dumps([{k: r.get(k) for k in KEPT} for r in ordered]) + "\n")


def read_kept_rows(path: Path) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text())
    for fold in {r["fold"] for r in rows}:
        names = [n.name for n in lidc.nodules() if n.fold == fold]
        mine = [r for r in rows if r["fold"] == fold]
        if len(names) != len(mine):
            raise ValueError(
                f"rows.json has {len(mine)} rows for fold {fold + 1}, the data {len(names)}"
            )
        for r, name in zip(mine, names, strict=True):
            r["name"] = name
    return rows


def features(rows: list[dict[str, Any]]) -> Any:
    import numpy as np

    from medview.inference.click import NoduleMeasures
    from medview.inference.nodule import FEATURES

    out = []
    for r in rows:
        m = NoduleMeasures(r["volume_ml"], r["long_axis_mm"], 0.0, 0, r["mean_hu"], (0.0, 0.0, 0.0))
        out.append([FEATURES[f](r["logit"], m) for f in CALIBRATION_FEATURES])
    return np.asarray(out, dtype=np.float64)


def fit_calibrator(x: Any, y: Any) -> tuple[float, list[float]]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4, max_iter=1000).fit(x, y)
    return float(lr.intercept_[0]), [float(v) for v in lr.coef_[0]]


def summarize(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cross-fitted figures over the out-of-fold rows, and the shipped calibrator (fitted on
    all of them, with bootstrap members)."""
    import numpy as np
    import risk_training as rt
    from sklearn.metrics import roc_auc_score

    scored = [r for r in rows if r["logit"] is not None]
    x, y = features(scored), np.array([r["malignant"] for r in scored], dtype=int)
    folds = np.array([r["fold"] for r in scored])
    p = np.zeros(len(scored))
    if len(set(folds)) == 1:  # one fold scored so far: the network's figure only
        return {
            "roc_auc_network_logit": float(roc_auc_score(y, x[:, 0])),
            "roc_auc_diameter_only": float(roc_auc_score(y, [r["long_axis_mm"] for r in scored])),
            "gradcam_peak_inside": float(np.mean([r["peak_inside"] for r in scored])),
        }, {}
    for f in sorted(set(folds)):
        b0, b = fit_calibrator(x[folds != f], y[folds != f])
        p[folds == f] = 1 / (1 + np.exp(-(b0 + x[folds == f] @ np.asarray(b))))
    per_fold = {
        f"fold-{f + 1}": float(roc_auc_score(y[folds == f], p[folds == f]))
        for f in sorted(set(folds))
    }
    figures = {
        "nodules": len(rows),
        "segmented": len(scored),
        "malignant": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)),
        "roc_auc_network_logit": float(roc_auc_score(y, x[:, 0])),
        "roc_auc_diameter_only": float(roc_auc_score(y, [r["long_axis_mm"] for r in scored])),
        "roc_auc_by_fold": per_fold,
        "ece": rt.ece(y.astype(float), p),
        "brier": float(np.mean((p - y) ** 2)),
        "reliability": rt.reliability(y.astype(float), p),
        "gradcam_peak_inside": float(np.mean([r["peak_inside"] for r in scored])),
    }
    # the usual literature protocol drops the nodules whose median rating is 3 (indeterminate)
    rating = {n.name: n.malignancy_value for n in lidc.nodules()}
    clear = np.array([rating[r["name"]] != 3 for r in scored])
    figures["roc_auc_without_rating_3"] = float(roc_auc_score(y[clear], p[clear]))
    figures["nodules_without_rating_3"] = int(clear.sum())
    b0, b = fit_calibrator(x, y)
    rng = np.random.default_rng(SEED)
    members = []
    for _ in range(MEMBERS):
        i = rng.integers(0, len(y), len(y))
        c0, c = fit_calibrator(x[i], y[i])
        members.append([round(c0, 6), *(round(v, 6) for v in c)])
    calibration = {"features": CALIBRATION_FEATURES, "intercept": b0, "coef": b, "members": members}
    return figures, calibration


def card_figures(f: dict[str, Any]) -> str:
    folds = " / ".join(f"{v:.3f}" for v in f["roc_auc_by_fold"].values())
    sec = f.get("training_seconds", {})
    lines = [
        "| Figure (held-out patients, 5-fold patient-level CV, click pipeline) | Value |",
        "|---|---|",
        f"| ROC AUC, calibrated probability ({f['segmented']} of {f['nodules']} nodules "
        f"segmented, {f['malignant']} malignant) | **{f['roc_auc']:.3f}** |",
        f"| ROC AUC by fold | {folds} |",
        f"| ROC AUC of the network's logit alone | {f['roc_auc_network_logit']:.3f} |",
        f"| ROC AUC of the measured longest diameter alone | {f['roc_auc_diameter_only']:.3f} |",
        f"| ROC AUC without the nodules rated 3 (indeterminate; "
        f"{f['nodules_without_rating_3']} left) | {f['roc_auc_without_rating_3']:.3f} |",
        f"| Expected calibration error (10 bins) | **{f['ece']:.3f}** |",
        f"| Brier score | {f['brier']:.3f} |",
        f"| Grad-CAM peak inside the radiologists' mask | {f['gradcam_peak_inside']:.1%} |",
    ]
    if sec:
        lines.append(mt.training_time_row("network", sec))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--evaluate-only", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--train-only", action="store_true", help="keep the fold packages, score later")
    ap.add_argument(
        "--shipped-only", action="store_true", help="score the kept rows, train shipped"
    )
    args = ap.parse_args(argv)
    import torch

    from medview.inference.manifest import read_manifest

    torch.set_num_threads(int(os.environ.get("MEDVIEW_TRAIN_THREADS", "2")))
    ev = HERE / "evaluation"
    ev.mkdir(exist_ok=True)
    figures_file = ev / "figures.json"
    kept = json.loads(figures_file.read_text()) if figures_file.is_file() else {}
    seconds = kept.get("training_seconds", {})
    card = (HERE / CARD).read_text()
    all_nodules = lidc.nodules()
    if args.smoke:
        train([Case(n) for n in all_nodules[:32]], 1, SEED)
        print("smoke run: ok")
        return 0
    folds = [] if args.shipped_only else [int(f) for f in args.folds.split(",") if f]
    cases = [] if args.evaluate_only else [Case(n) for n in all_nodules]
    # one row per nodule, named by its LIDC case: kept with the training data, not committed
    rows_file = lidc.CACHE / "lung-nodule-malignancy-rows.json"
    rows = json.loads(rows_file.read_text()) if rows_file.is_file() else []
    for f in folds:
        name = f"fold-{f}"
        if not args.evaluate_only:
            net, seconds[name] = train(
                [c for c in cases if c.nodule.fold != f - 1], args.epochs, SEED + f
            )
            mt.write_package(MANIFEST, net, ev / name, card, half=True)
            kept["training_seconds"] = seconds
            figures_file.write_text(json.dumps(kept, indent=2) + "\n")
        if args.train_only:
            continue
        mt.refresh_manifest(ev / name, MANIFEST)
        rows = [r for r in rows if r["fold"] != f - 1] + evaluate(read_manifest(ev / name), f - 1)
        rows_file.write_text(json.dumps(rows, indent=1) + "\n")
        print(name, "done", flush=True)
    if args.train_only:
        if args.shipped_only:  # the network now, its calibrator when the folds are scored
            net, seconds["shipped"] = train(cases, args.epochs, SEED)
            mt.write_package(MANIFEST, net, HERE, card, half=True)
            kept["training_seconds"] = seconds
            figures_file.write_text(json.dumps(kept, indent=2) + "\n")
        return 0
    figures, calibration = summarize(rows)
    MANIFEST["calibration"] = calibration
    write_kept_rows(ev / "rows.json", rows)
    if args.shipped_only or (not args.evaluate_only and args.folds == "1,2,3,4,5"):
        net, seconds["shipped"] = train(cases, args.epochs, SEED)
        mt.write_package(MANIFEST, net, HERE, card, half=True)
    elif (HERE / "manifest.json").is_file():
        mt.refresh_manifest(HERE, MANIFEST)
    figures.update(training_seconds=seconds, epochs=args.epochs)
    figures_file.write_text(json.dumps(figures, indent=2) + "\n")
    import risk_training as rt

    rt.draw_reliability(
        ev / "reliability.png",
        figures["reliability"],
        "Nodule malignancy, out-of-fold (cross-fitted calibrator)",
    )
    mt.write_figures(HERE / CARD, card_figures(figures))
    print(json.dumps({k: v for k, v in figures.items() if k != "reliability"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
