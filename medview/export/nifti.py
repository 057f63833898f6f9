"""NIfTI output: volumes in LPS (DICOM/ITK) written with the RAS affine NIfTI stores."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from medview.core.atomic import atomic_path
from medview.core.geometry import Geometry
from medview.core.volume import Volume
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
    first = volumes[0]
    for v in volumes[1:]:
        if (
            v.shape != first.shape
            or v.array.dtype != first.array.dtype
            or not v.geometry.almost_equal(first.geometry)
        ):
            raise ValueError("the volumes of this series do not share one grid")
    _write_nifti1(path, [v.array for v in volumes], first.geometry)


# NIfTI-1 datatype codes of the scalar types written directly
_DATATYPES = {
    np.dtype(np.uint8): 2,
    np.dtype(np.int16): 4,
    np.dtype(np.int32): 8,
    np.dtype(np.float32): 16,
    np.dtype(np.float64): 64,
    np.dtype(np.int8): 256,
    np.dtype(np.uint16): 512,
    np.dtype(np.uint32): 768,
    np.dtype(np.int64): 1024,
    np.dtype(np.uint64): 1280,
}


def ras_affine(geometry: Geometry) -> np.ndarray:
    """The grid's NIfTI affine: index (x, y, z, 1) to RAS mm (MedView works in LPS)."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ geometry.affine


def _quaternion(rotation: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    """qfac and (b, c, d) of NIfTI's qform for a direction matrix (columns the voxel axes in
    RAS), as nifti1_io's mat44_to_quatern: the nearest rotation, the third axis turned round
    (qfac -1) when the axes are left-handed."""
    u, _, vt = np.linalg.svd(rotation)
    r = u @ vt  # the nearest orthonormal matrix (DICOM cosines carry rounding)
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r = r.copy()
        r[:, 2] = -r[:, 2]
    a = r[0, 0] + r[1, 1] + r[2, 2] + 1.0
    if a > 0.5:
        a = 0.5 * np.sqrt(a)
        b = 0.25 * (r[2, 1] - r[1, 2]) / a
        c = 0.25 * (r[0, 2] - r[2, 0]) / a
        d = 0.25 * (r[1, 0] - r[0, 1]) / a
    else:
        xd = 1.0 + r[0, 0] - (r[1, 1] + r[2, 2])
        yd = 1.0 + r[1, 1] - (r[0, 0] + r[2, 2])
        zd = 1.0 + r[2, 2] - (r[0, 0] + r[1, 1])
        if xd > 1.0:
            b = 0.5 * np.sqrt(xd)
            c = 0.25 * (r[0, 1] + r[1, 0]) / b
            d = 0.25 * (r[0, 2] + r[2, 0]) / b
            a = 0.25 * (r[2, 1] - r[1, 2]) / b
        elif yd > 1.0:
            c = 0.5 * np.sqrt(yd)
            b = 0.25 * (r[0, 1] + r[1, 0]) / c
            d = 0.25 * (r[1, 2] + r[2, 1]) / c
            a = 0.25 * (r[0, 2] - r[2, 0]) / c
        else:
            d = 0.5 * np.sqrt(zd)
            b = 0.25 * (r[0, 2] + r[2, 0]) / d
            c = 0.25 * (r[1, 2] + r[2, 1]) / d
            a = 0.25 * (r[1, 0] - r[0, 1]) / d
        if a < 0.0:
            b, c, d = -b, -c, -d
    return qfac, (float(b), float(c), float(d))


def nifti1_header(shape_xyzt: Sequence[int], dtype: np.dtype, geometry: Geometry) -> bytes:
    """The 348-byte NIfTI-1 header (and the 4-byte extension flag) of scalar data of
    ``dtype`` on ``geometry``'s grid: sform and qform both scanner-based (code 1), RAS."""
    ras = ras_affine(geometry)
    qfac, (qb, qc, qd) = _quaternion(ras[:3, :3] / geometry.spacing[np.newaxis, :])
    dims = [len(shape_xyzt), *shape_xyzt] + [1] * (7 - len(shape_xyzt))
    pixdim = [qfac, *(float(v) for v in geometry.spacing), 1.0, 1.0, 1.0, 1.0][:8]
    h = bytearray(352)
    struct.pack_into("<i", h, 0, 348)
    h[38:39] = b"r"
    struct.pack_into("<8h", h, 40, *dims)
    struct.pack_into("<hh", h, 70, _DATATYPES[dtype], dtype.itemsize * 8)
    struct.pack_into("<8f", h, 76, *pixdim)
    struct.pack_into("<f", h, 108, 352.0)  # vox_offset
    struct.pack_into("<ff", h, 112, 1.0, 0.0)  # scl_slope, scl_inter: values as stored
    h[123] = 2 | 8  # xyzt_units: mm, seconds
    h[148 : 148 + 7] = b"MedView"
    struct.pack_into("<hh", h, 252, 1, 1)  # qform_code, sform_code: scanner
    struct.pack_into("<6f", h, 256, qb, qc, qd, *(float(v) for v in ras[:3, 3]))
    struct.pack_into("<12f", h, 280, *(float(v) for v in ras[:3, :].ravel()))
    h[344:348] = b"n+1\0"
    return bytes(h)


def _write_nifti1(
    path: str | os.PathLike[str], arrays: Sequence[np.ndarray], geometry: Geometry
) -> None:
    """Write scalar (z, y, x) arrays as one NIfTI-1 file (3-D for one array, 4-D for more),
    atomically, straight from their memory: a (z, y, x) C-order array is NIfTI's x-fastest
    order, so nothing is transposed or copied.

    Hand-written with a measured reason: `medview load` of a 300 x 512 x 512 CT spent 0.54 s
    in SimpleITK's writer and its copy of the volume (peak RSS 3x the volume), and nibabel's
    import alone costs 0.24 s; this writes the same file in the time the disk takes. nibabel
    reads every file written here back in the tests (affine, qform, voxels)."""
    path = os.fspath(path)
    suffix = ".nii.gz" if path.endswith(".nii.gz") else ".nii"
    z, y, x = arrays[0].shape
    dtype = np.dtype(arrays[0].dtype).newbyteorder("<")
    shape = (x, y, z) if len(arrays) == 1 else (x, y, z, len(arrays))
    header = nifti1_header(shape, dtype, geometry)
    with atomic_path(path, suffix) as tmp, open(tmp, "wb") as raw:
        out: Any = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) if (
            suffix == ".nii.gz"
        ) else raw  # fmt: skip
        out.write(header)
        for arr in arrays:
            data = np.ascontiguousarray(arr, dtype=dtype)
            out.write(data.reshape(-1).data)
        if out is not raw:
            out.close()


