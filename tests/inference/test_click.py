"""The nodule click models on real LIDC-IDRI nodules and the demo chest CT: the click path's
geometry, the refusals, the edit it makes, the CLI on a crop written as a DICOM series."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.inference.click import (
    ClickSegment,
    Prompt,
    box_geometry,
    click_problem,
    measure,
    network_input,
    sample,
    to_source,
)
from medview.inference.manifest import read_manifest
from tests.conftest import REPO, missing_outside_ci

MODELS = REPO / "models"
SEG = MODELS / "lung-nodule-segmentation"
MAL = MODELS / "lung-nodule-malignancy"
sys.path.insert(0, str(MODELS))


def lidc_nodules() -> list:
    import lidc

    if not lidc.available():
        missing_outside_ci(f"{lidc.ARCHIVE} (LIDC-IDRI crops beside the project)")
    return lidc.nodules()


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


@pytest.fixture(scope="module")
def nodule() -> tuple:
    """A real solid nodule of about 12 mm: (volume, mask, centre)."""
    import lidc

    nod = next(n for n in lidc_nodules() if 11 < n.diameter_mm < 14)
    volume, mask = lidc.read(nod)
    return volume, mask, lidc.centre_lps(volume, mask)


def test_the_box_is_patient_aligned_whatever_the_series_orientation(nodule: tuple) -> None:
    """The same crop stored with its slices and rows reversed gives the network the same
    input: the box is in patient space, not in the array's order."""
    volume, _mask, centre = nodule
    p = Prompt.of(read_manifest(SEG))
    g = volume.geometry
    flipped_dir = g.direction @ np.diag([1.0, -1.0, -1.0])
    last = g.index_to_lps(np.array([g.shape[0] - 1, g.shape[1] - 1, 0.0]))
    flipped = Volume(
        np.ascontiguousarray(volume.array[::-1, ::-1, :]),
        Geometry(g.shape, last, g.spacing, flipped_dir),
        modality="CT",
    )
    box = box_geometry(centre, p)
    a = network_input(volume, box, [centre], [], p)
    b = network_input(flipped, box, [centre], [], p)
    assert np.abs(a - b).max() < 1e-4
    # and a map on the box comes back onto the source grid where it was
    ones = np.ones(box.shape, np.float32)
    block, back = to_source(ones, box, g)
    inside = np.zeros(g.shape, bool)
    inside[block] = back > 0.5
    centre_idx = tuple(np.round(g.lps_to_index(centre)).astype(int))
    assert inside[centre_idx]
    assert sample(volume.array, g, box, 1, -1000.0).shape == tuple(p.shape)


def test_measures_of_a_known_ellipse() -> None:
    """An ellipsoid with 20 and 10 mm axes in plane: the long and short axes, its volume."""
    g = Geometry((20, 80, 80), np.zeros(3), np.array([0.5, 0.5, 1.0]))
    z, y, x = np.mgrid[:20, :80, :80]
    mask = ((x - 40) * 0.5 / 10) ** 2 + ((y - 40) * 0.5 / 5) ** 2 + ((z - 10) / 6.0) ** 2 <= 1
    hu = np.where(mask, 40, -850).astype(np.int16)
    volume = Volume(hu, g, modality="CT")
    m = measure(
        volume, ClickSegment((slice(0, 20), slice(0, 80), slice(0, 80)), mask, int(mask.sum()))
    )
    assert m.long_axis_mm == pytest.approx(20.5, abs=0.6)
    assert m.short_axis_mm == pytest.approx(10.5, abs=0.6)
    assert m.volume_ml == pytest.approx(4 / 3 * np.pi * 10 * 5 * 6 / 1000, rel=0.05)
    assert m.mean_hu == 40
    assert m.slice_index == 10


