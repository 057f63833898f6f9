"""Diffusion series: b-values and gradient directions from the standard attributes and from
the Siemens, GE and Philips private ones, volume labels "b=1000, dir 7/30", and ``.bval`` /
``.bvec`` beside the 4-D NIfTI, compared with dcm2niix on the same files.

The shared real data holds no diffusion series (the Canon DTI of ``dcm_qa_enh`` is too large
for the shared copy), so the test gives a real GE 4-D EPI run (150 images, 10 volumes) an
oblique orientation and a diffusion encoding per volume in each vendor's way, and lets dcm2niix
read the same files: the volumes, b-values and directions (turned back into patient
coordinates through each file's own affine) must agree.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import extract_realdata, require_tool

STYLES = {
    "standard": "TOSHIBA_MEC",
    "siemens": "SIEMENS",
    "ge": "GE MEDICAL SYSTEMS",
    "philips": "Philips Medical Systems",
}


def _rotation(a_deg: float, b_deg: float) -> np.ndarray:
    a, b = np.radians(a_deg), np.radians(b_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def make_dwi(source: Path, out: Path, style: str, rotation: np.ndarray) -> np.ndarray:
    """Copies of a real 4-D EPI run as a diffusion series (volume 1 b=0, the others b=1000
    along random directions), rotated; returns the directions (LPS) per volume."""
    out.mkdir(parents=True)
    files = sorted(source.glob("*.dcm"))
    dss = [pydicom.dcmread(f) for f in files]
    by_position: dict[float, list[int]] = defaultdict(list)
    for i, d in enumerate(dss):
        by_position[round(float(d.SliceLocation), 2)].append(i)
    volume = {}
    for idx in by_position.values():
        for k, i in enumerate(sorted(idx, key=lambda i: int(dss[i].InstanceNumber))):
            volume[i] = k
    n = max(volume.values()) + 1
    directions = np.random.default_rng(7).normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    for i, (d, f) in enumerate(zip(dss, files, strict=True)):
        t = volume[i]
        ori = np.asarray(d.ImageOrientationPatient, float)
        d.ImageOrientationPatient = [
            f"{v:.6f}" for v in np.r_[rotation @ ori[:3], rotation @ ori[3:]]
        ]
        d.ImagePositionPatient = [
            f"{v:.4f}" for v in rotation @ np.asarray(d.ImagePositionPatient, float)
        ]
        d.Manufacturer = STYLES[style]
        b = 0.0 if t == 0 else 1000.0
        g = np.zeros(3) if t == 0 else directions[t]
        if style == "ge":
            # GE: image-frame direction with the first two axes reversed
            row, col = (
                np.asarray(d.ImageOrientationPatient[:3], float),
                np.asarray(d.ImageOrientationPatient[3:], float),
            )
            frame = np.column_stack([row, col, np.cross(row, col)])
            ge = np.array([-1.0, -1.0, 1.0]) * (frame.T @ g)
            d[0x0043, 0x1039].value = [str(int(b) + 1_000_000_000), "8", "0", "0"]
            d[0x0019, 0x10BB].value = f"{ge[0]:.6f}"
            d.add_new((0x0019, 0x10BC), "DS", f"{ge[1]:.6f}")
            d.add_new((0x0019, 0x10BD), "DS", f"{ge[2]:.6f}")
            d[0x0019, 0x109C].value = "epi2"
        else:
            for tag in list(d.keys()):
                if tag.is_private:
                    del d[tag]
        if style == "standard":
            d.add_new((0x0018, 0x9087), "FD", b)
            if t:
                d.add_new((0x0018, 0x9089), "FD", [float(x) for x in g])
        elif style == "siemens":
            block = d.private_block(0x0019, "SIEMENS MR HEADER", create=True)
            block.add_new(0x0C, "IS", str(int(b)))
            if t:
                block.add_new(0x0E, "FD", [float(x) for x in g])
        elif style == "philips":
            block = d.private_block(0x2001, "Philips Imaging DD 001", create=True)
            block.add_new(0x03, "FL", b)
            vectors = d.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
            for k, v in zip((0xB0, 0xB1, 0xB2), g, strict=True):
                vectors.add_new(k, "FL", float(v))
        d.save_as(out / f.name)
    return directions


def _world(nifti: Path, bvec: Path) -> np.ndarray:
    """FSL directions back in RAS world coordinates through the file's own affine."""
    import nibabel as nib

    affine = nib.load(nifti).affine
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    vectors = np.loadtxt(bvec).T.copy()
    if np.linalg.det(affine) > 0:
        vectors[:, 0] *= -1
    return (axes @ vectors.T).T


