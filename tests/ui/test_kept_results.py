"""Kept with the study means kept: the shipped chest models and a risk model run on the demo
CT, the window is closed and a new one opened on the same data folder, and the segmentation,
the classification and the risk result are back in the window and in the export."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from medview.io.scan import scan
from medview.ui.main_window import MainWindow
from tests.conftest import DEMO_CT, require_tool
from tests.ui.conftest import open_window, wait_for_volume

CHD = "framingham-chd-10y"


def _window(qtbot, home: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return open_window(qtbot, home)


def _close(window: MainWindow) -> None:
    window.close()
    window.db.close()


def test_results_survive_a_restart_in_window_and_export(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _window(qtbot, tmp_path)
    first.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, first)
    volume = first.controller.state.volume
    for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
        first.models_panel.select(model)
        first.run_model(first.models_panel.selected(), "cpu")
        qtbot.waitUntil(lambda: not first.inference.running, timeout=120000)
    assert first.session.segmentation is not None and first.session.classification is not None
    labels = np.array(first.session.segmentation.labels.array)
    probability = first.session.classification.finding_probability
    csv = tmp_path / "row.csv"
    csv.write_text("age,sysBP,totChol,diabetes,smoking\n66,170,280,1,yes\n")
    first.risk_panel.select(CHD)
    first.risk_panel.import_csv(str(csv))
    risk = first.risk_panel.result.probability
    qtbot.waitUntil(lambda: not first.runner.running, timeout=20000)  # results being kept
    _close(first)

    second = _window(qtbot, tmp_path)  # a new window on the same data folder
    try:
        second.open_stack(scan([str(DEMO_CT)]).series[0].series_uid)
        wait_for_volume(qtbot, second)
        state = second.controller.state
        assert state.volume is not volume
        # the segmentation: same labels, on the reopened series' own grid
        assert state.overlay is not None
        assert state.overlay.labels.geometry is state.volume.geometry
        assert np.array_equal(state.overlay.labels.array, labels)
        assert second.models_panel.legend.rowCount() == 4
        assert "kept with the study" in second.models_panel.provenance.text()
        # the classification and its heat map
        assert state.heatmap is not None
        assert second.session.classification.finding_probability == probability
        # the risk result
        qtbot.waitUntil(lambda: second.risk_panel.study_uid is not None, timeout=10000)
        second.risk_panel.select(CHD)
        assert second.risk_panel.result is not None
        assert second.risk_panel.result.probability == risk
        # and all three reach the export
        content = second.session.export_content()
        assert content is not None and content.segmentation is not None
        assert len(content.classifications) == 1 and CHD in content.risk
        task = second.export_report(out_dir=str(tmp_path / "export"))
        assert task is not None
        qtbot.waitUntil(lambda: second.session.last_export is not None, timeout=60000)
        files = second.session.last_export.files
        assert any(f.endswith(".dcm") for f in files)
        pdf = second.session.last_export.path / next(f for f in files if f.endswith(".pdf"))
        text = subprocess.run(
            [require_tool("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "Chest CT: lung lesion per slice" in text
        assert "lung lesion" in text and "Risk" in text
    finally:
        _close(second)


def test_results_survive_quitting_the_application(tmp_path: Path) -> None:
    """The same across a real restart: one process runs and quits, a new one reopens."""
    import json
    import os
    import sys

    env = {**os.environ, "MEDVIEW_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    driver = Path(__file__).with_name("restart_driver.py")

    def phase(name: str) -> dict:  # type: ignore[type-arg]
        run = subprocess.run(
            [sys.executable, str(driver), name, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads(run.stdout.strip().splitlines()[-1])

    before = phase("run")
    after = phase("check")
    assert before["labels_sha256"] and after["labels_sha256"] == before["labels_sha256"]
    assert after["overlay_on_grid"] and after["heatmap"]
    assert after["finding_probability"] == before["finding_probability"]
    assert after["risk"] == before["risk"]
    pdf = next(p for p in after["export"] if p.endswith(".pdf"))
    assert any(p.endswith("seg.dcm") for p in after["export"])
    text = subprocess.run(
        [require_tool("pdftotext"), pdf, "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Chest CT: lung lesion per slice" in text and "Risk" in text