def write_bval_bvec(
    nifti_path: str | os.PathLike[str],
    encodings: Sequence[Encoding | None],
    volume: Volume,
) -> tuple[str, str]:
    """Write FSL's ``.bval`` and ``.bvec`` beside a 4-D NIfTI written by `write_nifti_4d` from
    volumes on ``volume``'s grid (atomically); returns their paths."""
    path = os.fspath(nifti_path)
    stem = path[: -len(".nii.gz")] if path.endswith(".nii.gz") else path.removesuffix(".nii")
    texts = fsl_bvals_bvecs(encodings, volume.geometry.direction, ras_affine(volume.geometry))
    paths = (stem + ".bval", stem + ".bvec")
    for target, text in zip(paths, texts, strict=True):
        with atomic_path(target) as tmp, open(tmp, "w", encoding="ascii") as f:
            f.write(text)
    return paths


def write_nifti(volume: Volume, path: str | os.PathLike[str]) -> None:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) atomically: scalar volumes
    directly (`_write_nifti1`), colour ones through SimpleITK."""
    path = os.fspath(path)
    dtype = np.dtype(volume.array.dtype)
    if dtype == np.bool_:
        volume = Volume(volume.array.astype(np.uint8), volume.geometry)
        dtype = np.dtype(np.uint8)
    if not volume.is_color and dtype.newbyteorder("=") in _DATATYPES:
        _write_nifti1(path, [volume.array], volume.geometry)
        return
    import SimpleITK as sitk

    suffix = ".nii.gz" if path.endswith(".nii.gz") else ".nii"
    img = to_sitk(volume)
    with atomic_path(path, suffix) as tmp:
        sitk.WriteImage(img, tmp, useCompression=suffix == ".nii.gz")