@pytest.fixture(scope="module")
def ge_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = extract_realdata(("dcm_qa_nih",), tmp_path_factory.mktemp("realdata"))
    return data / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004"


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("angles", [(20.0, -15.0), (75.0, 60.0)], ids=["oblique", "steep"])
def test_bval_bvec_match_dcm2niix(
    ge_run: Path, tmp_path: Path, style: str, angles: tuple[float, float]
) -> None:
    import nibabel as nib

    from medview.cli import main

    dcm2niix = require_tool("dcm2niix")
    directions = make_dwi(ge_run, tmp_path / "in", style, _rotation(*angles))
    ref = tmp_path / "ref"
    ref.mkdir()
    subprocess.run([dcm2niix, "-f", "ref", "-o", str(ref), str(tmp_path / "in")],
                   check=True, capture_output=True)  # fmt: skip
    out = tmp_path / "dwi.nii.gz"
    assert main(["load", str(tmp_path / "in"), "--out", str(out)]) == 0
    ours = nib.as_closest_canonical(nib.load(out))
    theirs = nib.as_closest_canonical(nib.load(ref / "ref.nii"))
    assert ours.shape == theirs.shape and sorted(ours.shape) == [10, 15, 64, 64]
    assert float(np.abs(ours.affine - theirs.affine).max()) <= 0.05
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    bval = (tmp_path / "dwi.bval").read_text().split()
    assert bval == (ref / "ref.bval").read_text().split() == ["0"] + ["1000"] * 9
    world = _world(out, tmp_path / "dwi.bvec")
    # the same axes (a direction and its opposite encode the same diffusion: dcm2niix turns
    # some GE directions round, depending on the slice orientation) ...
    theirs_world = _world(ref / "ref.nii", ref / "ref.bvec")
    assert np.abs(np.abs(np.sum(world * theirs_world, axis=1))[1:] - 1).max() < 1e-5
    # ... and ours are exactly the directions given (LPS -> RAS)
    assert np.abs(world[1:] - directions[1:] * [-1, -1, 1]).max() < 1e-4
    assert not np.any(world[0])


def test_volume_labels_and_info(ge_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from medview.cli import main
    from medview.io.scan import scan

    make_dwi(ge_run, tmp_path / "in", "standard", _rotation(20.0, -15.0))
    stacks = scan([str(tmp_path / "in")]).series
    assert [s.volume_label for s in stacks] == [
        "volume 1 of 10 (b=0)",
        *(f"volume {k + 2} of 10 (b=1000, dir {k + 1}/9)" for k in range(9)),
    ]
    assert not any(w for s in stacks for w in s.warnings if "diffusion" in w)
    from medview.io.loader import load_series

    assert load_series(stacks[4]).volume_label == "volume 5 of 10 (b=1000, dir 4/9)"
    capsys.readouterr()
    assert main(["info", str(tmp_path / "in")]) == 0
    text = capsys.readouterr().out
    assert "4-D: 10 volumes of 15x64x64" in text and "diffusion" in text


def test_a_volume_mixing_encodings_is_flagged(ge_run: Path, tmp_path: Path) -> None:
    """Images that repeat positions with nothing but instance numbers to order them, whose
    encodings then disagree within a volume: said, never silently mixed."""
    from medview.io.scan import scan

    make_dwi(ge_run, tmp_path / "in", "standard", np.eye(3))
    # swap the b-values of two images of different volumes at one position
    files = sorted((tmp_path / "in").glob("*.dcm"))
    a, b = pydicom.dcmread(files[0]), pydicom.dcmread(files[1])
    first = [f for f in files if pydicom.dcmread(f).SliceLocation == a.SliceLocation]
    x, y = pydicom.dcmread(first[0]), pydicom.dcmread(first[1])
    x[0x0018, 0x9087].value, y[0x0018, 0x9087].value = 1000.0, 0.0
    del b
    x.save_as(first[0])
    y.save_as(first[1])
    stacks = scan([str(tmp_path / "in")]).series
    assert len(stacks) == 10  # every volume still reachable
    assert any("different diffusion encodings" in w for s in stacks for w in s.warnings)


def test_enhanced_per_frame_diffusion(tmp_path: Path) -> None:
    """An enhanced MR file whose frames carry the MR Diffusion functional group (as Canon and
    Philips write DTI): each volume gets its frames' b-value and direction, and the .bvec
    gives that direction back in patient coordinates. (The real file is a Philips two-volume
    field map given a diffusion encoding; dcm2niix reads it as a field map, so it is no peer
    here.)"""
    import nibabel as nib
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from medview.cli import main
    from medview.io.scan import scan

    data = extract_realdata(("dcm_qa_enh",), tmp_path / "rd")
    ds = pydicom.dcmread(data / "dcm_qa_enh/In/Philips/IM_0027_fMAP.dcm")
    by_position: dict[float, list[int]] = defaultdict(list)
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        by_position[round(float(fg.PlanePositionSequence[0].ImagePositionPatient[2]), 2)].append(i)
    g = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])
    for frames in by_position.values():
        for k, i in enumerate(frames):
            item = Dataset()
            item.DiffusionBValue = 1000.0 * k
            if k:
                direction = Dataset()
                direction.DiffusionGradientOrientation = [float(x) for x in g]
                item.DiffusionGradientDirectionSequence = Sequence([direction])
            ds.PerFrameFunctionalGroupsSequence[i].MRDiffusionSequence = Sequence([item])
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "dwi.dcm")
    stacks = scan([str(tmp_path / "in")]).series
    assert [s.volume_label for s in stacks] == [
        "volume 1 of 2 (b=0)",
        "volume 2 of 2 (b=1000, dir 1/1)",
    ]
    out = tmp_path / "dwi.nii"
    assert main(["load", str(tmp_path / "in"), "--out", str(out)]) == 0
    assert (tmp_path / "dwi.bval").read_text().split() == ["0", "1000"]
    world = _world(out, tmp_path / "dwi.bvec")
    assert np.abs(world[1] - g * [-1, -1, 1]).max() < 1e-5
    assert nib.load(out).shape[3] == 2
