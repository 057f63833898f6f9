"""Opening other systems' objects beside the peers, on a 300x512x512 CT: a 100-segment SEG
opened onto the series (MedView: read, place on the grid, statistics) against highdicom's
bare ``segread`` + ``Segmentation.get_volume``; a 50-ROI RT structure set rasterised onto
the series against plastimatch's ``convert --output-labelmap`` on the same grid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.common import median_time, print_table
from tests.conftest import require_tool, write_ct

pytestmark = pytest.mark.benchmark


def _blobs(shape: tuple[int, int, int], n: int, seed: int = 0) -> np.ndarray:
    """``n`` non-overlapping ellipsoids (labels 1..n) on a 10 x 10 in-plane grid of cells,
    each over 20-80 slices."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    cell = shape[1] // 10
    for i in range(n):
        r0, c0 = (i // 10) * cell, (i % 10) * cell
        depth = int(rng.integers(20, 80))
        z0 = int(rng.integers(0, shape[0] - depth))
        zz, yy, xx = np.ogrid[:depth, :cell, :cell]
        h = cell / 2
        ball = ((zz - depth / 2) / (depth / 2)) ** 2 + ((yy - h) / (h - 2)) ** 2 + (
            (xx - h) / (h - 3)
        ) ** 2 < 1
        view = labels[z0 : z0 + depth, r0 : r0 + cell, c0 : c0 + cell]
        view[ball] = i + 1
    return labels


def test_open_seg_and_rtstruct_beside_highdicom_and_plastimatch(tmp_path: Path) -> None:
    import highdicom as hd
    import SimpleITK as sitk

    from medview.core.results import Segment, segmentation_of
    from medview.core.volume import Volume
    from medview.export.dicom_objects import build_seg, read_sources
    from medview.export.nifti import to_sitk
    from medview.export.rtstruct import build_rtstruct
    from medview.io.loader import load_series
    from medview.io.rtstruct import read_rtstruct
    from medview.io.scan import scan
    from medview.io.seg_read import read_seg

    plastimatch = require_tool("plastimatch")
    write_ct(tmp_path / "ct", n=300, rows=512, cols=512, spacing=(0.7, 0.7, 1.0))
    series = scan([str(tmp_path / "ct")]).series[0]
    volume = load_series(series)
    labels = _blobs(volume.shape, 100)
    segments = tuple(Segment(v, f"structure {v}") for v in range(1, 101))
    seg = segmentation_of(volume, Volume(labels, volume.geometry), segments)
    sources = read_sources(series)
    ds, _ = build_seg(series, sources, seg)
    ds.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    frames = int(ds.NumberOfFrames)

    def bare_seg() -> np.ndarray:
        return (
            hd.seg.segread(tmp_path / "seg.dcm")
            .get_volume(combine_segments=True, dtype=np.uint8)
            .array
        )

    def medview_seg() -> object:
        return read_seg(str(tmp_path / "seg.dcm"), series, volume)

    got = np.asarray(read_seg(str(tmp_path / "seg.dcm"), series, volume).labels.array)
    assert np.array_equal(got, labels)
    t_peer, t_ours = median_time(bare_seg, repeats=3), median_time(medview_seg, repeats=3)

    fifty = np.where(labels <= 50, labels, 0).astype(np.uint8)
    seg50 = segmentation_of(volume, Volume(fifty, volume.geometry), segments[:50])
    rt = build_rtstruct(series, sources, seg50)
    rt.save_as(tmp_path / "rt.dcm", enforce_file_format=True)
    contours = sum(len(r.ContourSequence) for r in rt.ROIContourSequence)
    sitk.WriteImage(to_sitk(volume), str(tmp_path / "ct.nrrd"))

    def bare_rt() -> None:
        subprocess.run(
            [
                plastimatch,
                "convert",
                "--input",
                str(tmp_path / "rt.dcm"),
                "--fixed",
                str(tmp_path / "ct.nrrd"),
                "--output-labelmap",
                str(tmp_path / "lm.nrrd"),
            ],
            check=True,
            capture_output=True,
        )

    def medview_rt() -> object:
        return read_rtstruct(str(tmp_path / "rt.dcm"), series, volume)

    back = np.asarray(
        read_rtstruct(str(tmp_path / "rt.dcm"), series, volume).segmentation.labels.array
    )
    assert np.array_equal(back, fifty)
    r_peer, r_ours = median_time(bare_rt, repeats=3), median_time(medview_rt, repeats=3)
    print_table(
        "Opening other systems' objects, 300x512x512 CT (median of 3, seconds)",
        [
            [
                f"SEG, 100 segments, {frames} frames, onto the series",
                f"{t_ours:.2f}",
                f"highdicom segread + get_volume {t_peer:.2f}",
                f"{t_ours / t_peer:.2f}x",
                "1.5x",
            ],
            [
                f"RTSTRUCT, 50 ROIs, {contours} contours, rasterised",
                f"{r_ours:.2f}",
                f"plastimatch convert {r_peer:.2f}",
                f"{r_ours / r_peer:.2f}x",
                "1.0x",
            ],
        ],
        ["what", "MedView", "peer", "ratio", "target"],
    )
