"""``medview run-model MODEL_ID PATH --click X,Y,Z``: a click model (nodule segmentation or
malignancy) on a point in patient coordinates (LPS, mm)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from medview.core.errors import MedviewError
from medview.core.records import SeriesRecord
from medview.core.volume import Volume


def parse_point(text: str) -> tuple[float, float, float]:
    """``"X,Y,Z"`` in mm (LPS) -> a point; ArgumentTypeError for anything else."""
    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a point as X,Y,Z in mm (patient coordinates, LPS)"
        ) from e
    if not all(np.isfinite((x, y, z))):
        raise argparse.ArgumentTypeError(f"{text!r}: not a finite point")
    return x, y, z


def run_click_model(
    args: argparse.Namespace, manifest: Any, chosen: SeriesRecord, volume: Volume, session: Any
) -> int:
    from medview.core.geometry import Geometry
    from medview.export.nifti import write_nifti
    from medview.inference.clickrun import summary

    if not args.click:
        sys.stderr.write(
            f"medview run-model: {manifest.id} segments what you click on: give --click X,Y,Z "
            "(a point on the nodule in patient coordinates, mm, LPS)\n"
        )
        return 2
    try:
        result = session.run_click(manifest, args.click, args.negative or (), device=args.device)
    except MedviewError as e:
        sys.stderr.write(f"medview run-model: no nodule: {e.message}\n")
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    g = volume.geometry
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[result.segment.block] = result.segment.mask
    write_nifti(
        Volume(labels, Geometry(g.shape, g.origin, g.spacing, g.direction), modality="SEG"),
        out / "labels.nii.gz",
    )
    mal = result.malignancy
    if mal is not None:
        heat = np.zeros(volume.shape, dtype=np.float32)
        heat[mal.heatmap_block] = mal.heatmap
        write_nifti(Volume(heat, g), out / "heatmap.nii.gz")
    from medview.cli.models import _write_summary
    from medview.export.summary import provenance_summary

    label = manifest.labels[0] if manifest.labels else None
    data = {
        **provenance_summary(result),
        "series_uid": chosen.series_uid,
        "series_key": chosen.key,
        "shape": list(volume.shape),
        "spacing": [float(v) for v in g.spacing],
        "labels": [
            {
                "value": 1,
                "name": label.name if label else "lung nodule",
                "snomed_code": label.snomed_code if label else "",
                "voxels": result.segment.voxels,
                "volume_ml": round(result.measures.volume_ml, 4),
            }
        ],
        **summary(result),
        "notes": list(result.notes),
    }
    _write_summary(out, data)
    m = result.measures
    line = (
        f"{manifest.name}: nodule {m.volume_ml * 1000:.0f} mm3, {m.long_axis_mm:.1f} x "
        f"{m.short_axis_mm:.1f} mm, mean {m.mean_hu:.0f} HU"
    )
    if mal is not None:
        line += (
            f"; malignant {mal.probability:.2f} (95 % interval "
            f"{mal.interval[0]:.2f}-{mal.interval[1]:.2f})"
        )
    sys.stdout.write(f"{line}; wrote {out}\n{result.research_use}\n")
    for note in result.notes:
        sys.stderr.write(f"warning: {note}\n")
    return 0
