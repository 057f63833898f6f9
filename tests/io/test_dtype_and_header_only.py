"""Header indexing reads no pixel data; loading picks the smallest exact dtype."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.io.header import parse_header
from medview.io.loader import load_series
from medview.io.scan import scan
from tests.conftest import edit, write_ct


def test_indexing_does_not_read_pixel_data(tmp_path: Path) -> None:
    """A header declaring 2 GiB of (sparse, never written) pixel data indexes in milliseconds."""
    f = write_ct(tmp_path / "s", n=1, rows=8, cols=8)[0]
    ds = pydicom.dcmread(f)
    ds.Rows = ds.Columns = 32768
    ds.PixelData = b""
    ds.save_as(tmp_path / "big.dcm")
    data = bytearray((tmp_path / "big.dcm").read_bytes())
    i = data.rfind(b"\xe0\x7f\x10\x00OW")
    length = 32768 * 32768 * 2
    data[i + 8 : i + 12] = length.to_bytes(4, "little")
    with open(tmp_path / "big.dcm", "wb") as out:
        out.write(data)
        out.truncate(len(data) + length)  # sparse: no bytes on disk, no bytes read
    t0 = time.perf_counter()
    rec = parse_header(tmp_path / "big.dcm")
    assert time.perf_counter() - t0 < 0.5
    assert rec.pixel_length == length and rec.rows == 32768


@pytest.mark.parametrize(
    ("slope", "intercept", "dtype"),
    [(1, -1024, np.int16), (1, 0, np.uint16), (1, 40000, np.int32), (0.5, -1024, np.float32)],
)
def test_rescale_dtype(tmp_path: Path, slope: float, intercept: float, dtype: type) -> None:
    files = write_ct(tmp_path / "s", n=3, rows=8, cols=8)
    stored = []
    for f in files:
        edit(f, RescaleSlope=str(slope), RescaleIntercept=str(intercept))
        stored.append(pydicom.dcmread(f).pixel_array)
    vol = load_series(scan([tmp_path / "s"]).series[0])
    assert vol.array.dtype == dtype
    expected = np.stack(stored).astype(np.float64) * slope + intercept
    assert np.array_equal(vol.array.astype(np.float64), expected)


def test_per_slice_rescale_differs(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=3, rows=8, cols=8)
    edit(files[1], RescaleSlope="2")
    vol = load_series(scan([tmp_path / "s"]).series[0])
    raw = [pydicom.dcmread(f).pixel_array.astype(np.float64) for f in files]
    assert vol.array.dtype == np.float32
    assert np.array_equal(vol.array[1], raw[1] * 2 - 1024)
    assert np.array_equal(vol.array[0], raw[0] - 1024)
