"""Real scanner series (dcm2niix's `dcm_qa_ts` and `dcm_qa_nih` collections in
../shared/realdata) against dcm2niix's reference volumes: same shape after reorientation,
geometry within 0.05 mm, identical voxels, and every reference volume reached. Siemens mosaics
are unpacked; GE 4-D EPI (images repeating the same positions) is split into its volumes. A
damaged CSA header or an impossible tile count gives a warning and the stored image, never a
wrong one; 10,000 one-slice volumes assemble in linear time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import extract_realdata


@pytest.fixture(scope="module")
def realdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = ("dcm_qa_ts", "dcm_qa_nih", "dcm_qa_enh", "dcm_qa_12bit")
    return extract_realdata(names, tmp_path_factory.mktemp("realdata"))


def _canonical(volume, folder: Path):  # type: ignore[no-untyped-def]
    import nibabel as nib

    from medview.export.nifti import write_nifti

    path = folder / "medview.nii.gz"
    write_nifti(volume, path)
    img = nib.as_closest_canonical(nib.load(path))
    return img.affine, np.asarray(img.get_fdata())


def _same(volume, ref, folder: Path, tol: float = 0.0) -> bool:  # type: ignore[no-untyped-def]
    """Same shape after reorientation, geometry within 0.05 mm, voxels equal (or within
    ``tol``)."""
    import nibabel as nib

    affine, data = _canonical(volume, folder)
    r = nib.as_closest_canonical(ref)
    rd = np.asarray(r.get_fdata())
    return (
        data.shape == rd.shape
        and float(np.abs(affine - r.affine).max()) <= 0.05
        and float(np.abs(data - rd).max()) <= tol
    )


def test_mosaics_match_dcm2niix_and_no_volume_is_lost(realdata: Path, tmp_path: Path) -> None:
    import nibabel as nib

    from medview.io.loader import load_series
    from medview.io.scan import scan

    reached, expected = 0, 0
    # one mosaic in nine transfer syntaxes: each file one 64 x 64 x 35 volume
    ts = realdata / "dcm_qa_ts"
    for k in range(1, 10):
        ref = nib.load(ts / "Ref" / f"{k}.nii")
        expected += 1
        stacks = scan([str(ts / "In" / f"{k}.dcm")]).series
        assert len(stacks) == 1 and stacks[0].shape == (35, 64, 64)
        assert not any("mosaic" in w.lower() for w in stacks[0].warnings)
        assert _same(load_series(stacks[0]), ref, tmp_path), k
        reached += 1
    # EPI in four phase-encoding directions, two volumes each (one mosaic file per volume)
    nih = realdata / "dcm_qa_nih"
    for folder, name in (
        ("mr_0003", "EPI_PE=AP_3"),
        ("mr_0004", "EPI_PE=PA_4"),
        ("mr_0005", "EPI_PE=RL_5"),
        ("mr_0006", "EPI_PE=LR_6"),
    ):
        ref = nib.load(nih / "Ref" / f"{name}.nii")
        volumes = [ref.slicer[..., t] for t in range(ref.shape[3])]
        expected += len(volumes)
        loaded = [load_series(s) for s in scan([str(nih / "In" / "20180918Si" / folder)]).series]
        for v in volumes:  # each reference volume is one MedView can reach
            assert any(_same(m, v, tmp_path) for m in loaded), name
            reached += 1
    assert reached == expected == 17


def _copy_with_csa(realdata: Path, tmp_path: Path, csa: bytes) -> Path:
    ds = pydicom.dcmread(realdata / "dcm_qa_ts" / "In" / "1.dcm")
    ds[0x0029, 0x1010].value = csa
    out = tmp_path / "mosaic.dcm"
    ds.save_as(out)
    return out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "tile count"])
def test_damaged_mosaic_warns_and_is_not_unpacked(
    realdata: Path, tmp_path: Path, damage: str
) -> None:
    from medview.io.loader import load_series
    from medview.io.scan import scan

    csa = pydicom.dcmread(realdata / "dcm_qa_ts" / "In" / "1.dcm")[0x0029, 0x1010].value
    if damage == "truncated":
        csa = csa[:40]
    elif damage == "garbage":
        csa = bytes(range(256)) * 8
    else:  # NumberOfImagesInMosaic 35 -> 99: ten tiles a side do not divide 384 pixels
        at = csa.find(b"35", csa.find(b"NumberOfImagesInMosaic"))
        csa = csa[:at] + b"99" + csa[at + 2 :]
    stack = scan([str(_copy_with_csa(realdata, tmp_path, csa))]).series[0]
    assert any("mosaic" in w and "not unpacked" in w for w in stack.warnings), stack.warnings
    assert stack.shape == (1, 384, 384)
    assert load_series(stack).shape == (1, 384, 384)


def test_ge_4d_epi_every_volume_reached_in_order(realdata: Path, tmp_path: Path) -> None:
    """Four GE fMRI runs of 150 files: 15 positions x 10 volumes each (dcm2niix: 64 x 64 x 15
    x 10). Before, 135 images per run were dropped as duplicates."""
    import nibabel as nib

    from medview.io.loader import load_series
    from medview.io.scan import scan

    nih = realdata / "dcm_qa_nih"
    reached = 0
    for run in (4, 5, 6, 7):
        ref = nib.load(nih / "Ref" / f"DCM2NIIX_regression_test_{run}.nii")
        stacks = scan([str(nih / "In" / "20180918GE" / f"mr_{run:04d}")]).series
        assert len(stacks) == ref.shape[3] == 10
        for t, stack in enumerate(stacks):
            assert stack.volume_label.startswith(f"volume {t + 1} of 10")
            assert not any("duplicate" in w for w in stack.warnings)
            assert _same(load_series(stack), ref.slicer[..., t], tmp_path), (run, t)
            reached += 1
    assert reached == 40


def test_ten_thousand_one_slice_volumes_assemble_in_linear_time() -> None:
    import time

    from medview.core.records import InstanceRecord
    from medview.io.assemble import assemble_series

    def rec(i: int) -> InstanceRecord:
        return InstanceRecord(
            path=f"/x/{i}.dcm",
            file_size=1,
            mtime_ns=0,
            sop_instance_uid=f"1.2.{i}",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            series_uid="1.2.3",
            instance_number=i + 1,
            rows=4,
            columns=4,
            bits_allocated=16,
            image_position=(0.0, 0.0, 0.0),
            image_orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
            pixel_spacing=(1.0, 1.0),
            pixel_offset=100,
            pixel_length=32,
        )

    times = {}
    for n in (2_500, 10_000):
        records = [rec(i) for i in range(n)]
        t0 = time.perf_counter()
        stacks = assemble_series(records)
        times[n] = time.perf_counter() - t0
        assert len(stacks) == n  # every one reachable
    assert times[10_000] < 10 * max(times[2_500], 0.05)  # 4x the images: not 16x the time


def test_enhanced_multiframe_4d_volumes(realdata: Path, tmp_path: Path) -> None:
    """Enhanced multi-frame MR: Siemens XA10 (four files of one volume each; dcm2niix
    64 x 64 x 6 x 4) and a Philips field map whose one file holds two volumes at the same 32
    positions (magnitude, then the field map in Hz). The Philips magnitude differs from
    dcm2niix's by its private "precise" scaling, 1 / (RescaleSlope x ScaleSlope), which
    MedView does not apply: it gives the standard rescaled values."""
    import nibabel as nib

    from medview.io.loader import load_series
    from medview.io.scan import scan

    enh = realdata / "dcm_qa_enh"
    si = nib.load(enh / "Ref" / "Siemens_REST1_w_SMS_PF7-8_6.nii")
    stacks = scan([str(enh / "In" / "Siemens" / "XA10")]).series
    assert len(stacks) == si.shape[3] == 4
    for t in range(4):  # each reference volume is one of the stacks
        assert any(_same(load_series(s), si.slicer[..., t], tmp_path) for s in stacks), t
    philips = scan([str(enh / "In" / "Philips")]).series
    assert [s.volume_label[:11] for s in philips] == ["volume 1 of", "volume 2 of"]
    assert not any("duplicate" in w for s in philips for w in s.warnings)
    magnitude, field = (load_series(s) for s in philips)
    _, ours = _canonical(magnitude, tmp_path)
    ref = np.asarray(
        nib.as_closest_canonical(nib.load(enh / "Ref" / "Philips_WIP_B0_NS_801_e1.nii")).get_fdata()
    )
    precise = 1 / (1.27985347985347 * 8.44864e-06)  # the file's RescaleSlope and ScaleSlope
    np.testing.assert_allclose(ours * precise, ref, rtol=1e-5, atol=1e-3)
    assert _same(
        field, nib.load(enh / "Ref" / "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii"), tmp_path, 0.01
    )


def test_12_bit_mosaics_sharing_one_uid_are_all_kept(realdata: Path, tmp_path: Path) -> None:
    """Three files of one SOP Instance UID with different pixels (12-bit signed, unsigned,
    unsigned with stray high bits): three images, as dcm2niix writes them, not one."""
    import nibabel as nib

    from medview.io.loader import load_series
    from medview.io.scan import scan

    bit12 = realdata / "dcm_qa_12bit"
    stacks = scan([str(bit12 / "In")]).series
    assert sorted(s.series_number for s in stacks) == [2, 3, 4]
    for s in stacks:
        ref = nib.load(bit12 / "Ref" / f"{s.series_number}.nii")
        assert _same(load_series(s), ref, tmp_path), s.series_number


@pytest.mark.parametrize(
    ("source", "reference"),
    [
        ("dcm_qa_nih/In/20180918GE/mr_0004", "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii"),
        ("dcm_qa_nih/In/20180918Si/mr_0003", "dcm_qa_nih/Ref/EPI_PE=AP_3.nii"),
        ("dcm_qa_enh/In/Siemens/XA10", "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii"),
    ],
    ids=["GE fMRI", "Siemens mosaic EPI", "Siemens XA10 enhanced"],
)
def test_cli_load_writes_the_4d_series_like_dcm2niix(
    realdata: Path, tmp_path: Path, source: str, reference: str
) -> None:
    import nibabel as nib

    from medview.cli import main

    out = tmp_path / "4d.nii.gz"
    assert main(["load", str(realdata / source), "--out", str(out)]) == 0
    ours = nib.as_closest_canonical(nib.load(out))
    ref = nib.as_closest_canonical(nib.load(realdata / reference))
    assert ours.shape == ref.shape and len(ref.shape) == 4
    assert float(np.abs(ours.affine - ref.affine).max()) <= 0.05
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(ref.get_fdata()))
    one = tmp_path / "one.nii.gz"
    assert main(["load", str(realdata / source), "--volume", "2", "--out", str(one)]) == 0
    second = nib.as_closest_canonical(nib.load(one))
    assert np.array_equal(np.asarray(second.dataobj), np.asarray(ref.get_fdata())[..., 1])
    assert main(["load", str(realdata / source), "--volume", "99", "--out", str(one)]) == 2


# every series of the shared real data (dcm_qa_ts: one mosaic in 9 transfer syntaxes)
REAL_SERIES = [
    "dcm_qa_enh/In/Siemens/XA10",
    "dcm_qa_enh/In/Philips",
    *(f"dcm_qa_nih/In/20180918GE/mr_000{k}" for k in (4, 5, 6, 7)),
    *(f"dcm_qa_nih/In/20180918Si/mr_000{k}" for k in (3, 4, 5, 6)),
    *(f"dcm_qa_ts/In/{k}.dcm" for k in range(1, 10)),
    "dcm_qa_12bit/In/12bitUnsigned.dcm",
    "dcm_qa_12bit/In/12bitUnsigned_0x0F0F.dcm",
    "dcm_qa_12bit/In/12bitSigned_0x0F0F.dcm",
]


@pytest.mark.parametrize("case", REAL_SERIES)
def test_seg_and_sr_of_real_series_are_dciodvfy_clean(
    realdata: Path, tmp_path: Path, capsys, case: str
) -> None:  # type: ignore[no-untyped-def]
    """A segmentation of every real series (Siemens XA enhanced with its geometry in the
    per-frame groups, Philips enhanced, GE, Siemens mosaics) exports as SEG and SR that
    dciodvfy passes."""
    from medview.io.scan import scan
    from tests.conftest import require_tool

    require_tool("dciodvfy")
    stack = scan([str(realdata / case)]).series[0]
    rc, report = _export_bright_seg(realdata / case, stack, tmp_path, capsys)
    assert rc == 0
    assert sorted(report["validated"]) == ["rtstruct.dcm", "seg.dcm", "sr.dcm"]
    assert report["dciodvfy_errors"] == 0, report["warnings"]


def _dciodvfy_errors(path: Path) -> list[str]:
    import subprocess

    from tests.conftest import require_tool

    run = subprocess.run([require_tool("dciodvfy"), str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("case", REAL_SERIES)
def test_deidentified_copies_add_no_dciodvfy_error(
    realdata: Path, tmp_path: Path, case: str
) -> None:
    """The de-identified copy of each real series has no more dciodvfy errors than its
    source, file by file (dummy values where the profile allows them and the attribute may be
    Type 1; sequences that need an item keep it), and none of the source's identifying
    values."""
    import pydicom

    from medview.cli import main
    from medview.io.scan import scan

    stacks = scan([str(realdata / case)]).series
    stack = stacks[0]
    out = tmp_path / "out"
    assert main(["export", str(realdata / case), "--series", stack.key, "--out", str(out),
                 "--deidentify"]) == 0  # fmt: skip
    copies = sorted(out.rglob("dicom/*/*.dcm"))
    assert copies
    # the copy is of the whole series (every volume of a 4-D one)
    instances = {r.path: r for s in stacks if s.series_uid == stack.series_uid for r in s.instances}
    sources = {}
    for path in instances:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        sources[str(ds.get("InstanceNumber", ""))] = (path, ds)
    assert len(sources) == len(instances) == len(copies)  # each copy matched to its source
    identifying = set()
    for _, ds in sources.values():
        for kw in (
            "PatientName",
            "PatientID",
            "InstitutionName",
            "StationName",
            "DeviceSerialNumber",
        ):
            value = str(ds.get(kw, "") or "").strip()
            if len(value) >= 4:
                identifying.add(value.encode())
    for copy in copies:
        ds = pydicom.dcmread(copy, stop_before_pixels=True)
        key = str(ds.get("InstanceNumber", ""))
        assert len(_dciodvfy_errors(copy)) <= len(_dciodvfy_errors(Path(sources[key][0]))), copy
        data = copy.read_bytes()
        # the copy's new UIDs are random digits: a short serial number may turn up in one by
        # chance (it did: 35131 in a 2.25 UID), so they are taken out before the search
        for uid in {str(e.value) for e in [*ds.iterall(), *ds.file_meta] if e.VR == "UI"}:
            if uid.startswith("2.25."):
                data = data.replace(uid.encode(), b"")
        assert not [v for v in identifying if v in data], copy


def test_enhanced_series_open_with_the_scanners_window(realdata: Path) -> None:
    """Enhanced multi-frame MR keeps its Window Center/Width in the functional groups: the
    viewer opens with it (before: an automatic window, a nearly black or white image)."""
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.viewer.windowing import initial_window

    for case, window in (
        ("dcm_qa_enh/In/Siemens/XA10", (625.0, 1361.0)),
        ("dcm_qa_enh/In/Philips", (959.0, 1667.0)),
    ):
        volume = load_series(scan([str(realdata / case)]).series[0])
        assert volume.window == window, case
        shown = initial_window(volume.modality, volume.array[0], volume.window)
        assert (shown.center, shown.width) == window


def test_empty_source_sequence_does_not_make_seg_and_sr_invalid(
    realdata: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """A real Philips series whose headers carry an empty ProcedureCodeSequence (as some
    Philips scanners write): the SEG and SR built from it stay dciodvfy-clean (highdicom copies
    study attributes as they are; an empty Type 3 sequence is an error)."""

    from pydicom.sequence import Sequence as PydicomSequence

    from medview.io.scan import scan
    from tests.conftest import require_tool

    require_tool("dciodvfy")
    folder = tmp_path / "philips"
    folder.mkdir()
    for src in sorted((realdata / "dcm_qa_enh/In/Philips").iterdir()):
        ds = pydicom.dcmread(src)
        ds.ProcedureCodeSequence = PydicomSequence([])
        ds.save_as(folder / src.name)
    stack = scan([str(folder)]).series[0]
    rc, report = _export_bright_seg(folder, stack, tmp_path, capsys)
    assert rc == 0
    assert sorted(report["validated"]) == ["rtstruct.dcm", "seg.dcm", "sr.dcm"]
    assert report["dciodvfy_errors"] == 0, report["warnings"]
    # the source files are unchanged: the sequence is left out in memory only
    assert "ProcedureCodeSequence" in pydicom.dcmread(next(folder.iterdir()))


def _ge_run_without(realdata: Path, tmp_path: Path, drop) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the real GE fMRI run (10 volumes of 15 slices, volume after volume in
    instance-number order) without the files ``drop(instance_number)`` picks."""
    import shutil

    out = tmp_path / "run"
    out.mkdir()
    for f in sorted((realdata / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm")):
        number = int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber)
        if not drop(number):
            shutil.copy(f, out / f.name)
    return out


def test_4d_with_a_missing_slice_keeps_every_volume_and_says_so(
    realdata: Path, tmp_path: Path
) -> None:
    import nibabel as nib

    from medview.io.loader import load_series
    from medview.io.scan import scan

    run = _ge_run_without(realdata, tmp_path, lambda n: n == 38)  # a slice of volume 3
    ref = nib.load(realdata / "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii")
    stacks = scan([str(run)]).series
    assert len(stacks) == 10
    assert [len(s.slices) for s in stacks] == [15, 15, 14, *[15] * 7]
    assert any("14 of the series' 15 slice positions" in w for w in stacks[2].warnings)
    assert any("skip 1 value(s)" in w for w in stacks[0].warnings)
    for t, stack in enumerate(stacks):
        assert not any("duplicate" in w for w in stack.warnings)
        if t != 2:  # never mis-stacked: every full volume is dcm2niix's
            assert _same(load_series(stack), ref.slicer[..., t], tmp_path), t


def test_4d_with_a_missing_volume_says_so(realdata: Path, tmp_path: Path) -> None:
    import nibabel as nib

    from medview.io.loader import load_series
    from medview.io.scan import scan

    run = _ge_run_without(realdata, tmp_path, lambda n: 61 <= n <= 75)  # volume 5
    ref = nib.load(realdata / "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii")
    stacks = scan([str(run)]).series
    assert len(stacks) == 9
    assert all(any("skip 15 value(s)" in w for w in s.warnings) for s in stacks)
    for k, t in enumerate([0, 1, 2, 3, 5, 6, 7, 8, 9]):
        assert _same(load_series(stacks[k]), ref.slicer[..., t], tmp_path), t


def test_seg_of_volume_k_references_that_volumes_images(
    realdata: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """A segmentation made on volume 3 of a real 4-D run exports as a SEG whose source
    images are volume 3's instances, none of another volume's."""

    from medview.io.scan import scan

    run = realdata / "dcm_qa_nih/In/20180918GE/mr_0004"
    stacks = scan([str(run)]).series
    third = stacks[2]
    assert third.volume_label.startswith("volume 3 of 10")
    rc, _ = _export_bright_seg(run, third, tmp_path, capsys)
    assert rc == 0
    seg = pydicom.dcmread(next((tmp_path / "out").rglob("seg.dcm")))
    referenced = {
        item.ReferencedSOPInstanceUID
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == {r.sop_instance_uid for r in third.instances}
    per_frame = {
        src.ReferencedSOPInstanceUID
        for fg in seg.PerFrameFunctionalGroupsSequence
        for d in fg.DerivationImageSequence
        for src in d.SourceImageSequence
    }
    assert per_frame <= referenced and per_frame


def _export_bright_seg(source: Path, stack, tmp_path: Path, capsys) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    """Export a segmentation of the brightest 15 % of ``stack`` (found under ``source``) with
    `medview export --json`; returns the exit code and the JSON report."""
    import json

    from medview.cli import main
    from medview.core.volume import Volume
    from medview.export.nifti import write_nifti
    from medview.io.loader import load_series

    volume = load_series(stack)
    mask = (volume.array > np.percentile(volume.array, 85)).astype(np.uint8)
    write_nifti(Volume(mask, volume.geometry), tmp_path / "labels.nii.gz")
    capsys.readouterr()
    rc = main(
        [
            "export", str(source), "--series", stack.key, "--seg", str(tmp_path / "labels.nii.gz"),
            "--out", str(tmp_path / "out"), "--json",
        ]
    )  # fmt: skip
    return rc, json.loads(capsys.readouterr().out)


def test_model_runs_on_the_chosen_volume_of_a_4d_series(realdata: Path, tmp_path: Path) -> None:
    """`medview run-model --series KEY` on volume 3 of a real 4-D run: the model sees that
    volume (its grid) and the summary names it."""
    import json

    import nibabel as nib

    from medview.cli import main
    from medview.io.loader import load_series
    from medview.io.scan import scan

    run = realdata / "dcm_qa_nih/In/20180918GE/mr_0004"
    third = scan([str(run)]).series[2]
    out = tmp_path / "out"
    assert main(["run-model", "brain-extraction-mr", str(run), "--series", third.key,
                 "--run-anyway", "--device", "cpu", "--out", str(out)]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["series_key"] == third.key
    assert summary["volume"].startswith("volume 3 of 10")
    volume = load_series(third)
    labels = nib.load(out / "labels.nii.gz")
    assert labels.shape == volume.shape[::-1]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.geometry.affine
    assert np.allclose(labels.affine, ras, atol=1e-4)
