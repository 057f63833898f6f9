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


def write_nifti(volume: Volume, path: str | os.PathLike[str]) -> None:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) atomically."""
    import SimpleITK as sitk

    path = os.fspath(path)
    suffix = ".nii.gz" if path.endswith(".nii.gz") else ".nii"
    img = to_sitk(volume)
    with atomic_path(path, suffix) as tmp:
        sitk.WriteImage(img, tmp, useCompression=suffix == ".nii.gz")
