"""Series assembly: splitting, sorting, warnings; multi-frame, 2-D, colour and MONOCHROME1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid

from medview.io.loader import load_series
from medview.io.scan import scan
from tests.conftest import DEMO_CT, edit, pydicom_data_dir, write_ct


def test_shuffled_files_sort_along_normal(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=6)
    # file names in reverse order of position, instance numbers scrambled
    for i, f in enumerate(files):
        edit(f, InstanceNumber=(i * 7) % 6 + 1)
        f.rename(f.with_name(f"X{5 - i}.dcm"))
    series = scan([tmp_path / "s"]).series
    assert len(series) == 1 and not series[0].warnings
    z = [s.position[2] for s in series[0].slices]
    assert z == sorted(z)


def test_mixed_orientation_size_and_localizer_are_split(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=8)
    edit(
        files[0],
        ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
        ImageOrientationPatient=[1, 0, 0, 0, 0, -1],
    )
    edit(files[1], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    ds = pydicom.dcmread(files[2])
    ds.Rows = ds.Columns = 16
    ds.PixelData = np.zeros((16, 16), np.uint16).tobytes()
    ds.save_as(files[2])
    series = scan([tmp_path / "s"]).series
    assert len(series) == 4
    main = series[0] if series[0].key == series[0].series_uid else None
    assert main is not None and len(main.slices) == 5
    keys = sorted(s.key for s in series)
    assert keys[0] == main.series_uid and all("#" in k for k in keys[1:])
    reasons = " ".join(w for s in series[1:] for w in s.warnings)
    assert "localizer" in reasons and "orientation" in reasons and "16x16" in reasons
    for s in series:
        vol = load_series(s)
        assert vol.shape == s.shape


def test_uneven_spacing_warns(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=6, spacing=(0.7, 0.7, 2.0))
    ds = pydicom.dcmread(files[3])
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.6
    ds.save_as(files[3])
    s = scan([tmp_path / "s"]).series[0]
    assert any("uneven slice spacing" in w for w in s.warnings)
    assert load_series(s).warnings == s.warnings


def test_missing_slice_warns(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=8)
    files[4].unlink()
    s = scan([tmp_path / "s"]).series[0]
    assert any("missing slices" in w and "about 1" in w for w in s.warnings)


def test_duplicate_positions_warn_or_split(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "a", n=5, seed="x")
    dup = pydicom.dcmread(files[2])
    dup.SOPInstanceUID = generate_uid()
    dup.save_as(tmp_path / "a" / "dup.dcm")
    s = scan([tmp_path / "a"]).series
    assert len(s) == 1 and len(s[0].slices) == 5
    assert any("duplicate slice positions" in w for w in s[0].warnings)
    # two acquisitions at the same positions: split into two stacks
    write_ct(tmp_path / "b", n=4, seed="y")
    for f in sorted((tmp_path / "b").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SOPInstanceUID = generate_uid()
        ds.AcquisitionNumber = 2
        ds.save_as(f.with_name("acq2-" + f.name))
    stacks = scan([tmp_path / "b"]).series
    assert len(stacks) == 2 and all(len(x.slices) == 4 for x in stacks)
    assert all(any("acquisition" in w for w in x.warnings) for x in stacks)


def test_gantry_tilt_warns(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=6, spacing=(0.7, 0.7, 2.5))
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient[1] = float(ds.ImagePositionPatient[1]) + i * 2.5 * np.tan(
            np.radians(15)
        )
        ds.GantryDetectorTilt = 15
        ds.save_as(f)
    s = scan([tmp_path / "s"]).series[0]
    assert any("gantry tilt" in w and "15.0" in w for w in s.warnings)


def _enhanced_from_singles(files: list[Path], out: Path) -> None:
    """An enhanced CT multi-frame built from single-frame slices (frames in reverse order)."""
    slices = [pydicom.dcmread(f) for f in reversed(files)]
    first = slices[0]
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for kw in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "PatientID",
        "PatientName",
        "Modality",
        "FrameOfReferenceUID",
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "SeriesNumber",
    ):
        setattr(ds, kw, getattr(first, kw))
    ds.NumberOfFrames = len(slices)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = first.PixelSpacing
    pm.SliceThickness = first.SliceThickness
    po = Dataset()
    po.ImageOrientationPatient = first.ImageOrientationPatient
    pvt = Dataset()
    pvt.RescaleIntercept = first.RescaleIntercept
    pvt.RescaleSlope = first.RescaleSlope
    pvt.RescaleType = "HU"
    shared.PixelMeasuresSequence = Sequence([pm])
    shared.PlaneOrientationSequence = Sequence([po])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    for s in slices:
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = s.ImagePositionPatient
        fg.PlanePositionSequence = Sequence([pp])
        per.append(fg)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = b"".join(s.PixelData for s in slices)
    ds.save_as(out, enforce_file_format=True)


def test_enhanced_multiframe_equals_single_frames(tmp_path: Path) -> None:
    files = sorted(DEMO_CT.glob("*.dcm"))[20:30]
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in files:  # decompress (the multi-frame is written natively)
        ds = pydicom.dcmread(f)
        ds.decompress()
        ds.save_as(raw / f.name)
    singles = sorted(raw.glob("*.dcm"))
    _enhanced_from_singles(singles, tmp_path / "enhanced.dcm")
    mf = scan([tmp_path / "enhanced.dcm"]).series
    sf = scan([raw]).series
    assert len(mf) == 1 and mf[0].kind == "volume"
    a, b = load_series(mf[0]), load_series(sf[0])
    assert a.geometry.almost_equal(b.geometry)
    assert np.array_equal(a.array, b.array)


def test_enhanced_ct_from_corpus_loads() -> None:
    s = scan([pydicom_data_dir() / "eCT_Supplemental.dcm"]).series
    assert s[0].kind == "volume" and s[0].shape == (2, 512, 512)
    vol = load_series(s[0])
    assert vol.array.shape == (2, 512, 512) and vol.units == "HU"


def test_cr_monochrome1_single_image() -> None:
    s = scan([pydicom_data_dir() / "RG1_UNCR.dcm"]).series[0]
    vol = load_series(s)
    assert s.kind == "image" and vol.shape == (1, 1955, 1841)
    assert vol.invert_display and vol.photometric == "MONOCHROME1"
    assert vol.geometry.spacing[0] > 0


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb.dcm",
        "SC_ybr_full_uncompressed.dcm",
        "OT-PAL-8-face.dcm",
        "color-pl.dcm",
        "US1_J2KR.dcm",
    ],
)
def test_colour_images_become_rgb(name: str) -> None:
    path = pydicom_data_dir() / name
    s = scan([path]).series[0]
    vol = load_series(s)
    assert vol.is_color and vol.array.shape[-1] == 3 and vol.array.dtype == np.uint8
    assert vol.photometric == "RGB"
    ref = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ref.file_meta:
        ref.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    expected = ref.pixel_array
    if ref.PhotometricInterpretation == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        expected = apply_color_lut(expected, ref)
        expected = (expected >> 8).astype(np.uint8)  # this file has 16-bit LUT entries
    first = expected if expected.ndim == 3 else expected[0]
    assert np.array_equal(vol.array[0], first)


def test_ybr_is_converted_like_rgb() -> None:
    """The same uncompressed picture stored as RGB and as YBR_FULL loads alike."""
    rgb = load_series(scan([pydicom_data_dir() / "SC_rgb.dcm"]).series[0]).array
    ybr_file = pydicom_data_dir() / "SC_ybr_full_uncompressed.dcm"
    ybr = load_series(scan([ybr_file]).series[0]).array
    assert rgb.shape == ybr.shape
    # 8-bit YBR round trip rounds a little; unconverted YBR would differ by more than 100
    assert np.abs(rgb.astype(int) - ybr.astype(int)).max() <= 8


def test_oblique_rounding_is_not_a_tilt_but_a_real_tilt_is() -> None:
    """Siemens XA30 oblique MR: slice positions deviate from the normal by 0.013-0.016 degrees
    through rounding (0.04 mm over 144 mm); that is no tilt. 2 degrees is."""
    from medview.io.assemble import spacing_warnings

    a = np.radians(17.0)
    normal = np.array([0.0, np.sin(a), np.cos(a)])
    side = np.array([0.0, np.cos(a), -np.sin(a)])
    k = np.arange(60)[:, None]
    for degrees, tilted in ((0.015, False), (2.0, True)):
        pos = k * 2.4 * normal + k * 2.4 * np.tan(np.radians(degrees)) * side
        notes = [w for w in spacing_warnings(list(pos), normal) if "gantry tilt" in w]
        assert bool(notes) is tilted, (degrees, notes)
        if tilted:
            assert "2°" in notes[0] and "4.9 mm over the stack" in notes[0]


def test_lone_2d_slice_keeps_its_position() -> None:
    """A single real CT slice (pydicom's CT_small.dcm) is placed where its header says."""
    from medview.io.assemble import series_geometry
    from medview.io.loader import load_series
    from tests.conftest import PYDICOM_FILES

    path = PYDICOM_FILES / "CT_small.dcm"
    ipp = [float(v) for v in pydicom.dcmread(path).ImagePositionPatient]
    s = scan([path]).series[0]
    assert np.allclose(series_geometry(s).origin, ipp)
    volume = load_series(s)
    assert np.allclose(volume.geometry.affine[:3, 3], ipp)


def test_stacks_are_listed_in_natural_order(tmp_path: Path) -> None:
    """Twelve projection images of one series: UID, UID#2 ... UID#12, with #2 before #10."""
    files = write_ct(tmp_path / "s", n=12)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.ImagePositionPatient, ds.ImageOrientationPatient
        ds.save_as(f)
    keys = [s.key for s in scan([tmp_path / "s"]).series]
    uid = keys[0]
    assert keys == [uid] + [f"{uid}#{i}" for i in range(2, 13)]


def test_copies_count_once_and_say_so(tmp_path: Path) -> None:
    import shutil

    files = write_ct(tmp_path / "a", n=5)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    stacks = scan([tmp_path / "a", tmp_path / "b"]).series
    assert len(stacks) == 1 and len(stacks[0].slices) == len(files)
    assert any("5 file(s) repeating SOP Instance UIDs" in w for w in stacks[0].warnings)
