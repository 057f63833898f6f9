"""SEG, RTSTRUCT and NIfTI label maps from MedView and from other systems, opened onto their
series: round trips, independent peers (plastimatch, dcmqi) and real files from other
software (highdicom, dicompyler-core, TotalSegmentator, pydicom, pydicom-data)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import DEMO_CT, PYDICOM_FILES, pydicom_data_dir, require_tool, write_ct
from tests.io.derived_helpers import dice, open_object, other_systems, save


@pytest.fixture(scope="module")
def demo():  # type: ignore[no-untyped-def]
    """The demo CT and the shipped chest model's segmentation of it."""
    from medview.inference.registry import find_model
    from medview.inference.runner import segment
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([str(DEMO_CT)], workers=1).series[0]
    volume = load_series(series)
    seg = segment(volume, find_model("chest-ct-segmentation"), device="cpu")
    assert len(seg.present()) >= 2
    return series, volume, seg


def test_derived_objects_are_indexed_beside_their_series_not_as_images(tmp_path: Path) -> None:
    from medview.cli import main
    from medview.io.scan import scan

    root = other_systems(tmp_path)
    r = scan([str(root)], workers=1)
    assert {o.kind for o in r.derived} == {"SEG", "RTSTRUCT", "SR"}
    assert not [s for s in r.series if s.modality in ("SEG", "RTSTRUCT", "SR")]
    assert not [k for k in r.skipped if k.path.endswith(("sr_document.dcm", "rtss.dcm"))]
    out = tmp_path / "info.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["info", "--json", str(root)]) == 0
    out.write_text(buf.getvalue())
    tree = json.loads(buf.getvalue())
    series = [s for p in tree["patients"] for st in p["studies"] for s in st["series"]]
    ct = next(s for s in series if s["series_uid"].endswith("20040119072730.12322"))
    assert sorted(d["kind"] for d in ct["derived"]) == ["SEG", "SR", "SR"]
    assert any(d["algorithm"] == "test" for d in ct["derived"])
    rt_ct = next(s for s in series if s["series_uid"].startswith("2.16.840.1.113662"))
    (rtss,) = rt_ct["derived"]
    assert rtss["kind"] == "RTSTRUCT" and rtss["items"] == 10 and rtss["missing_instances"] == 97
    unattached = [
        d for p in tree["patients"] for st in p["studies"] for d in st.get("unattached", [])
    ]
    assert len(unattached) == 5 and all(d["kind"] == "SEG" for d in unattached)