def test_clicks_that_cannot_be_a_nodule_say_why(nodule: tuple) -> None:
    manifest = read_manifest(SEG)
    volume, _mask, centre = nodule
    assert click_problem(volume, centre, manifest) == ""
    g = volume.geometry
    air = Volume(np.full(g.shape, -1000, np.int16), g, modality="CT")
    assert "no tissue" in click_problem(air, centre, manifest)
    assert "outside the image" in click_problem(volume, centre + np.array([0, 0, 500.0]), manifest)
    edge = g.index_to_lps(np.array([g.shape[0] // 2, 0, g.shape[2] // 2], float))
    assert "edge" in click_problem(volume, edge, manifest)
    mr = Volume(volume.array, g, modality="MR")
    assert "MR" in click_problem(mr, centre, manifest)
    flat = Volume(volume.array[:1], Geometry((1, *g.shape[1:]), g.origin, g.spacing), modality="CT")
    assert "2-D" in click_problem(
        flat, g.index_to_lps(np.array([0, g.shape[1] / 2, g.shape[2] / 2])), manifest
    )


def test_a_click_segments_a_real_nodule_and_lands_as_an_undoable_segment(nodule: tuple) -> None:
    from medview.inference.clickrun import run_click
    from medview.segedit.editor import SegmentationEditor
    from medview.segedit.nodule import take_nodule

    volume, mask, centre = nodule
    manifest = read_manifest(SEG)
    result = run_click(manifest, volume, [centre], device="cpu")
    pred = result.segment.full(volume.shape)
    assert _dice(pred, mask) > 0.75
    assert result.measures.long_axis_mm > 8
    editor = SegmentationEditor(volume)
    value = take_nodule(editor, result)
    seg = editor.segmentation()
    segment = seg.segment(value)
    assert segment is not None and segment.name == "lung nodule 1"
    assert segment.algorithm_type == "SEMIAUTOMATIC" and segment.algorithm_name == manifest.name
    assert np.array_equal(np.asarray(seg.labels.array) == value, pred)
    # a negative click inside removes a part; undo brings the first answer back
    inside = np.argwhere(pred)
    far = inside[
        np.argmax(np.linalg.norm((inside - inside.mean(0)) * volume.geometry.spacing[::-1], axis=1))
    ]
    fix = run_click(manifest, volume, [centre], [volume.geometry.index_to_lps(far.astype(float))])
    take_nodule(editor, fix, value)
    assert editor.count(value) == fix.segment.voxels
    assert editor.undo() is not None
    assert editor.count(value) == result.segment.voxels


def test_the_malignancy_model_gives_a_probability_with_its_interval(nodule: tuple) -> None:
    from medview.inference.clickrun import run_click

    volume, _mask, centre = nodule
    result = run_click(
        read_manifest(MAL), volume, [centre], device="cpu", segmenter=read_manifest(SEG)
    )
    mal = result.malignancy
    assert 0 <= mal.interval[0] <= mal.probability <= mal.interval[1] <= 1
    assert mal.interval[1] - mal.interval[0] < 0.5
    i = np.round(volume.geometry.lps_to_index(np.array(mal.peak_lps))).astype(int)
    assert np.all(i >= -20)  # the Grad-CAM peak is in the box around the nodule
    assert mal.heatmap.shape == tuple(s.stop - s.start for s in mal.heatmap_block)


def test_run_model_click_on_a_crop_written_as_a_dicom_series(tmp_path: Path, nodule: tuple) -> None:
    """The headless path on a real nodule written as DICOM: labels, summary with measures and
    the malignancy with its interval; a click in air and an MR say why and write nothing."""
    from medview.cli import main
    from medview.export.series_writer import SeriesInfo, write_series

    volume, _mask, centre = nodule
    write_series(
        np.asarray(volume.array),
        volume.geometry,
        tmp_path / "ct",
        SeriesInfo("nodule", body_part="CHEST"),
    )
    click = ",".join(f"{v:.2f}" for v in centre)
    assert (
        main(
            [
                "run-model",
                "lung-nodule-segmentation",
                str(tmp_path / "ct"),
                "--click",
                click,
                "--out",
                str(tmp_path / "seg"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "seg" / "summary.json").read_text())
    assert summary["research_use"].startswith("Research use only")
    assert summary["nodule"]["long_axis_mm"] > 8 and summary["labels"][0]["voxels"] > 0
    assert (tmp_path / "seg" / "labels.nii.gz").is_file()
    assert (
        main(
            [
                "run-model",
                "lung-nodule-malignancy",
                str(tmp_path / "ct"),
                "--click",
                click,
                "--out",
                str(tmp_path / "mal"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "mal" / "summary.json").read_text())
    lo, hi = summary["malignant_interval_95"]
    assert lo <= summary["malignant"] <= hi
    assert "radiologists" in summary["label_definition"]
    corner = ",".join(f"{v:.2f}" for v in volume.geometry.index_to_lps(np.array([1.0, 2.0, 2.0])))
    air = Volume(np.full(volume.shape, -1000, np.int16), volume.geometry, modality="CT")
    write_series(np.asarray(air.array), air.geometry, tmp_path / "air", SeriesInfo("air"))
    assert (
        main(
            [
                "run-model",
                "lung-nodule-segmentation",
                str(tmp_path / "air"),
                "--click",
                click,
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert not (tmp_path / "x" / "summary.json").exists()
    assert (
        main(
            [
                "run-model",
                "lung-nodule-segmentation",
                str(tmp_path / "ct"),
                "--click",
                corner,
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 1
    )
    assert (
        main(
            [
                "run-model",
                "lung-nodule-segmentation",
                str(tmp_path / "ct"),
                "--out",
                str(tmp_path / "z"),
            ]
        )
        == 2
    )


def test_a_clicked_nodule_in_a_drawn_segmentation_exports_as_a_semiautomatic_ai_segment(
    tmp_path: Path, nodule: tuple
) -> None:
    """The SEG names the click model for the nodule and no model for the drawn segment."""
    from medview.export.dicom_objects import build_seg, read_sources
    from medview.export.series_writer import SeriesInfo, write_series
    from medview.inference.clickrun import run_click
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.segedit import tools
    from medview.segedit.editor import SegmentationEditor
    from medview.segedit.nodule import take_nodule

    volume, _mask, centre = nodule
    write_series(np.asarray(volume.array), volume.geometry, tmp_path / "ct", SeriesInfo("seg"))
    series = scan([tmp_path / "ct"]).series[0]
    loaded = load_series(series)
    editor = SegmentationEditor(loaded)
    drawn = editor.add_segment("Lung", (80, 160, 255)).value
    tools.paint(editor, [(1.0, 3.0, 3.0)], 2.0, drawn)
    value = take_nodule(editor, run_click(read_manifest(SEG), loaded, [centre]))
    ds, numbers = build_seg(series, read_sources(series), editor.segmentation())
    by_number = {int(d.SegmentNumber): d for d in ds.SegmentSequence}
    nod, lung = by_number[numbers[value]], by_number[numbers[drawn]]
    assert nod.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert nod.SegmentAlgorithmName == read_manifest(SEG).name
    assert lung.SegmentAlgorithmType == "MANUAL" and "SegmentAlgorithmName" not in lung
    assert "research use" in ds.SeriesDescription.lower()
