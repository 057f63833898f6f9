"""The bundled demo studies: valid DICOM, unchanged since generation, small enough to ship."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import DEMO, REPO, require_tool


def test_every_demo_file_passes_dciodvfy() -> None:
    dciodvfy = require_tool("dciodvfy")
    files = sorted(DEMO.rglob("*.dcm"))
    assert len(files) == 61 + 181
    for f in files:
        r = subprocess.run([dciodvfy, str(f)], capture_output=True, text=True)
        errors = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]
        assert not errors and r.returncode == 0, (f, errors)


def test_demo_matches_recorded_checksums() -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "resources" / "regenerate_demo.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "243/243 files match" in r.stdout


def test_demo_folder_under_40_mb() -> None:
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 40 * 1024**2
    assert {p.name for p in DEMO.iterdir()} == {"lung2", "colin27"}


def test_sources_and_licences_are_credited() -> None:
    text = (REPO / "resources" / "DEMO_SOURCES.md").read_text()
    for needle in (
        "pyradiomics-bhklab==3.1.4",
        "mricron-data",
        "BSD-3-Clause",
        "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651",
    ):
        assert needle in text
    readme = (REPO / "README.md").read_text()
    assert "DEMO_SOURCES.md" in readme
