"""DICOM to NIfTI as a whole process: `medview load` vs dcm2niix on the same files.

The generated 300 x 512 x 512 CT, a real 4-D run (the GE fMRI of dcm_qa_nih, 150 files,
15 positions x 10 volumes) and a 2,010-file diffusion series made of that run's real images
(134 volumes, each with a b-value and direction, as a long DWI acquisition has). Wall time of
the whole command (interpreter start, imports, indexing, reading, writing) and its peak RSS,
medians of 5. dcm2niix from Debian's package; the table says so when it is absent. Asserts
only that both wrote a file.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.benchmarks.common import print_table
from tests.benchmarks.test_bench_load import ct300  # noqa: F401  (the shared fixture)
from tests.conftest import extract_realdata

pytestmark = pytest.mark.benchmark

MEDVIEW = Path(sys.executable).parent / "medview"


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command (GNU time's maximum resident size)."""
    t0 = time.perf_counter()
    timed = ["/usr/bin/time", "-f", "%M", *cmd]
    run = subprocess.run(timed, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    return seconds, int(run.stderr.strip().splitlines()[-1]) / 1024


def _median(cmd: list[str], repeats: int = 5) -> tuple[float, float]:
    _run(cmd)  # warm the page cache
    runs = [_run(cmd) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _long_dwi(run: Path, out: Path, volumes: int = 134) -> Path:
    """A 4-D diffusion series of ``volumes`` x 15 files from the real GE run's images: new
    instance UIDs and numbers, b=0 every tenth volume, else b=1000 along a random direction."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    out.mkdir(parents=True)
    images = sorted(
        (pydicom.dcmread(f) for f in run.glob("*.dcm")), key=lambda d: int(d.InstanceNumber)
    )
    rng = np.random.default_rng(5)
    for v in range(volumes):
        g = rng.normal(size=3)
        g /= np.linalg.norm(g)
        b = 0.0 if v % 10 == 0 else 1000.0
        for k in range(15):
            d = images[(v % 10) * 15 + k]
            d.SOPInstanceUID = generate_uid()
            d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
            d.InstanceNumber = v * 15 + k + 1
            d.add_new((0x0018, 0x9087), "FD", b)
            if b:
                d.add_new((0x0018, 0x9089), "FD", [float(x) for x in g])
            elif (0x0018, 0x9089) in d:
                del d[0x0018, 0x9089]
            d.save_as(out / f"IM{v * 15 + k + 1:05d}.dcm")
    return out


def test_bench_medview_load_vs_dcm2niix(ct300: Path, tmp_path: Path) -> None:  # noqa: F811
    if not Path("/usr/bin/time").exists():
        pytest.skip("GNU time (/usr/bin/time) not installed")
    dcm2niix = shutil.which("dcm2niix")
    fmri = extract_realdata(("dcm_qa_nih",), tmp_path / "real") / "dcm_qa_nih" / "In"
    cases = {
        "CT 300 x 512 x 512 (150 MiB)": ct300,
        "GE fMRI 15 x 64 x 64 x 10 (150 files)": fmri / "20180918GE" / "mr_0004",
        "DWI 15 x 64 x 64 x 134 (2,010 files)": _long_dwi(
            fmri / "20180918GE" / "mr_0004", tmp_path / "dwi"
        ),
    }
    rows = []
    for name, folder in cases.items():
        out = tmp_path / "mv.nii"
        ours = _median([str(MEDVIEW), "load", str(folder), "--out", str(out)])
        assert out.is_file()
        if dcm2niix:
            d = tmp_path / "d2n"
            d.mkdir(exist_ok=True)
            peer = _median([dcm2niix, "-z", "n", "-b", "n", "-o", str(d), "-f", "x", str(folder)])
            ratio = f"{peer[0] / ours[0]:.2f}x"
            rows.append(
                [
                    name,
                    f"{ours[0]:.2f} s, {ours[1]:.0f} MiB",
                    f"{peer[0]:.2f} s, {peer[1]:.0f} MiB",
                    ratio,
                ]
            )
        else:
            rows.append(
                [name, f"{ours[0]:.2f} s, {ours[1]:.0f} MiB", "dcm2niix not installed", "-"]
            )
    print_table(
        "DICOM to uncompressed NIfTI, whole process (median of 5; peak RSS)",
        rows,
        ["series", "medview load", "dcm2niix", "speed vs dcm2niix"],
    )
