"""LIDC-IDRI lung nodules for the nodule models: the crops and masks in
``../shared/data/lidc_voi.tar.xz`` (792 nodules, 432 patients; CC BY 3.0, see
``../shared/data/README.md``), unpacked once into the training cache, read as MedView
``Volume``s, split into patient-level folds.

Cite: Armato SG III et al., Medical Physics 38(2):915-931, 2011; Clark K et al., J Digit Imaging
26:1045-1057, 2013. The data is read from ``../shared``; nothing of it is committed.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = Path(os.environ.get("MEDVIEW_LIDC", REPO.parent / "shared" / "data" / "lidc_voi.tar.xz"))
CACHE = Path(os.environ.get("MEDVIEW_TRAINING_DATA", REPO / ".cache" / "training-data"))
FOLDS = 5
FOLD_SEED = "medview-lidc-folds"  # patient -> fold by a hash: stable, no random state


# what both nodule models read: the CT window, the box around the nodule, the domain
PREPROCESSING = {
    "intensity": {
        "kind": "window",
        "a_min": -1000.0,
        "a_max": 400.0,
        "b_min": 0.0,
        "b_max": 1.0,
        "clip": True,
    },
}
BOX = {"box_shape": [32, 48, 48], "box_spacing_mm": [1.0, 0.75, 0.75], "sigma_mm": 3.0}
DOMAIN = {"modalities": ["CT"], "body_parts": [], "min_slices": 2, "spacing_mm": [0.3, 3.0]}
EVAL_CLICK_MM = 3.0  # the evaluation's click: within 3 mm of the nodule's centre


def point_near(centre: Any, radius_mm: float, rng: Any) -> Any:
    """A point drawn uniformly in the ball of ``radius_mm`` around ``centre`` (LPS mm)."""
    import numpy as np

    d = rng.normal(size=3)
    return centre + d / np.linalg.norm(d) * radius_mm * rng.uniform() ** (1 / 3)


@dataclass(frozen=True)
class Nodule:
    name: str  # LIDC-IDRI-XXXX_R_N
    patient: str
    diameter_mm: float
    malignant: bool
    malignancy_value: int  # the radiologists' median-vote rating 1..5
    image: Path
    mask: Path

    @property
    def fold(self) -> int:
        return fold_of(self.patient)

    @property
    def size_band(self) -> str:
        return (
            "<6 mm" if self.diameter_mm < 6 else ("6-10 mm" if self.diameter_mm <= 10 else ">10 mm")
        )


def fold_of(patient: str) -> int:
    """A patient's fold (0..4): all nodules of a patient are on one side of every split."""
    digest = hashlib.sha256(f"{FOLD_SEED}:{patient}".encode()).digest()
    return digest[0] % FOLDS


def available() -> bool:
    return ARCHIVE.is_file() or (CACHE / "lidc_voi" / "nodules.csv").is_file()


def unpack() -> Path:
    """The unpacked crops (``CACHE/lidc_voi``), unpacked from ``../shared`` on first use."""
    root = CACHE / "lidc_voi"
    if (root / "nodules.csv").is_file():
        return root
    if not ARCHIVE.is_file():
        raise SystemExit(f"LIDC crops not found: {ARCHIVE} (see ../shared/data/README.md)")
    CACHE.mkdir(parents=True, exist_ok=True)
    from medview_training import copy_files

    tmp = CACHE / f".lidc-{os.getpid()}"
    copy_files(ARCHIVE, tmp, lambda name: name.startswith("lidc_voi/"))
    try:
        os.replace(tmp / "lidc_voi", root)
    except OSError:  # another process unpacked it meanwhile
        if not (root / "nodules.csv").is_file():
            raise
        import shutil

        shutil.rmtree(tmp / "lidc_voi", ignore_errors=True)
    tmp.rmdir()
    return root


def nodules() -> list[Nodule]:
    """Every nodule with a crop, in name order."""
    root = unpack()
    out = []
    with open(root / "nodules.csv", newline="") as f:
        for row in csv.DictReader(f):
            name = f"{row['patient_id']}_R_{row['nodule_id']}"
            image = root / "image" / f"{name}.nii"
            if not image.is_file():
                continue
            out.append(
                Nodule(
                    name,
                    row["patient_id"],
                    float(row["diameter_mm"]),
                    row["Diagnosis"].strip().lower().startswith("malign"),
                    int(row["Malignancy_value"]),
                    image,
                    root / "nodule_mask" / f"{name}.nii",
                )
            )
    return sorted(out, key=lambda n: n.name)


def read(nodule: Nodule) -> tuple[Any, Any]:
    """The crop as a CT ``Volume`` and its mask (bool array on the same grid)."""
    import numpy as np
    from medview_training import read_nifti

    volume = read_nifti(nodule.image, "CT")
    mask = read_nifti(nodule.mask, "SEG").array > 0
    return volume, np.ascontiguousarray(mask)


def centre_lps(volume: Any, mask: Any) -> Any:
    """The mask's centre of mass in LPS mm."""
    import numpy as np

    return volume.geometry.index_to_lps(np.argwhere(mask).mean(axis=0))
