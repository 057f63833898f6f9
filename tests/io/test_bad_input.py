"""Untrusted files: every one loads or is reported with a typed error naming file and reason."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medview.core.errors import (
    DecodeError,
    DicomReadError,
    MedviewError,
    NotDicomError,
    ResourceLimitError,
)
from medview.io.header import parse_header
from medview.io.isolation import IsolatedDecoder
from medview.io.loader import load_series
from medview.io.scan import scan
from tests.conftest import DEMO_CT, PYDICOM_FILES, pydicom_data_dir, write_ct
from tests.io.crash_decoder import abort_on_crash_files


def corpus() -> list[Path]:
    files = [p for p in PYDICOM_FILES.rglob("*") if p.is_file()]
    files += [p for p in pydicom_data_dir().glob("*") if p.is_file()]
    return sorted(files)


def test_corpus_is_present() -> None:
    assert len(corpus()) > 140


@pytest.mark.timeout(300)
def test_every_corpus_file_loads_or_reports_a_typed_error() -> None:
    """pydicom's test files and pydicom-data, header and pixels: no uncaught exception."""
    result = scan([str(p) for p in corpus()])
    skipped = {s.path: s for s in result.skipped}
    for s in result.skipped:
        assert s.reason and s.error.endswith("Error"), s
    loaded, failed = 0, []
    for series in result.series:
        try:
            vol = load_series(series)
            assert vol.array.shape[:3] == series.shape
            loaded += 1
        except MedviewError as e:  # typed, names the file
            assert e.path and os.path.exists(e.path.split("!")[0])
            failed.append(str(e))
    # a handful of corpus files are deliberately undecodable (lossy JPEG with bad markers ...)
    assert len(result.series) > 70
    assert loaded >= len(result.series) - 3, failed
    # known-bad files are reported, not loaded
    for name in ("MR_truncated.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"):
        assert any(p.endswith(name) for p in skipped) or any(name in f for f in failed)
    # truncated data is reported as truncation
    trunc = [s for p, s in skipped.items() if p.endswith("MR_truncated.dcm")]
    assert trunc and "truncated" in trunc[0].reason


def test_empty_and_text_files_named_dcm(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "notes.dcm").write_text("Patient notes\nnot an image\n" * 20)
    for name in ("empty.dcm", "notes.dcm"):
        with pytest.raises(NotDicomError) as e:
            parse_header(tmp_path / name)
        assert e.value.path and name in e.value.path


