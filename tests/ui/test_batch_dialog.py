"""From a reading to a cohort, in the window: the chest models run on the demo CT, the reading
is saved as a pipeline, and File > Run on many studies... runs it over a folder of studies
(here in one process), showing the progress, with Cancel and Resume, and the same results
table the command writes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from medview.batch.pipeline import read_pipeline
from medview.ui.batch_actions import run_on_many_studies, save_reading_as_pipeline
from tests.batch.cohort import write_cohort
from tests.batch.raytools import kill_marked, marked_env
from tests.conftest import DEMO_CT
from tests.ui.conftest import wait_for_volume


def test_reading_saved_as_pipeline_runs_on_many_studies(qtbot, window, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
        window.models_panel.select(model)
        window.run_model(window.models_panel.selected(), "cpu")
        qtbot.waitUntil(lambda: not window.inference.running, timeout=120000)
    path = save_reading_as_pipeline(window, str(tmp_path / "reading.toml"))
    assert path is not None
    pipeline = read_pipeline(path)
    assert [m.id for m in pipeline.models] == [
        "chest-ct-segmentation",
        "chest-ct-lesion-classifier",
    ]
    assert pipeline.takes("CT", "anything", 61) and not pipeline.takes("MR", "", 61)
    assert pipeline.exports == ("summary", "nifti", "bundle")
    # the bundles are tested elsewhere (the PACS cohort, the runtime install); here the summary
    # keeps the run short
    text = Path(path).read_text()
    Path(path).write_text(text.replace('["summary", "nifti", "bundle"]', '["summary"]'))

    write_cohort(tmp_path / "cohort", 6)
    for key, value in marked_env("dialog").items():  # the job's processes inherit the marker
        monkeypatch.setenv(key, value)
    dialog = run_on_many_studies(window)
    assert dialog.pipeline.text() == path  # the saved pipeline is the one offered
    dialog.folders.addItem(str(tmp_path / "cohort"))
    dialog.out.setText(str(tmp_path / "results"))
    # one process, one series at a time: the dialog runs the same command either way, and
    # that command's Ray engine is tested on its own (tests/batch); this keeps CI short
    dialog.engine.setCurrentIndex(2)
    try:
        dialog.run_button.click()
        assert dialog.process is not None and not dialog.run_button.isEnabled()
        # cancel once the first series is done: it is kept, and Resume goes on from it
        qtbot.waitUntil(lambda: dialog.status.get("done", 0) >= 1, timeout=300000)
        dialog.cancel_button.click()
        qtbot.waitUntil(lambda: dialog.process is None, timeout=60000)
        assert dialog.summary.text().startswith("Cancelled"), dialog.log.toPlainText()
        table = tmp_path / "results" / "results.parquet"
        assert table.is_file(), dialog.log.toPlainText()[-3000:]
        kept = pq.read_table(tmp_path / "results" / "results.parquet").to_pylist()
        assert 1 <= len(kept) < 6 and dialog.resume.isChecked()
        kill_marked("dialog")
        dialog.run_button.click()
        qtbot.waitUntil(lambda: dialog.process is None, timeout=300000)
    finally:
        kill_marked("dialog")
    todo = 6 - len(kept)
    assert dialog.bar.value() == dialog.bar.maximum() == todo, dialog.log.toPlainText()
    assert dialog.summary.text().startswith(
        f"Finished. {todo} done, 0 failed, {len(kept)} already done of 6"
    ), dialog.summary.text()
    assert "research use only" in dialog.summary.text()
    rows = pq.read_table(tmp_path / "results" / "results.parquet").to_pylist()
    assert len(rows) == 6 and {r["status"] for r in rows} == {"done"}
    assert all(r["chest-ct-segmentation:lung:volume_ml"] > 0 for r in rows)
    assert all(0 <= r["chest-ct-lesion-classifier:probability"] <= 1 for r in rows)
    assert dialog.open_button.isEnabled()
    dialog.close()
