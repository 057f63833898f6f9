"""A loaded `Volume` equals SimpleITK's reading of the same series: origin, spacing, direction
within 1e-4 mm and identical voxels; on the demo series and on transcoded copies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from medview.core.volume import Volume
from medview.io.loader import load_series
from medview.io.scan import scan
from tests.conftest import DEMO_CT, DEMO_MR, require_tool, write_ct


def sitk_read(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(names)
    return reader.Execute()


def load_one(folder: Path) -> Volume:
    result = scan([folder])
    assert not result.skipped, result.skipped
    series = result.series
    assert len(series) == 1
    return load_series(series[0])


def assert_same_as_sitk(vol: Volume, folder: Path) -> None:
    import SimpleITK as sitk

    img = sitk_read(folder)
    g = vol.geometry
    assert np.allclose(g.origin, img.GetOrigin(), atol=1e-4)
    assert np.allclose(g.spacing, img.GetSpacing(), atol=1e-4)
    assert np.allclose(g.direction.ravel(), img.GetDirection(), atol=1e-4)
    ref = sitk.GetArrayFromImage(img)
    assert vol.array.shape == ref.shape
    assert np.array_equal(vol.array.astype(np.float64), ref.astype(np.float64))


@pytest.mark.parametrize("folder", [DEMO_CT, DEMO_MR], ids=["lung2-ct", "colin27-mr"])
def test_demo_series_match_simpleitk(folder: Path) -> None:
    vol = load_one(folder)
    assert_same_as_sitk(vol, folder)


def test_demo_ct_is_int16_hu() -> None:
    vol = load_one(DEMO_CT)
    assert vol.array.dtype == np.int16  # memory-aware: HU fit in int16
    assert vol.units == "HU"
    assert vol.shape == (61, 512, 512)
    assert vol.array.min() == -1024  # air, after the -1024 rescale intercept
    assert not vol.array.flags.writeable


def _transcode(src: Path, dst: Path, cmd: list[str]) -> None:
    dst.mkdir()
    for f in sorted(src.glob("*.dcm")):
        subprocess.run([*cmd, str(f), str(dst / f.name)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def ct_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo CT decompressed by an independent tool (GDCM), explicit VR little endian."""
    gdcmconv = require_tool("gdcmconv")
    out = tmp_path_factory.mktemp("raw") / "raw"
    _transcode(DEMO_CT, out, [gdcmconv, "-w"])
    return out


TRANSCODES = {
    "jpeg2000": ["gdcmconv", "-K"],
    "jpeg-ls": ["gdcmconv", "-L"],
    "rle": ["gdcmconv", "-R"],
    "jpeg-lossless": ["gdcmconv", "-J"],
    "implicit": ["gdcmconv", "-w", "-M"],
    "big-endian": ["dcmconv", "+tb"],
    "explicit": ["dcmconv", "+te"],
}


@pytest.mark.parametrize("name", list(TRANSCODES))
def test_transcoded_copies_load_identically(name: str, ct_raw: Path, tmp_path: Path) -> None:
    tool, *flags = TRANSCODES[name]
    exe = require_tool(tool)
    out = tmp_path / name
    _transcode(ct_raw, out, [exe, *flags])
    vol = load_one(out)
    assert_same_as_sitk(vol, out)
    reference = load_one(DEMO_CT)
    assert np.array_equal(vol.array, reference.array)
    assert vol.geometry.almost_equal(reference.geometry)


def test_oblique_series_matches_simpleitk(tmp_path: Path) -> None:
    theta = np.radians(20)
    d = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]])
    write_ct(tmp_path / "obl", n=6, direction=d, spacing=(0.8, 0.9, 3.0))
    vol = load_one(tmp_path / "obl")
    assert_same_as_sitk(vol, tmp_path / "obl")
