"""The command line: `medview info` and `medview load` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medview.io.loader import load_series
from medview.io.scan import scan
from tests.conftest import DEMO, DEMO_CT, DEMO_MR, write_ct


def medview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medview.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_info_demo_tree_json() -> None:
    r = medview("info", "--json", str(DEMO))
    assert r.returncode == 0, r.stderr
    tree = json.loads(r.stdout)
    assert tree["series_count"] == 2 and tree["skipped"] == []
    by_id = {p["patient_id"]: p for p in tree["patients"]}
    ct = by_id["DEMO-LUNG2"]["studies"][0]["series"][0]
    assert ct["modality"] == "CT" and ct["instances"] == 61 and ct["shape"] == [61, 512, 512]
    assert ct["spacing"] == pytest.approx([0.626953, 0.626953, 5.0], abs=1e-5)
    assert ct["description"] == "Axial 5 mm" and ct["warnings"] == []
    mr = by_id["DEMO-COLIN27"]["studies"][0]["series"][0]
    assert mr["shape"] == [181, 217, 181]


def test_info_text_reports_skipped_files_and_warnings(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "s", n=6)
    files[2].unlink()
    (tmp_path / "s" / "notes.txt").write_text("hello")
    r = medview("info", str(tmp_path / "s"))
    assert r.returncode == 0
    assert "warning: missing slices" in r.stdout
    assert "skipped" in r.stdout and "notes.txt" in r.stdout and "not a DICOM file" in r.stdout


def test_info_decode_reports_per_series(tmp_path: Path) -> None:
    write_ct(tmp_path / "good", n=3, seed="good", transfer_syntax="jpeg-ls")
    bad = write_ct(tmp_path / "bad", n=3, seed="bad", patient_id="BAD", transfer_syntax="jpeg-ls")
    data = bytearray(bad[1].read_bytes())
    soi = data.find(b"\xff\xd8\xff")  # start of the JPEG-LS codestream in the first fragment
    data[soi : soi + 4] = b"\x00\x00\x00\x00"
    bad[1].write_bytes(bytes(data))
    r = medview("info", "--json", "--decode", str(tmp_path))
    assert r.returncode == 0, r.stderr
    tree = json.loads(r.stdout)
    decode = {p["patient_id"]: p["studies"][0]["series"][0]["decode"] for p in tree["patients"]}
    assert decode["TEST01"] == "ok"
    assert decode["BAD"] != "ok" and bad[1].name in decode["BAD"]


def test_info_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing here")
    assert medview("info", str(tmp_path)).returncode == 1
    assert medview("info").returncode == 2
    assert medview("info", "--bogus", str(tmp_path)).returncode == 2
    assert medview("--bogus").returncode == 2


@pytest.mark.parametrize("folder", [DEMO_CT, DEMO_MR], ids=["ct", "mr"])
def test_load_writes_nifti_with_correct_affine(folder: Path, tmp_path: Path) -> None:
    import nibabel as nib
    import SimpleITK as sitk

    out = tmp_path / "vol.nii.gz"
    r = medview("load", str(folder), "--out", str(out))
    assert r.returncode == 0, r.stderr
    vol = load_series(scan([folder]).series[0])
    img = sitk.ReadImage(str(out))
    assert np.allclose(img.GetOrigin(), vol.geometry.origin, atol=1e-4)
    assert np.allclose(img.GetSpacing(), vol.geometry.spacing, atol=1e-4)
    assert np.allclose(img.GetDirection(), vol.geometry.direction.ravel(), atol=1e-4)
    assert np.array_equal(sitk.GetArrayFromImage(img), vol.array)
    # nibabel: RAS affine = diag(-1, -1, 1) @ LPS affine; data indexed (x, y, z)
    nii = nib.load(str(out))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ vol.geometry.affine
    assert np.allclose(nii.affine, ras, atol=1e-4)
    assert np.array_equal(np.asarray(nii.dataobj).transpose(2, 1, 0), vol.array)
    # a voxel's world position agrees between the two readers
    ijk = np.array([10, 20, 5, 1])
    lps = vol.geometry.affine @ ijk
    assert np.allclose(nii.affine @ ijk, [-lps[0], -lps[1], lps[2], 1], atol=1e-4)


def test_load_needs_series_choice(tmp_path: Path) -> None:
    r = medview("load", str(DEMO), "--out", str(tmp_path / "x.nii.gz"))
    assert r.returncode == 2 and "--series" in r.stderr
    uid = scan([DEMO_MR]).series[0].series_uid
    r = medview("load", str(DEMO), "--series", uid, "--out", str(tmp_path / "x.nii.gz"))
    assert r.returncode == 0 and (tmp_path / "x.nii.gz").exists()
    r = medview("load", str(DEMO), "--out", str(tmp_path / "x.txt"))
    assert r.returncode == 2
