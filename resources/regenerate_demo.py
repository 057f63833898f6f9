#!/usr/bin/env python3
"""Rebuild the bundled demo studies from their registry sources.

    python resources/regenerate_demo.py            # fetch, verify, convert, write, check
    python resources/regenerate_demo.py --check    # only verify the committed files

Sources (see SOURCES.md for licences):

* chest CT ``lung2`` and its tumour label: ``pyradiomics-bhklab==3.1.4`` sdist from PyPI,
  ``data/lung2_image.nrrd`` / ``data/lung2_label.nrrd``;
* Colin27 T1 head MR: Debian package ``mricron-data``, ``usr/share/mricron/templates/ch2.nii.gz``.

Each source file's SHA-256 is checked before conversion; the written files' SHA-256 are compared
with ``SHA256SUMS`` (UIDs are derived from fixed seeds, so output is byte-reproducible).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile

RESOURCES = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(RESOURCES)
HERE = os.path.join(RESOURCES, "demo")
sys.path.insert(0, REPO)

SUMS = os.path.join(RESOURCES, "demo.sha256")
sys.path.insert(0, os.path.join(REPO, "models"))
import medview_training  # noqa: E402  (the registry fetch and sha256, standard library only)
from medview_training import sha256  # noqa: E402


def fetch() -> dict[str, str]:
    """The source files from the registries, SHA-256 checked (``models/medview_training.py``
    holds the registry fetch and the recorded checksums; files are cached in
    ``$MEDVIEW_TRAINING_DATA`` or ``.cache/training-data``)."""
    paths = medview_training.fetch(["lung2_image.nrrd", "lung2_label.nrrd", "ch2.nii.gz"])
    for name in paths:
        print(f"source ok  {name}  {medview_training.SOURCES[name][2][:16]}...")
    return {name: str(path) for name, path in paths.items()}


def build(paths: dict[str, str], out: str) -> None:
    import numpy as np
    import SimpleITK as sitk

    from medview.core.geometry import Geometry
    from medview.export.series_writer import SeriesInfo, write_series

    def geometry_of(img: sitk.Image) -> Geometry:
        size = img.GetSize()
        return Geometry(
            shape=(size[2], size[1], size[0]),
            origin=img.GetOrigin(),
            spacing=img.GetSpacing(),
            direction=np.array(img.GetDirection()).reshape(3, 3),
        )

    ct = sitk.DICOMOrient(sitk.ReadImage(paths["lung2_image.nrrd"]), "LPS")
    write_series(
        sitk.GetArrayFromImage(ct),
        geometry_of(ct),
        os.path.join(out, "lung2"),
        SeriesInfo(
            seed="medview-demo-lung2",
            modality="CT",
            patient_name="Demo^ChestCT",
            patient_id="DEMO-LUNG2",
            study_description="CT chest (pyradiomics lung2)",
            series_description="Axial 5 mm",
            body_part="CHEST",
            window=(-600, 1500),
        ),
        transfer_syntax="jpeg-ls",
        rescale_intercept=-1024,
    )
    os.makedirs(os.path.join(out, "reference"), exist_ok=True)
    label = sitk.DICOMOrient(sitk.ReadImage(paths["lung2_label.nrrd"]), "LPS")
    sitk.WriteImage(
        sitk.Cast(label, sitk.sitkUInt8),
        os.path.join(out, "reference", "lung2_tumour_label.nii.gz"),
        useCompression=True,
    )

    mr = sitk.DICOMOrient(sitk.ReadImage(paths["ch2.nii.gz"]), "LPS")
    write_series(
        sitk.GetArrayFromImage(mr).astype(np.int16),
        geometry_of(mr),
        os.path.join(out, "colin27"),
        SeriesInfo(
            seed="medview-demo-colin27",
            modality="MR",
            patient_name="Demo^HeadMR",
            patient_id="DEMO-COLIN27",
            study_description="MR head T1 (Colin27)",
            series_description="T1 1 mm isotropic",
            body_part="HEAD",
            window=(110, 220),
        ),
        transfer_syntax="jpeg-ls",
    )


def outputs(folder: str) -> list[str]:
    """Written files: ``<study>/*.dcm`` and ``reference/*.nii.gz`` under ``folder``."""
    files = sorted(glob.glob(os.path.join(folder, "*", "*.dcm")))
    files += sorted(glob.glob(os.path.join(folder, "reference", "*.nii.gz")))
    return files


def _committed() -> list[str]:
    return sorted(glob.glob(os.path.join(HERE, "*", "*.dcm"))) + sorted(
        glob.glob(os.path.join(RESOURCES, "reference", "*.nii.gz"))
    )


def check() -> int:
    """Compare the committed demo files with ``demo.sha256``; 0 when all match."""
    with open(SUMS) as f:
        want = dict(line.split("  ", 1)[::-1] for line in f.read().splitlines() if line)
    bad = 0
    for path in _committed():
        rel = os.path.relpath(path, RESOURCES)
        if want.get(rel) != sha256(path):
            print(f"MISMATCH {rel}")
            bad += 1
    missing = set(want) - {os.path.relpath(p, RESOURCES) for p in _committed()}
    for rel in sorted(missing):
        print(f"MISSING {rel}")
    print(f"{len(want) - bad - len(missing)}/{len(want)} files match SHA256SUMS")
    return 1 if bad or missing else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only verify the committed files")
    ap.add_argument(
        "--write-sums",
        action="store_true",
        help="record new output checksums (after a deliberate change)",
    )
    args = ap.parse_args()
    if args.check:
        return check()
    paths = fetch()
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        build(paths, tmp)
        for path in outputs(tmp):
            rel = os.path.relpath(path, tmp)
            dest = os.path.join(RESOURCES if rel.startswith("reference") else HERE, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(path, dest)
    if args.write_sums:
        with open(SUMS, "w") as f:
            for path in _committed():
                f.write(f"{sha256(path)}  {os.path.relpath(path, RESOURCES)}\n")
    return check()


if __name__ == "__main__":
    sys.exit(main())
