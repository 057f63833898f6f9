"""The report bundle: SEG and SR read back by highdicom (and the SEG by dcmqi), both valid
for dciodvfy; the PDF's text and pages; atomic writes, cancel, a killed export; the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import require_tool, write_ct
from tests.export.conftest import Study, cli_args


def _export(study: Study, out: Path, **options):  # type: ignore[no-untyped-def]
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent, ExportOptions

    content = ExportContent(segmentation=study.label_map, measurements=study.measurements)
    return export_bundle(
        study.series,
        study.volume,
        content,
        out,
        ExportOptions(**options),
        study_series=[study.series],
    )


def _dciodvfy_errors(path: Path) -> list[str]:
    exe = require_tool("dciodvfy")
    r = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]


def _source_uids_in_volume_order(study: Study) -> list[str]:
    from medview.export.dicom_objects import source_order

    return [
        pydicom.dcmread(study.series.instances[i].path, stop_before_pixels=True).SOPInstanceUID
        for i in source_order(study.series)
    ]


def test_seg_reads_back_identical_on_the_source_grid(study: Study, tmp_path: Path) -> None:
    import highdicom as hd

    result = _export(study, tmp_path / "out")
    seg = hd.seg.segread(result.path / "seg.dcm")
    labels = np.asarray(study.label_map.labels.array)
    # segments: the two non-empty labels, numbered in label order, with names, codes, algorithm
    assert [d.segment_number for d in seg.SegmentSequence] == [1, 2]
    liver = seg.get_segment_description(1)
    assert liver.segment_label == "liver"
    assert liver.segmented_property_type.value == "10200004"
    assert liver.algorithm_type.value == "AUTOMATIC"
    assert liver.algorithm_identification[0].AlgorithmName == "Test model"
    assert seg.get_segment_description(2).segment_label == "tumour"
    # masks, per source instance, equal the label map
    uids = _source_uids_in_volume_order(study)
    for number, value in ((1, 1), (2, 3)):
        got = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=[number], skip_overlap_checks=True
        )[..., 0]
        assert np.array_equal(got.astype(bool), labels == value)
    # geometry: every frame sits where the volume's slice is, with the volume's orientation
    g = study.volume.geometry
    by_uid = {u: z for z, u in enumerate(uids)}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        src = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        pos = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        assert np.allclose(pos, g.index_to_lps(np.array([by_uid[src], 0, 0])), atol=1e-3)
    iop = np.array(
        seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient,
        dtype=float,
    )
    assert np.allclose(iop, np.concatenate([g.direction[:, 0], g.direction[:, 1]]), atol=1e-4)
    assert _dciodvfy_errors(result.path / "seg.dcm") == []
    assert result.validation["seg.dcm"]["errors"] == []


def test_dcmqi_reads_our_seg_with_matching_voxels(study: Study, tmp_path: Path) -> None:
    import SimpleITK as sitk

    exe = require_tool("segimage2itkimage")
    result = _export(study, tmp_path / "out")
    out = tmp_path / "dcmqi"
    out.mkdir()
    subprocess.run(
        [
            exe,
            "--inputDICOM",
            str(result.path / "seg.dcm"),
            "--outputDirectory",
            str(out),
            "--outputType",
            "nifti",
        ],
        check=True,
        capture_output=True,
    )
    meta = json.loads((out / "meta.json").read_text())
    names = [s[0]["SegmentLabel"] for s in meta["segmentAttributes"]]
    assert names == ["liver", "tumour"]
    g = study.volume.geometry
    labels = np.asarray(study.label_map.labels.array)
    for i, value in ((1, 1), (2, 3)):
        img = sitk.ReadImage(str(out / f"{i}.nii.gz"))
        arr = sitk.GetArrayFromImage(img)
        zyx = np.argwhere(arr > 0)
        # dcmqi's voxels -> physical points -> our grid indices: whole numbers, same voxels
        d = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
        lps = zyx[:, ::-1] @ d.T + np.array(img.GetOrigin())
        ours = g.lps_to_index(lps)
        assert np.allclose(ours, np.round(ours), atol=1e-3)
        ours = np.round(ours).astype(int)
        mask = np.zeros(labels.shape, bool)
        mask[tuple(ours.T)] = True
        assert np.array_equal(mask, labels == value)


def test_sr_reads_back_with_the_viewers_figures(study: Study, tmp_path: Path) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from medview.core.results import segment_stats
    from medview.viewer.annotations import Measurement, evaluate

    result = _export(study, tmp_path / "out")
    sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(result.path / "sr.dcm"))
    seg = pydicom.dcmread(result.path / "seg.dcm", stop_before_pixels=True)
    shown = [evaluate(Measurement.from_dict(m), study.volume) for m in study.measurements]
    planar = sr.content.get_planar_roi_measurement_groups()
    assert len(planar) == 4

    def value(group, code):  # type: ignore[no-untyped-def]
        (m,) = group.get_measurements(name=code)
        return float(m.value), m.unit.value

    assert value(planar[0], codes.SCT.Length) == (pytest.approx(shown[0]["length_mm"]), "mm")
    assert value(planar[1], codes.SCT.Area) == (pytest.approx(shown[1]["area_mm2"]), "mm2")
    assert value(planar[1], codes.SCT.Mean) == (pytest.approx(shown[1]["mean"]), "[hnsf'U]")
    assert value(planar[2], codes.SCT.Maximum)[0] == pytest.approx(shown[2]["max"])
    assert value(planar[3], codes.SCT.Angle) == (pytest.approx(shown[3]["angle_deg"]), "deg")
    assert planar[1].reference_type.value == "111030"  # Image Region
    volumetric = sr.content.get_volumetric_roi_measurement_groups()
    stats = segment_stats(study.volume, study.label_map.labels.array, study.label_map.segments)
    assert len(volumetric) == len(stats) == 2
    for group, st, number in zip(volumetric, stats, (1, 2), strict=True):
        assert value(group, codes.SCT.Volume) == (pytest.approx(st.volume_ml), "ml")
        assert value(group, codes.SCT.Mean)[0] == pytest.approx(st.mean)
        ref = group.referenced_segment
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert ref.referenced_segment_numbers == [number]
    evidence = {
        item.ReferencedSOPInstanceUID
        for study_item in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study_item.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert evidence == set(_source_uids_in_volume_order(study)) | {seg.SOPInstanceUID}
    assert _dciodvfy_errors(result.path / "sr.dcm") == []


def test_pdf_shows_header_figures_and_volumes(study: Study, tmp_path: Path) -> None:
    from medview.core.results import segment_stats
    from medview.viewer.annotations import Measurement, evaluate

    result = _export(study, tmp_path / "out")
    pdf = result.path / "report.pdf"
    text = subprocess.run(
        [require_tool("pdftotext"), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Sentinelname Qzx" in text and "SENTINELPID7731" in text  # the patient header
    ruler = evaluate(Measurement.from_dict(study.measurements[0]), study.volume)
    ellipse = evaluate(Measurement.from_dict(study.measurements[1]), study.volume)
    assert f"{ruler['length_mm']:.1f} mm" in text
    assert f"mean {ellipse['mean']:.1f} HU" in text
    for st in segment_stats(study.volume, study.label_map.labels.array, study.label_map.segments):
        assert f"{st.volume_ml:.2f}" in text and st.name in text
    for needle in ("Research use only, not for diagnosis", "Test model", "ab" * 32, "Key images"):
        assert needle in text.replace("\n", " ")
    pages = tmp_path / "page"
    subprocess.run([require_tool("pdftoppm"), "-r", "40", "-png", str(pdf), str(pages)], check=True)
    rendered = sorted(tmp_path.glob("page*.png"))
    assert rendered and all(p.stat().st_size > 5000 for p in rendered)
    # key images: the tumour (a finding; the liver is anatomy) and the measurements' slices
    assert sorted(result.files) == sorted(
        ["seg.dcm", "rtstruct.dcm", "sr.dcm", "labels.nii.gz", "report.pdf", "bundle.json"]
        + [f"key-images/key-{i:02d}.png" for i in (1, 2, 3)]
    )
    assert "largest cross-section of tumour" in text
    assert "cross-section of liver" not in text


def test_nifti_label_map_keeps_the_grid(study: Study, tmp_path: Path) -> None:
    from medview.export.bundle import labels_from_nifti

    result = _export(study, tmp_path / "out")
    back = labels_from_nifti(result.path / "labels.nii.gz", study.volume)
    assert np.array_equal(back, study.label_map.labels.array)


def test_zip_bundle_and_no_staging_left(study: Study, tmp_path: Path) -> None:
    import zipfile

    result = _export(study, tmp_path / "out", zip=True)
    assert result.path.suffix == ".zip"
    names = zipfile.ZipFile(result.path).namelist()
    assert any(n.endswith("/report.pdf") for n in names) and any(
        n.endswith("/seg.dcm") for n in names
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == [result.path.name]


def test_cancel_leaves_nothing(study: Study, tmp_path: Path) -> None:
    from medview.core.errors import CancelledError
    from medview.core.tasks import CancelToken
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent

    token = CancelToken()

    def progress(done: int, total: int, message: str = "") -> None:
        if done >= 3:
            token.cancel()

    before = _hashes(study.folder)
    with pytest.raises(CancelledError):
        export_bundle(
            study.series,
            study.volume,
            ExportContent(segmentation=study.label_map, measurements=study.measurements),
            tmp_path / "out",
            cancel=token,
            progress=progress,
        )
    assert list((tmp_path / "out").iterdir()) == []
    assert _hashes(study.folder) == before


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_killed_export_leaves_no_partial_file(tmp_path: Path) -> None:
    """SIGKILL in the middle of a de-identified export: nothing under a final name, sources
    byte-identical, and the next export clears the stale staging folder."""
    from medview.export import bundle

    src = tmp_path / "big"
    write_ct(src, n=300, rows=96, cols=96)
    before = _hashes(src)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medview.cli",
            "export",
            str(src),
            "--out",
            str(out),
            "--deidentify",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    copied: list[Path] = []
    while time.monotonic() < deadline and len(copied) < 20:
        copied = list(out.glob(f"{bundle.STAGING_PREFIX}*/dicom/*/*.dcm"))
        time.sleep(0.02)
    assert proc.poll() is None, "the export ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(copied) >= 20
    left = list(out.iterdir())
    assert left and all(p.name.startswith(bundle.STAGING_PREFIX) for p in left)
    assert _hashes(src) == before
    # a later export removes the stale staging folder (older than STALE_SECONDS)
    old = time.time() - bundle.STALE_SECONDS - 10
    for p in left:
        os.utime(p, (old, old))
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([str(src)]).series[0]
    from medview.export.content import ExportContent

    result = bundle.export_bundle(series, load_series(series), ExportContent(), out)
    assert [p.name for p in out.iterdir()] == [result.path.name]


def test_cli_export_and_a_label_map_from_another_grid(study: Study, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from medview.cli import main
    from medview.core.volume import Volume
    from medview.export.nifti import write_nifti

    rc = main(cli_args(study, tmp_path, "o", "--json"))
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["dciodvfy_errors"] == 0
    if shutil.which("dciodvfy"):  # the export validates what it wrote when it can
        assert out["validated"] == ["rtstruct.dcm", "seg.dcm", "sr.dcm"]
    assert {"seg.dcm", "sr.dcm", "report.pdf", "labels.nii.gz"} <= set(out["files"])
    seg = pydicom.dcmread(Path(out["path"]) / "seg.dcm", stop_before_pixels=True)
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"  # no provenance beside it
    half = Volume(
        np.ascontiguousarray(study.label_map.labels.array[:, ::2, ::2]),
        type(study.volume.geometry)(
            (study.volume.shape[0], 20, 24),
            study.volume.geometry.origin,
            study.volume.geometry.spacing * [2, 2, 1],
            study.volume.geometry.direction,
        ),
    )
    write_nifti(half, tmp_path / "half.nii.gz")
    rc = main(
        [
            "export",
            str(study.folder),
            "--seg",
            str(tmp_path / "half.nii.gz"),
            "--out",
            str(tmp_path / "o2"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "not the series' grid" in err
    assert not (tmp_path / "o2").exists() or not any(
        not p.name.startswith(".") for p in (tmp_path / "o2").iterdir()
    )


def test_fractional_seg_reads_back_and_validates(study: Study, tmp_path: Path) -> None:
    import highdicom as hd

    result = _export(study, tmp_path / "out", segmentation_type="FRACTIONAL")
    seg = hd.seg.segread(result.path / "seg.dcm")
    assert seg.SegmentationType == "FRACTIONAL"
    uids = _source_uids_in_volume_order(study)
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=[2], skip_overlap_checks=True
    )[..., 0]
    assert np.array_equal(got > 0.5, np.asarray(study.label_map.labels.array) == 3)
    assert _dciodvfy_errors(result.path / "seg.dcm") == []


def test_classification_and_warnings_in_the_pdf(study: Study, tmp_path: Path) -> None:
    from medview.core.results import Classification, Provenance
    from medview.core.volume import Volume
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent

    heat = np.zeros(study.volume.shape, np.float32)
    heat[6, 10:30, 10:30] = 0.9
    cls = Classification(
        {"nodule": 0.83, "no nodule": 0.17},
        "nodule",
        "maximum over slices",
        Provenance("cls", "Nodule classifier", "2.0", "ef" * 32, "cpu", 0.7),
        Volume(heat, study.volume.geometry),
    )
    volume = dataclasses.replace(study.volume, warnings=("uneven slice spacing (test)",))
    result = export_bundle(
        study.series, volume, ExportContent(classifications=[cls]), tmp_path / "out"
    )
    text = subprocess.run(
        [require_tool("pdftotext"), str(result.path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for needle in (
        "Nodule classifier",
        "0.830",
        "0.170",
        "Grad-CAM heat map for 'nodule'",
        "ef" * 32,
        "uneven slice spacing (test)",
        "maximum over slices",
    ):
        assert needle in text
    images = subprocess.run(
        [require_tool("pdfimages"), "-list", str(result.path / "report.pdf")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[2:]
    assert len(images) >= 2  # the key image and the Grad-CAM thumbnail


def test_orientation_rounding_between_slices_does_not_stop_the_seg(tmp_path: Path) -> None:
    """Slices whose direction cosines differ by 3e-8 (as on a real GE 3-D T1) are one series
    for the viewer and one orientation for the SEG, with a note; highdicom needs them equal."""
    import numpy as np
    import pydicom

    from medview.core.results import Segment, Segmentation
    from medview.core.volume import Volume
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from tests.conftest import write_ct

    files = write_ct(tmp_path / "ct", n=6)
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        iop = [float(v) for v in ds.ImageOrientationPatient]
        iop[1] += 3.3e-8 * i
        ds.ImageOrientationPatient = [f"{v:.10g}" for v in iop]
        ds.save_as(f)
    series = scan([tmp_path / "ct"]).series[0]
    volume = load_series(series)
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:4, 10:20, 10:20] = 1
    content = ExportContent(
        segmentation=Segmentation(Volume(labels, volume.geometry), (Segment(1, "lesion"),))
    )
    result = export_bundle(series, volume, content, tmp_path / "out")
    assert "seg.dcm" in result.files
    assert any("orientations differ by up to" in w and "rounding" in w for w in result.warnings)
