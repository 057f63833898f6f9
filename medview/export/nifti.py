"""NIfTI output. SimpleITK converts LPS (DICOM/ITK) to the RAS affine NIfTI stores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from medview.core.volume import Volume
from medview.export.atomic import atomic_path
from medview.io.diffusion import Encoding, fsl_bvals_bvecs


def to_sitk(volume: Volume) -> Any:
    """The volume as a SimpleITK image with the same LPS geometry."""
    import SimpleITK as sitk  # heavy: imported only when writing

    arr = np.ascontiguousarray(volume.array)
    img = sitk.GetImageFromArray(arr, isVector=volume.is_color)
    g = volume.geometry
    img.SetOrigin(tuple(float(v) for v in g.origin))
    img.SetSpacing(tuple(float(v) for v in g.spacing))
    img.SetDirection(tuple(float(v) for v in g.direction.ravel()))
    return img


def write_nifti_4d(volumes: list[Volume], path: str | os.PathLike[str]) -> None:
    """Write the volumes of a 4-D series as one 4-D NIfTI (x, y, z, t), atomically. They must
    share one grid (refused otherwise: a 4-D file has one affine)."""
    import nibabel as nib

    first = volumes[0]
    for v in volumes[1:]:
        if v.shape != first.shape or not v.geometry.almost_equal(first.geometry):
            raise ValueError("the volumes of this series do not share one grid")
    path = os.fspath(path)
    suffix = ".nii.gz" if path.endswith(".nii.gz") else ".nii"
    data = np.stack([np.asarray(v.array).transpose(2, 1, 0) for v in volumes], axis=-1)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    img = nib.Nifti1Image(data, lps_to_ras @ first.geometry.affine)
    img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path, suffix) as tmp:
        nib.save(img, tmp)


def write_bval_bvec(
    nifti_path: str | os.PathLike[str],
    encodings: Sequence[Encoding | None],
    volume: Volume,
) -> tuple[str, str]:
    """Write FSL's ``.bval`` and ``.bvec`` beside a 4-D NIfTI written by `write_nifti_4d` from
    volumes on ``volume``'s grid (atomically); returns their paths."""
    path = os.fspath(nifti_path)
    stem = path[: -len(".nii.gz")] if path.endswith(".nii.gz") else path.removesuffix(".nii")
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.geometry.affine  # as write_nifti_4d
    texts = fsl_bvals_bvecs(encodings, volume.geometry.direction, affine)
    paths = (stem + ".bval", stem + ".bvec")
    for target, text in zip(paths, texts, strict=True):
        with atomic_path(target) as tmp, open(tmp, "w", encoding="ascii") as f:
            f.write(text)
    return paths


def write_nifti(volume: Volume, path: str | os.PathLike[str]) -> None:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) atomically."""
    import SimpleITK as sitk

    path = os.fspath(path)
    suffix = ".nii.gz" if path.endswith(".nii.gz") else ".nii"
    img = to_sitk(volume)
    with atomic_path(path, suffix) as tmp:
        sitk.WriteImage(img, tmp, useCompression=suffix == ".nii.gz")
