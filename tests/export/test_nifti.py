"""NIfTI written straight from the volume's memory (`medview.export.nifti`) is the file
SimpleITK writes for the same volume: same affine, qform (quaternion and qfac), data type and
voxels, read back by nibabel and by SimpleITK, for left- and right-handed, oblique and axis
grids, plain and gzipped, 3-D and 4-D; and writing it holds no second copy of the volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.export.nifti import to_sitk, write_nifti, write_nifti_4d


def _directions() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0.0]])]
    for k in range(4):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        if k % 2:
            q[:, 2] *= -1  # left-handed
        out.append(q)
    # a DICOM-like grid whose cosines carry rounding
    out.append(np.round(out[-1], 5))
    return out


@pytest.mark.parametrize("direction", _directions(), ids=lambda d: f"det{np.linalg.det(d):+.0f}")
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.uint16, np.bool_])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_same_file_as_simpleitk(
    tmp_path: Path, direction: np.ndarray, dtype: type, suffix: str
) -> None:
    import nibabel as nib
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    g = Geometry(
        shape=(5, 6, 7),
        origin=np.array([-120.5, 33.25, 81.0]),
        spacing=np.array([0.7, 0.8, 2.5]),
        direction=direction,
    )
    v = Volume(rng.integers(0, 2 if dtype is np.bool_ else 200, (5, 6, 7)).astype(dtype), g)
    ours = tmp_path / f"ours{suffix}"
    write_nifti(v, ours)
    ref = tmp_path / f"ref{suffix}"
    sitk.WriteImage(to_sitk(Volume(v.array.astype(np.uint8), g) if dtype is np.bool_ else v),
                    str(ref))  # fmt: skip
    a, b = nib.load(ours), nib.load(ref)
    assert np.allclose(a.affine, b.affine, atol=1e-5)
    assert np.allclose(a.get_qform(), b.get_qform(), atol=1e-5)
    assert a.header["qform_code"] == b.header["qform_code"] == 1
    assert a.header["sform_code"] == 1
    assert a.get_data_dtype() == b.get_data_dtype()
    assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    back = sitk.ReadImage(str(ours))
    assert np.allclose(np.reshape(back.GetDirection(), (3, 3)), direction, atol=1e-4)
    assert np.allclose(back.GetOrigin(), g.origin, atol=1e-4)
    assert np.allclose(back.GetSpacing(), g.spacing, atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(back), v.array.astype(np.uint8)
                          if dtype is np.bool_ else v.array)  # fmt: skip


def test_4d_and_refusals(tmp_path: Path) -> None:
    import nibabel as nib

    g = Geometry(shape=(3, 4, 5), origin=np.zeros(3), spacing=np.ones(3), direction=np.eye(3))
    vols = [Volume(np.full((3, 4, 5), k, np.int16), g) for k in range(4)]
    write_nifti_4d(vols, tmp_path / "4d.nii.gz")
    img = nib.load(tmp_path / "4d.nii.gz")
    assert img.shape == (5, 4, 3, 4)
    assert [int(np.asarray(img.dataobj)[..., k].max()) for k in range(4)] == [0, 1, 2, 3]
    other = Geometry(shape=(3, 4, 5), origin=np.ones(3), spacing=np.ones(3), direction=np.eye(3))
    with pytest.raises(ValueError, match="one grid"):
        write_nifti_4d([vols[0], Volume(vols[1].array, other)], tmp_path / "x.nii")
    assert not (tmp_path / "x.nii").exists()


def test_writing_holds_no_copy_of_the_volume(tmp_path: Path) -> None:
    import tracemalloc

    g = Geometry(shape=(64, 256, 256), origin=np.zeros(3), spacing=np.ones(3), direction=np.eye(3))
    v = Volume(np.ones((64, 256, 256), np.int16), g)  # 8 MiB
    tracemalloc.start()
    write_nifti(v, tmp_path / "v.nii")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < v.array.nbytes / 4
