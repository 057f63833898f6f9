"""Segmentation overhead: MedView's whole pipeline vs MONAI's bare sliding_window_inference with
the same network on the same (preprocessed) input and device."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from tests.benchmarks.common import print_table

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
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1000, size=(300, 512, 512), dtype=np.int16)
    vol = Volume(
        arr,
        Geometry(shape=arr.shape, origin=(0, 0, 0), spacing=(0.7, 0.7, 1.0)),
        modality="CT",
        units="HU",
    )
    device = resolve_device("auto")
    from medview.inference.loading import load_model

    net = load_model(manifest).to(device)
    pre = preprocess(to_metatensor(vol), manifest)
    x = pre.as_tensor()[None]

    def bare() -> None:
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

    def ours() -> None:
        segment(vol, manifest, device=device, network=net)

    runs = 3 if device != "cpu" else 1
    bare()  # warm-up (allocations, kernels)
    t_bare = statistics.median(_time(bare) for _ in range(runs))
    _reset_peak()
    before = _peak_mib()
    t_ours = statistics.median(_time(ours) for _ in range(runs))
    peak = _peak_mib() - before
    overhead = t_ours - t_bare
    print_table(
        f"Segmentation of a 300 x 512 x 512 CT on {device} "
        f"({os.cpu_count()} CPUs), spleen-sized UNet, median of {runs}",
        [
            ["MONAI sliding_window_inference (bare)", f"{t_bare:.2f}", ""],
            [
                "MedView segment (preprocess + inference + inversion + stats)",
                f"{t_ours:.2f}",
                f"{overhead / t_bare * 100:.0f} %",
            ],
        ],
        ["method", "seconds", "overhead vs bare"],
    )
    print(
        f"peak RSS during MedView's segment: +{peak:.0f} MiB above the loaded volume "
        f"({arr.nbytes / 1024**2:.0f} MiB of int16 voxels)"
    )


def _reset_peak() -> None:
    """Reset the kernel's high-water mark (Linux), so the next peak is this run's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
