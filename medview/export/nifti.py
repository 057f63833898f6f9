"""NIfTI output. SimpleITK converts LPS (DICOM/ITK) to the RAS affine NIfTI stores."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from medview.core.volume import Volume
from medview.export.atomic import atomic_path


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


def write_nifti(volume: Volume, path: str | os.PathLike[str]) -> None:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) atomically."""
    import SimpleITK as sitk

    path = os.fspath(path)
    suffix = ".nii.gz" if path.endswith(".nii.gz") else ".nii"
    img = to_sitk(volume)
    with atomic_path(path, suffix) as tmp:
        sitk.WriteImage(img, tmp, useCompression=suffix == ".nii.gz")
