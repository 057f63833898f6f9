"""A whole reading without Qt: `StudySession` on the demo CT (open, measure, segment, classify,
mark a key image, export) in a process where Qt cannot be imported; the bundle's SEG, SR and
PDF figures equal those of the same reading done in the window. And the session keeps what a
reader expects kept: a second session on the same database gets the measurements and the AI
results back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import DEMO_CT, REPO, require_tool
from tests.test_imports import BLOCK_QT

SLICE = 30  # the axial slice measured and marked (the demo CT's tumour is near it)


def measurements(volume):  # type: ignore[no-untyped-def]
    """A ruler and an ellipse on axial slice SLICE, in patient coordinates."""
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    g = volume.geometry

    def p(y: float, x: float) -> tuple[float, float, float]:
        return tuple(float(v) for v in g.index_to_lps(np.array([SLICE, y, x])))  # type: ignore[return-value]

    return [
        Measurement(Kind.RULER, View.AXIAL, (p(200, 150), p(260, 210)), id="ruler"),
        Measurement(Kind.ELLIPSE, View.AXIAL, (p(220, 300), p(300, 380)), id="ellipse"),
    ]


HEADLESS = """
import json, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from medview.export.content import ExportOptions, KeyImage
from medview.inference.registry import find_model
from medview.io.database import StudyDatabase
from medview.io.scan import scan
from medview.session import StudySession
from tests.ui.test_session_reading import SLICE, measurements

db = StudyDatabase(Path({home!r}) / "study.db")
db.import_paths([{demo!r}])
series = scan([{demo!r}]).series[0]
session = StudySession(db)
heard = []
for event in ("series", "measurements", "segmentation", "classification", "key_images"):
    session.subscribe(event, lambda s, e=event: heard.append(e))
volume = session.open(series)
for m in measurements(volume):
    session.add_measurement(m)
for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
    session.run_model(find_model(model), device="cpu")
session.add_key_image(KeyImage("axial", SLICE, "tumour"))
result = session.export({out!r}, ExportOptions())
qt = [m for m in sys.modules if m.startswith(("PySide6", "shiboken6"))]
print(json.dumps({{"path": str(result.path), "heard": heard, "qt": qt}}))
"""


def figures(bundle: Path) -> dict[str, object]:
    """What a reader reads in a bundle: the SEG's segments and label voxels, the SR's numbers,
    and the PDF's lines with a figure in them (run times and dates left out)."""
    import nibabel as nib

    seg = pydicom.dcmread(bundle / "seg.dcm")
    segments = [
        (s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeValue)
        for s in seg.SegmentSequence
    ]
    labels = np.asarray(nib.load(bundle / "labels.nii.gz").dataobj)
    counts = np.bincount(labels.ravel().astype(np.int64)).tolist()

    numbers = []

    def walk(items):  # type: ignore[no-untyped-def]
        for it in items:
            if it.ValueType == "NUM":
                mv = it.MeasuredValueSequence[0]
                numbers.append(
                    (
                        it.ConceptNameCodeSequence[0].CodeMeaning,
                        round(float(mv.NumericValue), 3),
                        mv.MeasurementUnitsCodeSequence[0].CodeValue,
                    )
                )
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(pydicom.dcmread(bundle / "sr.dcm").ContentSequence)
    text = subprocess.run(
        [require_tool("pdftotext"), "-layout", str(bundle / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the figures: from the measurements to the provenance (run times and dates are there)
    body = text[text.index("Measurements") : text.index("Provenance of AI results")]
    lines = [
        " ".join(line.split())
        for line in body.splitlines()
        if any(c.isdigit() for c in line) and "MedView " not in line
    ]
    return {"segments": segments, "counts": counts, "sr": sorted(numbers), "pdf": lines}


@pytest.fixture(scope="module")
def headless(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    home = tmp_path_factory.mktemp("headless")
    code = BLOCK_QT + HEADLESS.format(
        repo=str(REPO), home=str(home), demo=str(DEMO_CT), out=str(home / "bundle")
    )
    env_home = {"MEDVIEW_HOME": str(home)}
    import os

    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env_home},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out: dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    out["home"] = str(home)
    return out


def test_a_whole_reading_runs_without_qt(headless: dict[str, object]) -> None:
    assert headless["qt"] == []
    heard = headless["heard"]
    assert heard[0] == "series" and heard.count("measurements") == 2
    assert "segmentation" in heard and "classification" in heard and "key_images" in heard
    bundle = Path(str(headless["path"]))
    got = figures(bundle)
    assert len(got["segments"]) >= 2  # type: ignore[arg-type]
    assert any(name.startswith("Length") for name, _, _ in got["sr"])  # type: ignore[attr-defined]
    assert any(line.startswith("lung ") for line in got["pdf"])  # type: ignore[attr-defined]
    assert any(line.startswith("1 ruler, axial") for line in got["pdf"])  # type: ignore[attr-defined]


def test_the_window_and_the_session_export_the_same_figures(
    headless: dict[str, object], qtbot, window, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.export.content import KeyImage
    from tests.ui.conftest import wait_for_volume

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    volume = window.controller.state.volume
    for m in measurements(volume):
        window.controller.add_measurement(m)
    for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
        window.models_panel.select(model)
        window.run_model(window.models_panel.selected(), "cpu")
        qtbot.waitUntil(lambda: not window.inference.running, timeout=180000)
    window.session.key_images.append(KeyImage("axial", SLICE, "tumour"))
    assert window.export_report(out_dir=str(tmp_path / "export")) is not None
    qtbot.waitUntil(lambda: window.session.last_export is not None, timeout=120000)
    in_window = figures(window.session.last_export.path)
    headless_figures = figures(Path(str(headless["path"])))
    for part in ("segments", "counts", "sr", "pdf"):
        assert in_window[part] == headless_figures[part], part


def test_a_new_session_gets_the_reading_back(headless: dict[str, object]) -> None:
    """Kept means kept: measurements and both AI results come back in a new session on the
    same database (a restart without a window)."""
    from medview.io.database import StudyDatabase
    from medview.io.scan import scan
    from medview.session import StudySession

    db = StudyDatabase(Path(str(headless["home"])) / "study.db")
    try:
        session = StudySession(db)
        session.open(scan([str(DEMO_CT)]).series[0])
        assert sorted(m.id for m in session.measurements.items) == ["ellipse", "ruler"]
        assert session.segmentation is not None and session.classification is not None
        assert session.segmentation.provenance is not None
        assert session.segmentation.provenance.model_id == "chest-ct-segmentation"
        assert session.kept_on["segmentation"]
        saved = figures(Path(str(headless["path"])))
        counts = np.bincount(np.asarray(session.segmentation.labels.array).ravel()).tolist()
        assert counts == saved["counts"]
    finally:
        db.close()
