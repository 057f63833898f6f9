"""The competing ways of reading a DICOM series into one array (same data, same output)."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable

import numpy as np


def medview_load(folder: str) -> np.ndarray:
    """MedView: header index (no pixels) + assembly + direct/isolated pixel reads."""
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([folder]).series
    return load_series(series[0]).array


def sitk_load(folder: str) -> np.ndarray:
    """SimpleITK ImageSeriesReader (GDCM), the usual way in Python."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    image = reader.Execute()
    _keep_alive[:] = [image]  # a view needs its image; no copy, so SimpleITK pays for none
    return sitk.GetArrayViewFromImage(image)


_keep_alive: list[object] = []


def pydicom_loop(folder: str) -> np.ndarray:
    """A plain pydicom loop: read every file, sort by position, stack, rescale."""
    import pydicom

    slices = [pydicom.dcmread(f) for f in glob.glob(os.path.join(folder, "*.dcm"))]
    slices.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    arr = np.stack([d.pixel_array for d in slices]).astype(np.float32)
    return arr * float(slices[0].RescaleSlope) + float(slices[0].RescaleIntercept)


def raw_reads(folder: str) -> int:
    """Lower bound: read every file's bytes, parse nothing."""
    total = 0
    for f in glob.glob(os.path.join(folder, "*.dcm")):
        with open(f, "rb") as fh:
            total += len(fh.read())
    return total


METHODS: dict[str, Callable[[str], object]] = {
    "MedView": medview_load,
    "SimpleITK ImageSeriesReader": sitk_load,
    "pydicom loop": pydicom_loop,
    "raw file reads": raw_reads,
}


def prepare(method: str) -> None:
    """Import what a method needs before the baseline is taken (imports are not the volume)."""
    import pydicom  # noqa: F401

    import medview.io.loader
    import medview.io.scan  # noqa: F401

    if method == "SimpleITK ImageSeriesReader":
        import SimpleITK  # noqa: F401
