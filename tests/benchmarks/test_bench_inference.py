"""Segmentation overhead: MedView's whole pipeline vs MONAI's bare sliding_window_inference with
the same network on the same (preprocessed) input and device.

Inputs: the demo chest CT resliced to 300 slices (real anatomy, so the label map has real
boundaries), and uniform noise, a worst case in which most of the label map sits on a
boundary and must be interpolated voxel by voxel."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from tests.benchmarks.common import REPO, print_table

pytestmark = pytest.mark.benchmark

# a spleen_ct_segmentation-sized UNet (MONAI Model Zoo), randomly initialised
NET = {
    "class": "UNet",
    "args": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "channels": [16, 32, 64, 128, 256],
        "strides": [2, 2, 2, 2],
        "num_res_units": 2,
        "norm": "batch",
    },
}


def test_bench_segmentation_overhead(tmp_path: Path) -> None:
    import torch
    from monai.inferers import sliding_window_inference

    from medview.inference.package import save_package
    from medview.inference.runner import preprocess, resolve_device, segment, to_metatensor
    from tests.inference.conftest import random_state, seg_manifest

    manifest = save_package(
        tmp_path,
        seg_manifest(
            "bench-seg",
            network=NET,
            preprocessing={
                "orientation": "RAS",
                "spacing": [1.5, 1.5, 2.0],
                "intensity": {
                    "kind": "window",
                    "a_min": -57,
                    "a_max": 164,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
            },
            inference={"roi_size": [96, 96, 96], "overlap": 0.25, "sw_batch_size": 4},
            labels=[{"value": 1, "name": "organ", "color": [255, 0, 0]}],
        ),
        random_state(NET),
        "# benchmark",
    )
    device = resolve_device("auto")
    from medview.inference.loading import load_model

    net = load_model(manifest).to(device)
    rows, notes = [], []
    for name, vol in (("chest CT", _chest_ct_300()), ("uniform noise", _noise_300())):
        pre = preprocess(to_metatensor(vol), manifest)
        x = pre.as_tensor()[None]

        def bare(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                sliding_window_inference(
                    x.to(device),
                    manifest.roi_size,
                    manifest.sw_batch_size,
                    net,
                    overlap=manifest.overlap,
                    mode="gaussian",
                    sw_device=device,
                    device="cpu",
                )

        results: list = []  # (timings, labelled fraction): label maps are not kept

        def ours(vol: Volume = vol, results: list = results) -> None:
            r = segment(vol, manifest, device=device, network=net)
            results.append((dict(r.provenance.timings), r.stats[0].voxels / vol.array.size))

        runs = 5
        bare()  # warm-up (allocations, kernels)
        # interleaved, so drifting machine load hits both alike
        t_bare, t_ours, peaks = [], [], []
        for _ in range(runs):
            t_bare.append(_time(bare))
            _reset_peak()
            before = _status_mib("VmRSS")
            t_ours.append(_time(ours))
            peaks.append(_status_mib("VmHWM") - before)
        peak = max(peaks)
        tb, to = statistics.median(t_bare), statistics.median(t_ours)
        parts = ", ".join(
            f"{k} {statistics.median(t[k] for t, _ in results):.2f}"
            for k in ("preprocess", "inference", "labels", "statistics")
        )
        rows.append([name, f"{tb:.2f}", f"{to:.2f}", f"{(to - tb) / tb * 100:.0f} %"])
        notes.append(
            f"{name}: {parts} s; {results[-1][1] * 100:.0f} % labelled; "
            f"peak RSS during segment +{peak:.0f} MiB above the loaded volume "
            f"({vol.array.nbytes / 1024**2:.0f} MiB)"
        )
    print_table(
        f"Segmentation of a 300 x 512 x 512 CT on {device} ({os.cpu_count()} CPUs), "
        f"spleen-sized UNet, median of {runs} interleaved runs",
        rows,
        ["input", "MONAI bare (s)", "MedView segment (s)", "overhead vs bare"],
    )
    for n in notes:
        print(n)


def _chest_ct_300() -> Volume:
    """The demo chest CT (61 x 512 x 512, 5 mm) resliced linearly to 300 slices of 1.0 mm."""
    from medview.io.loader import load_series
    from medview.io.scan import scan

    src = load_series(scan([REPO / "resources" / "demo" / "lung2"]).series[0])
    z = np.linspace(0, src.shape[0] - 1, 300)
    i0 = np.floor(z).astype(int)
    i1 = np.minimum(i0 + 1, src.shape[0] - 1)
    w = (z - i0)[:, None, None].astype(np.float32)
    arr = np.rint(src.array[i0] * (1 - w) + src.array[i1] * w).astype(np.int16)
    g = src.geometry
    spacing = (g.spacing[0], g.spacing[1], g.spacing[2] * (src.shape[0] - 1) / 299)
    geometry = Geometry(arr.shape, g.origin, spacing, g.direction)
    return Volume(arr, geometry, modality="CT", units="HU")


def _noise_300() -> Volume:
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1000, size=(300, 512, 512), dtype=np.int16)
    return Volume(
        arr,
        Geometry(shape=arr.shape, origin=(0, 0, 0), spacing=(0.7, 0.7, 1.0)),
        modality="CT",
        units="HU",
    )


def _reset_peak() -> None:
    """Reset the kernel's high-water mark (Linux), so the next peak is this run's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
