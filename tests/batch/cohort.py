"""A cohort of small generated chest CTs (body, lungs, spine, a nodule that moves and grows
from one patient to the next), written as DICOM series, and the pipelines the tests run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import write_ct


def chest(i: int, n: int = 20, size: int = 80) -> np.ndarray:
    """Patient ``i``'s chest CT in HU, (z, y, x)."""
    rng = np.random.default_rng(i)
    z, y, x = np.mgrid[0:n, 0:size, 0:size].astype(np.float32)
    c = size / 2
    body = ((x - c) / (0.45 * size)) ** 2 + ((y - c) / (0.33 * size)) ** 2 < 1
    vol = np.full((n, size, size), -1000.0, np.float32)
    vol[body] = 40
    for side in (-1, 1):
        lung = ((x - c - side * 0.2 * size) / (0.14 * size)) ** 2 + (
            (y - c + 0.02 * size) / (0.22 * size)
        ) ** 2 < 1
        vol[lung & (z > 1) & (z < n - 2)] = -820
    spine = (x - c) ** 2 + (y - c - 0.22 * size) ** 2 < (0.06 * size) ** 2
    vol[spine] = 650
    r = 2 + (i % 5)
    cx, cy, cz = c + 0.2 * size + rng.integers(-4, 5), c + rng.integers(-5, 6), n / 2
    nodule = (x - cx) ** 2 + (y - cy) ** 2 + ((z - cz) * 2.5) ** 2 < r**2
    vol[nodule] = 30
    vol += rng.normal(0, 12, vol.shape)
    return vol.astype(np.int16)


def write_cohort(folder: Path, count: int) -> list[Path]:
    """``count`` patients, one series each, in their own folders."""
    out = []
    for i in range(count):
        sub = folder / f"p{i:03d}"
        write_ct(
            sub,
            values=chest(i),
            spacing=(4.0, 4.0, 5.0),
            origin=(-160.0, -160.0, -50.0 + i),
            seed=f"cohort-{i}",
            patient_id=f"COHORT{i:03d}",
            patient_name=f"Cohort^{i:03d}",
        )
        out.append(sub)
    return out


PIPELINE = """\
format = "medview-pipeline/1"
name = "chest and brain"

[[select]]
modality = "CT"
min_images = 16

[[select]]
modality = "MR"

[[models]]
id = "chest-ct-segmentation"
modality = "CT"

[[models]]
id = "chest-ct-lesion-classifier"
modality = "CT"

[[models]]
id = "brain-extraction-mr"
modality = "MR"

[export]
formats = ["summary", "nifti"]
"""


def write_corrupt(folder: Path) -> Path:
    """A series whose headers index but whose pixels cannot be decoded: every image claims
    JPEG 2000 and carries a broken code stream."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    files = write_ct(
        folder, values=chest(99), spacing=(4.0, 4.0, 5.0), seed="corrupt", patient_id="BROKEN"
    )
    for f in files:
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(256)) * 8])
        ds["PixelData"].VR = "OB"
        ds.save_as(f, enforce_file_format=True)
    return folder