def test_medview_seg_opens_to_the_identical_label_map(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.export.dicom_objects import build_seg, read_sources

    series, _volume, seg = demo
    ds, numbers = build_seg(series, read_sources(series), seg)
    save(ds, tmp_path / "seg" / "seg.dcm")
    obj, _, _, opened = open_object(DEMO_CT, tmp_path / "seg", kind="SEG")
    got = np.asarray(opened.segmentation.labels.array)
    want = np.asarray(seg.labels.array)
    lut = np.zeros(256, np.uint8)
    for value, number in numbers.items():
        lut[value] = number
    assert np.array_equal(got, lut[want])  # segment numbers are the values, in order
    # the model's labels run 1..N, so the map that comes back is the very same map
    assert numbers == {v: v for v in numbers} and np.array_equal(got, want)
    by_name = {s.name: s for s in opened.segmentation.segments}
    for s in seg.present():
        back = by_name[s.name]
        assert back.value == numbers[s.value]
        assert np.abs(np.subtract(back.color, s.color)).max() <= 2  # through CIELab
        assert back.algorithm_type == "AUTOMATIC"
        assert back.algorithm_name == seg.provenance.name[:64]
    assert obj.items == len(numbers)


def test_seg_frames_in_any_order_sparse_fractional_and_overlapping(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """highdicom writes SEGs from the demo CT's slices in reverse order, with only the
    frames that hold voxels, fractional, and with two overlapping segments."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    series, _volume, seg = demo
    from medview.export.dicom_objects import read_sources

    sources = read_sources(series)
    labels = np.asarray(seg.labels.array)
    a = labels == seg.present()[0].value
    b = np.zeros_like(a)
    b[10:14, 100:300, 100:300] = True  # overlaps the first segment
    desc = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type="MANUAL",
        )
        for i, name in enumerate(("first", "box"))
    ]
    rev = slice(None, None, -1)
    for kind, arr in (
        ("BINARY", np.stack([a, b], axis=-1).astype(np.uint8)),
        ("FRACTIONAL", np.stack([a * 0.8, b * 0.3 + b * 0.4], axis=-1).astype(np.float32)),
    ):
        ds = hd.seg.Segmentation(
            source_images=sources[rev],
            pixel_array=arr[rev],
            segmentation_type=kind,
            segment_descriptions=desc,
            series_instance_uid=hd.UID(),
            series_number=50,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="peer",
            manufacturer_model_name="highdicom",
            software_versions="1",
            device_serial_number="1",
            omit_empty_frames=True,
        )
        folder = tmp_path / kind
        save(ds, folder / "seg.dcm")
        _, _, _, opened = open_object(DEMO_CT, folder, kind="SEG")
        got = np.asarray(opened.segmentation.labels.array)
        assert np.array_equal(got == 2, b)  # the later segment is shown where they overlap
        assert np.array_equal(got == 1, a & ~b)
        assert any("overlap" in n for n in opened.notes)
        if kind == "FRACTIONAL":
            assert any("fraction is 0.5" in n for n in opened.notes)


def test_seg_on_another_grid_is_resampled_with_a_note(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import highdicom as hd
    from pydicom.sr.codedict import codes

    series, volume, _ = demo
    from medview.export.dicom_objects import read_sources

    sources = read_sources(series)
    g = volume.geometry
    # a SEG on a grid twice as coarse in-plane, on the series' slices
    rows, cols = volume.shape[1] // 2, volume.shape[2] // 2
    block = np.zeros((volume.shape[0], rows, cols), np.uint8)
    block[8:12, 60:90, 70:110] = 1
    positions = [
        hd.PlanePositionSequence(
            hd.CoordinateSystemNames.PATIENT, g.index_to_lps(np.array([z, 0.25, 0.25]))
        )
        for z in range(volume.shape[0])
    ]
    ds = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=block,
        segmentation_type="BINARY",
        segment_descriptions=[
            hd.seg.SegmentDescription(1, "coarse", codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL")
        ],
        series_instance_uid=hd.UID(),
        series_number=51,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="peer",
        manufacturer_model_name="resampler",
        software_versions="1",
        device_serial_number="1",
        plane_positions=positions,
        plane_orientation=hd.PlaneOrientationSequence(
            hd.CoordinateSystemNames.PATIENT,
            [float(v) for v in g.direction[:, 0]] + [float(v) for v in g.direction[:, 1]],
        ),
        pixel_measures=hd.PixelMeasuresSequence(
            pixel_spacing=[float(g.spacing[1] * 2), float(g.spacing[0] * 2)],
            slice_thickness=float(g.spacing[2]),
        ),
    )
    save(ds, tmp_path / "coarse" / "seg.dcm")
    _, _, _, opened = open_object(DEMO_CT, tmp_path / "coarse", kind="SEG")
    got = np.asarray(opened.segmentation.labels.array) == 1
    want = np.zeros(volume.shape, bool)
    want[8:12, 120:180, 140:220] = True
    assert any("resampled" in n for n in opened.notes)
    assert dice(got, want) > 0.97


def test_medview_rtstruct_opens_within_a_voxel(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.export.dicom_objects import read_sources
    from medview.export.rtstruct import build_rtstruct

    series, _volume, seg = demo
    ds = build_rtstruct(series, read_sources(series), seg)
    save(ds, tmp_path / "rt" / "rtstruct.dcm")
    exe = require_tool("dciodvfy")
    r = subprocess.run([exe, str(tmp_path / "rt" / "rtstruct.dcm")], capture_output=True, text=True)
    assert [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")] == []
    _, _, _, opened = open_object(DEMO_CT, tmp_path / "rt", kind="RTSTRUCT")
    got = np.asarray(opened.segmentation.labels.array)
    want = np.asarray(seg.labels.array)
    for s in seg.present():
        assert dice(got == s.value, want == s.value) >= 0.98, s.name
        back = next(b for b in opened.segmentation.segments if b.value == s.value)
        assert back.name == s.name and back.color == s.color
    assert opened.notes == []


def test_plastimatch_reads_our_rtstruct_as_we_do(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """plastimatch rasterises our structure set on the CT's grid (given as --fixed): every
    ROI agrees with the label map (holes included: they are written as keyhole cuts)."""
    import SimpleITK as sitk

    from medview.export.dicom_objects import read_sources
    from medview.export.nifti import to_sitk
    from medview.export.rtstruct import build_rtstruct

    exe = require_tool("plastimatch")
    series, volume, seg = demo
    save(build_rtstruct(series, read_sources(series), seg), tmp_path / "rt" / "rtstruct.dcm")
    sitk.WriteImage(to_sitk(volume), str(tmp_path / "ct.nrrd"))
    out = tmp_path / "plm"
    subprocess.run(
        [
            exe,
            "convert",
            "--input",
            str(tmp_path / "rt" / "rtstruct.dcm"),
            "--fixed",
            str(tmp_path / "ct.nrrd"),
            "--output-prefix",
            str(out),
            "--prefix-format",
            "nrrd",
        ],
        check=True,
        capture_output=True,
    )
    want = np.asarray(seg.labels.array)
    for s in seg.present():
        img = sitk.ReadImage(str(out / f"{s.name}.nrrd"))
        assert np.allclose(img.GetOrigin(), volume.geometry.origin, atol=1e-3)
        assert np.allclose(img.GetSpacing(), volume.geometry.spacing, atol=1e-4)
        theirs = sitk.GetArrayFromImage(img).astype(bool)
        assert dice(theirs, want == s.value) >= 0.98, s.name


def test_dcmqi_seg_opens_voxel_identical(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.export.nifti import write_nifti

    exe = require_tool("itkimage2segimage")
    _series, _volume, seg = demo
    labels = np.asarray(seg.labels.array)
    values = [s.value for s in seg.present()]
    write_nifti(seg.labels, tmp_path / "labels.nii.gz")
    meta = {
        "ContentCreatorName": "Reader1",
        "ClinicalTrialSeriesID": "1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "dcmqi",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "BodyPartExamined": "CHEST",
        "segmentAttributes": [
            [
                {
                    "labelID": v,
                    "SegmentDescription": f"label {v}",
                    "SegmentAlgorithmType": "MANUAL",
                    "SegmentedPropertyCategoryCodeSequence": {
                        "CodeValue": "85756007",
                        "CodingSchemeDesignator": "SCT",
                        "CodeMeaning": "Tissue",
                    },
                    "SegmentedPropertyTypeCodeSequence": {
                        "CodeValue": "85756007",
                        "CodingSchemeDesignator": "SCT",
                        "CodeMeaning": "Tissue",
                    },
                }
                for v in values
            ]
        ],
        "ContentLabel": "DCMQI",
        "ContentDescription": "dcmqi",
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "dcmqi").mkdir()
    subprocess.run(
        [
            exe,
            "--inputImageList",
            str(tmp_path / "labels.nii.gz"),
            "--inputDICOMDirectory",
            str(DEMO_CT),
            "--outputDICOM",
            str(tmp_path / "dcmqi" / "seg.dcm"),
            "--inputMetadata",
            str(tmp_path / "meta.json"),
            "--skip",
        ],
        check=True,
        capture_output=True,
    )
    _, _, _, opened = open_object(DEMO_CT, tmp_path / "dcmqi", kind="SEG")
    got = np.asarray(opened.segmentation.labels.array)
    for i, v in enumerate(values):  # dcmqi numbers the segments 1..N in its list's order
        assert np.array_equal(got == i + 1, labels == v)


def test_real_structure_set_with_missing_slices(tmp_path: Path) -> None:
    root = other_systems(tmp_path) / "dicompyler-core"
    _obj, _series, volume, opened = open_object(root, kind="RTSTRUCT")
    seg = opened.segmentation
    names = [s.name for s in seg.segments]
    assert len(names) == 10 and {"BODY", "Heart", "Lt Lung", "Tumor Bed"} <= set(names)
    assert next(s for s in seg.segments if s.name == "Heart").color == (255, 128, 0)
    missing = next(n for n in opened.notes if "not in this series" in n)
    assert "97 image(s)" in missing
    assert any(n.startswith("Heart:") and "images not in this series" in n for n in opened.notes)
    # the one slice present: the body outline drawn on it, the body's inside filled
    body = np.asarray(seg.labels.array)[0] == 1
    assert 0.1 < body.mean() < 0.5
    ct = np.asarray(volume.array)[0]
    assert ct[body].mean() > -200 > ct[~body].mean()  # tissue inside, air outside


def test_pydicom_structure_set_points_become_marks(tmp_path: Path) -> None:
    src = pydicom.dcmread(PYDICOM_FILES / "rtstruct.dcm", force=True)
    ref = src.ReferencedFrameOfReferenceSequence[0]
    series_uid = ref.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID
    pts = np.concatenate(
        [
            np.asarray(c.ContourData, float).reshape(-1, 3)
            for rc in src.ROIContourSequence
            for c in rc.ContourSequence
        ]
    )
    z = sorted(set(pts[:, 2]))
    lo = pts.min(axis=0) - 20
    paths = write_ct(
        tmp_path / "ct",
        n=len(z) + 2,
        rows=64,
        cols=64,
        spacing=(
            np.ptp(pts[:, 0]) / 24 + 0.5,
            np.ptp(pts[:, 1]) / 24 + 0.5,
            z[1] - z[0] if len(z) > 1 else 1.0,
        ),
        origin=(lo[0], lo[1], z[0] - (z[1] - z[0] if len(z) > 1 else 1.0)),
    )
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, ref.FrameOfReferenceUID
        ds.StudyInstanceUID = src.StudyInstanceUID
        ds.save_as(p)
    (tmp_path / "rt").mkdir()
    (tmp_path / "rt" / "rtstruct.dcm").write_bytes((PYDICOM_FILES / "rtstruct.dcm").read_bytes())
    _, _, _volume, opened = open_object(tmp_path / "ct", tmp_path / "rt", kind="RTSTRUCT")
    assert [s.name for s in opened.segmentation.segments] == [
        "patient",
        "Isocenter 1",
        "Isocenter 2",
    ]
    assert np.count_nonzero(np.asarray(opened.segmentation.labels.array) == 1) > 0
    marks = [m for m in opened.measurements if m.kind.value == "point"]
    assert len(marks) == 2 and all("Isocenter" in m.text for m in marks)
    assert all(m.source.startswith("RTSTRUCT") for m in marks)


def test_pydicom_data_liver_seg_on_its_grid(tmp_path: Path) -> None:
    """pydicom-data's liver SEG (3 frames, 512x512, from 3D Slicer's editor) on a CT written
    with the geometry and UIDs it references: voxel for voxel highdicom's frames."""
    import highdicom as hd

    path = pydicom_data_dir() / "liver.dcm"
    seg = hd.seg.segread(path)
    frames = seg.PerFrameFunctionalGroupsSequence
    shared = seg.SharedFunctionalGroupsSequence[0]
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    pos = [np.asarray(f.PlanePositionSequence[0].ImagePositionPatient, float) for f in frames]
    order = np.argsort([p[2] for p in pos])
    paths = write_ct(
        tmp_path / "ct",
        n=3,
        rows=512,
        cols=512,
        spacing=(spacing[1], spacing[0], 1.0),
        origin=tuple(pos[order[0]]),
    )
    for z, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        ds.FrameOfReferenceUID = seg.FrameOfReferenceUID
        ds.SOPInstanceUID = (
            frames[int(order[z])]
            .DerivationImageSequence[0]
            .SourceImageSequence[0]
            .ReferencedSOPInstanceUID
        )
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(p)
    (tmp_path / "seg").mkdir()
    (tmp_path / "seg" / "liver.dcm").write_bytes(path.read_bytes())
    _, _, _, opened = open_object(tmp_path / "ct", tmp_path / "seg", kind="SEG")
    got = np.asarray(opened.segmentation.labels.array)
    want = (
        np.asarray(seg.pixel_array)[order] if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    )
    assert np.array_equal(got, want.astype(np.uint8))
    assert got.any() and opened.notes == []
    assert opened.segmentation.segments[0].algorithm_type in (
        "MANUAL",
        "SEMIAUTOMATIC",
        "AUTOMATIC",
    )


def test_highdicom_seg_on_its_ct_slice(tmp_path: Path) -> None:
    import highdicom as hd

    root = other_systems(tmp_path) / "highdicom"
    (tmp_path / "one").mkdir()
    for name in ("ct_image.dcm", "seg_image_ct_binary_single_frame.dcm"):
        (tmp_path / "one" / name).write_bytes((root / name).read_bytes())
    _, _, _, opened = open_object(tmp_path / "one", kind="SEG")
    want = hd.seg.segread(root / "seg_image_ct_binary_single_frame.dcm").pixel_array
    got = np.asarray(opened.segmentation.labels.array)
    assert np.array_equal(got.reshape(want.shape), want)
    s = opened.segmentation.segments[0]
    assert (s.name, s.snomed_meaning, s.algorithm_name, s.algorithm_version) == (
        "first segment",
        "Bone",
        "test",
        "v1.0",
    )


def test_totalsegmentator_label_map_onto_its_dicom_series(tmp_path: Path) -> None:
    import nibabel as nib

    from medview.io.labelmap import label_names, read_labelmap
    from medview.io.loader import load_series
    from medview.io.scan import scan

    root = other_systems(tmp_path) / "totalsegmentator"
    (series,) = scan([str(root / "ct_dicom")], workers=1).series
    volume = load_series(series)
    seg = read_labelmap(root / "seg_labels.nii.gz", volume, label_names(root / "seg_labels.csv"))
    assert seg.notes == ()  # a flip, not a resampling
    raw = np.asanyarray(nib.load(root / "seg_labels.nii.gz").dataobj)
    assert len(seg.segments) == len(np.unique(raw)) - 1 == 31
    got = np.asarray(seg.labels.array)
    assert int((got > 0).sum()) == int((raw > 0).sum())
    stats = {s.name: s for s in seg.stats}
    # on the right voxels: organs have their HU (a flipped row axis would put the liver
    # partly in fat and air)
    assert 40 < stats["liver"].mean < 150 and 30 < stats["spleen"].mean < 150
    assert stats["liver"].sd < 60
