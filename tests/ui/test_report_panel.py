"""The Report dock in the window: a template starts the report, typing is kept, a field is
inserted at the cursor, refused text says why, "Sign" makes it final and read-only, an
addendum is added, and after a restart the signed report is back; a de-identified export
leaves the narrative out unless confirmed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import require_tool, write_ct
from tests.ui.conftest import open_window, wait_for_volume


def _series(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(folder)])
    wait_for_volume(qtbot, window)


def test_report_dock_writes_signs_and_keeps_the_report(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.core.results import Segment, Segmentation
    from medview.core.volume import Volume

    write_ct(tmp_path / "ct", n=8, rows=32, cols=32)
    home = tmp_path / "home"
    home.mkdir()
    window = open_window(qtbot, home)
    _series(qtbot, window, tmp_path / "ct")
    volume = window.session.volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:5, 8:20, 8:16] = 1
    window.session.accept(
        Segmentation(Volume(labels, volume.geometry), (Segment(1, "lesion", finding=True),))
    )
    dock = window.report_dock
    panel = dock.panel
    assert not panel.sign_button.isEnabled() and "No report" in panel.status.text()
    panel.template_box.setCurrentIndex(panel.template_box.findData("generic"))
    panel.start()
    report = window.session.report
    assert report is not None and report.template_id == "generic"
    assert panel.editors["technique"].toPlainText().startswith("CT")
    # typing is kept after a pause; a field goes in at the cursor
    findings = panel.editors["findings"]
    findings.setFocus()
    findings.setPlainText("Lesion: ")
    findings.moveCursor(findings.textCursor().MoveOperation.End)
    panel._last_editor = findings
    qtbot.waitUntil(lambda: panel.values is not None)  # measured in a worker
    panel._fill_fields()
    labels_in_menu = [a.text() for a in panel.field_menu.actions()]
    assert any(t.startswith("{{lesion:1}}") for t in labels_in_menu), labels_in_menu
    next(a for a in panel.field_menu.actions() if a.text().startswith("{{lesion:1}}")).trigger()
    assert findings.toPlainText() == "Lesion: {{lesion:1}}"
    assert window.session.report.sections["findings"] == "Lesion: {{lesion:1}}"
    # a control character is refused with the reason, and nothing is signed meanwhile
    panel.editors["impression"].setPlainText("bad\x07text")
    assert "U+0007" in panel.problem.text()
    # typing elsewhere keeps the refused text in its editor, to be corrected
    panel.editors["clinical"].setPlainText("Cough.")
    assert panel.editors["impression"].toPlainText() == "bad\x07text"
    assert window.session.report.sections["clinical"] == "Cough."
    panel.settings.setValue("reader/name", "Dr Ada Reader")
    panel.settings.setValue("reader/credentials", "MD")
    assert not panel.sign(confirm=False)
    panel.editors["impression"].setPlainText("1. Lesion {{lesion:1}}")
    assert panel.problem.text() == ""
    assert panel.sign(confirm=False)
    qtbot.waitUntil(lambda: window.session.report.final)  # the fields measured in a worker
    report = window.session.report
    assert report.final and "{{" not in report.sections["findings"]
    assert "x" in report.sections["findings"] and "mL" in report.sections["findings"]
    assert all(e.isReadOnly() for e in panel.editors.values())
    assert "FINAL" in panel.status.text() and panel.addendum_button.isEnabled()
    assert panel.add_addendum("Compared with outside images: stable.")
    assert "stable" in panel.addenda.toPlainText()
    signed = dict(report.sections)
    window.session.keep.wait()
    window.close()
    window.db.close()

    # restart: the signed report comes back, read-only, with its addendum
    again = open_window(qtbot, home)
    again.open_stack(*_first_stack(again))
    wait_for_volume(qtbot, again)
    qtbot.waitUntil(lambda: again.session.report is not None)
    kept = again.session.report
    assert kept.final and kept.sections == signed and len(kept.addenda) == 1
    p2 = again.report_dock.panel
    assert p2.editors["findings"].toPlainText() == signed["findings"]
    assert p2.editors["findings"].isReadOnly() and "stable" in p2.addenda.toPlainText()

    # a de-identified export from the window: the narrative only when confirmed
    task = again.report.export_report(
        deidentify=True, out_dir=str(tmp_path / "out"), narrative_confirmed=False
    )
    assert task is not None
    qtbot.waitUntil(lambda: again.session.last_export is not None, timeout=60000)
    bundle = again.session.last_export
    assert bundle is not None and "report-sr.dcm" not in bundle.files
    exe = require_tool("pdftotext")
    text = subprocess.run(
        [exe, str(bundle.path / "report.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert "stable" not in text and "not de-identified" in " ".join(text.split())
    again.close()
    again.db.close()


def _first_stack(window) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    (study,) = window.db.search()
    (row,) = window.db.stack_rows(study.study_uid)
    return row.series_uid, row.key