def test_truncated_at_many_offsets(ct_series: list[Path], tmp_path: Path) -> None:
    data = ct_series[0].read_bytes()
    offsets = sorted({1, 50, 128, 131, 132, 140, 200, 400, 700, len(data) // 2, len(data) - 1})
    for cut in offsets:
        f = tmp_path / f"cut{cut}.dcm"
        f.write_bytes(data[:cut])
        with pytest.raises(MedviewError) as e:
            rec = parse_header(f)
            # a header that parses must still not give a volume from missing bytes
            raise AssertionError(f"truncated at {cut} accepted: {rec.pixel_length}")
        assert isinstance(e.value, (NotDicomError, DicomReadError)), (cut, e.value)


def _base_ds(rows: int = 4, cols: int = 4, frames: int | None = None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if frames:
        ds.NumberOfFrames = frames
    ds.PixelData = np.zeros((4, 4), np.uint16).tobytes()  # the declared size is the point
    return ds


def test_huge_declared_image_refused_before_allocation(tmp_path: Path) -> None:
    ds = _base_ds(rows=65535, cols=65535, frames=20000)  # ~160 TiB declared
    ds.save_as(tmp_path / "huge.dcm", enforce_file_format=True)
    with pytest.raises(ResourceLimitError):
        parse_header(tmp_path / "huge.dcm")


def test_huge_declared_element_length(tmp_path: Path) -> None:
    ds = _base_ds()
    ds.save_as(tmp_path / "ok.dcm", enforce_file_format=True)
    data = bytearray((tmp_path / "ok.dcm").read_bytes())
    # Pixel Data (7FE0,0010) OW: set its 4-byte length to 0xFFFFFFF0
    i = data.rfind(b"\xe0\x7f\x10\x00OW")
    struct.pack_into("<I", data, i + 8, 0xFFFFFFF0)
    (tmp_path / "len.dcm").write_bytes(bytes(data))
    with pytest.raises(DicomReadError) as e:
        parse_header(tmp_path / "len.dcm")
    assert "truncated" in e.value.message


@pytest.mark.parametrize("depth", [50, 5000])
def test_deeply_nested_sequences(tmp_path: Path, depth: int) -> None:
    """Undefined-length sequences nested ``depth`` deep, written byte by byte."""
    ds = _base_ds()
    ds.save_as(tmp_path / "base.dcm", enforce_file_format=True)
    data = (tmp_path / "base.dcm").read_bytes()
    i = data.rfind(b"\xe0\x7f\x10\x00OW")
    sq_open = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    item_open = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    sq_close = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nested = (sq_open + item_open) * depth + (item_close + sq_close) * depth
    (tmp_path / "deep.dcm").write_bytes(data[:i] + nested + data[i:])
    try:
        rec = parse_header(tmp_path / "deep.dcm")
        assert rec.rows == 4 and depth < 1000
    except MedviewError as e:
        assert e.path and depth >= 1000


@pytest.mark.parametrize("magic", [b"MZ\x90\x00", b"\x7fELF"])
def test_executable_preamble_is_flagged(
    ct_series: list[Path], tmp_path: Path, magic: bytes
) -> None:
    data = bytearray(ct_series[0].read_bytes())
    data[: len(magic)] = magic
    f = tmp_path / "poly.dcm"
    f.write_bytes(bytes(data))
    rec = parse_header(f)
    assert any("executable" in flag for flag in rec.flags)
    series = scan([f]).series
    assert any("executable" in w for w in series[0].warnings)


def test_deflate_bomb_refused(tmp_path: Path) -> None:
    import zlib

    src = PYDICOM_FILES / "image_dfl.dcm"
    meta = pydicom.filereader.read_file_meta_info(src)
    head = src.read_bytes()[: 132 + 12 + int(meta.FileMetaInformationGroupLength)]
    bomb = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    payload = bomb.compress(b"\x00" * (1100 * 1024**2)) + bomb.flush()
    (tmp_path / "bomb.dcm").write_bytes(head + payload)
    with pytest.raises(ResourceLimitError):
        parse_header(tmp_path / "bomb.dcm")


def test_decoder_crash_is_contained(tmp_path: Path) -> None:
    """A decoder that aborts its process costs one file; the import reports it and goes on."""
    good = tmp_path / "study"
    shutil.copytree(DEMO_CT, good)
    os.rename(good / "IM00030.dcm", good / "IM00030-crash.dcm")
    other = tmp_path / "other"
    write_ct(other, n=4, transfer_syntax="rle", seed="other")
    result = scan([good, other])
    assert len(result.series) == 2
    decoder = IsolatedDecoder(decode_fn=abort_on_crash_files, workers=2)
    try:
        outcomes = {}
        for series in result.series:
            try:
                outcomes[series.first.patient_id] = load_series(series, decoder=decoder)
            except DecodeError as e:
                outcomes[series.first.patient_id] = e
        crashed = outcomes["DEMO-LUNG2"]
        assert isinstance(crashed, DecodeError)
        assert crashed.path and crashed.path.endswith("IM00030-crash.dcm")
        assert "crashed" in crashed.message
        assert outcomes["TEST01"].shape == (4, 32, 32)  # the rest still decodes
        # the same pool keeps working after the crash
        decoded = dict(decoder.decode([str(p) for p in sorted(good.glob("IM0000*.dcm"))]))
        assert len(decoded) == 9 and all(isinstance(a, np.ndarray) for a in decoded.values())
    finally:
        decoder.shutdown()
