"""Export on the demo chest CT (61 x 512 x 512): MedView's DICOM SEG (sources re-read, labels
remapped, coded segments, algorithm identification) against highdicom's bare `Segmentation`
on the same headers and masks, and the whole report bundle (SEG, SR, NIfTI, key images, PDF,
dciodvfy when installed), plain and de-identified."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.common import median_time, print_table

pytestmark = pytest.mark.benchmark
DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "lung2"


def test_bench_export() -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from medview.core.results import Provenance, Segment, Segmentation
    from medview.core.volume import Volume
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent, ExportOptions
    from medview.export.dicom_objects import build_seg, read_sources
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([str(DEMO)]).series[0]
    volume = load_series(series)
    labels = np.zeros(volume.shape, np.uint8)
    labels[10:50, 150:350, 100:230] = 1
    labels[20:40, 200:320, 280:400] = 2
    label_map = Segmentation(
        Volume(labels, volume.geometry, volume.frame_of_reference_uid),
        (Segment(1, "right lung", (200, 90, 60)), Segment(2, "left lung", (60, 90, 200))),
        provenance=Provenance("bench", "Bench model", "1.0", "00" * 32, "cpu", 1.0),
    )
    sources = read_sources(series)

    def bare() -> None:
        descriptions = [
            hd.seg.SegmentDescription(n, f"s{n}", codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL")
            for n in (1, 2)
        ]
        hd.seg.Segmentation(
            sources,
            labels,
            "BINARY",
            descriptions,
            generate_uid(),
            900,
            generate_uid(),
            1,
            "x",
            "x",
            "1",
            "1",
        )

    # a fresh Segmentation per call: its voxel counts are cached
    seg_ours = median_time(
        lambda: build_seg(series, sources, dataclasses.replace(label_map)), repeats=3
    )
    reread = median_time(lambda: read_sources(series), repeats=3)
    seg_peer = median_time(bare, repeats=3)
    content = ExportContent(segmentation=label_map)
    with tempfile.TemporaryDirectory() as tmp:
        whole = median_time(
            lambda: export_bundle(series, volume, content, tmp, ExportOptions()), repeats=3
        )
        deid = median_time(
            lambda: export_bundle(series, volume, content, tmp, ExportOptions(deidentify=True)),
            repeats=3,
        )
    print_table(
        "Export, demo chest CT 61 x 512 x 512, two segments (median s)",
        [
            [
                "DICOM SEG (same headers in memory)",
                f"{seg_ours:.3f}",
                f"{seg_peer:.3f}",
                f"{seg_peer / seg_ours:.2f}x",
            ],
            ["re-reading the 61 source headers", f"{reread:.3f}", "-", "-"],
            ["whole bundle", f"{whole:.2f}", "-", "-"],
            ["whole bundle, de-identified (61 copies)", f"{deid:.2f}", "-", "-"],
        ],
        ["case", "MedView", "highdicom bare Segmentation", "ratio"],
    )
