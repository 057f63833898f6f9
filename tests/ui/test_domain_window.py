"""A model run from the window on a series outside its domain: refused with the reasons,
or run anyway and marked in the panel and the export."""

from __future__ import annotations

from medview.inference.registry import find_model
from tests.conftest import DEMO_MR
from tests.ui.conftest import wait_for_volume


def test_window_refuses_unless_the_reader_runs_anyway(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(DEMO_MR)])
    wait_for_volume(qtbot, window)
    chest = find_model("chest-ct-segmentation")
    window.ai.run_anyway_answer = False
    assert window.run_model(chest, "cpu") is None
    notices = [window.notices.item(i).text() for i in range(window.notices.count())]
    assert any("was not run" in n and "made for CT" in n for n in notices)
    window.ai.run_anyway_answer = True
    assert window.run_model(chest, "cpu") is not None
    qtbot.waitUntil(lambda: not window.inference.running, timeout=120000)
    result = window.session.segmentation
    assert result.notes[0].startswith("outside the model's domain")
    assert "outside the model's domain" in window.models_panel.provenance.text()
    content = window.session.export_content()
    assert content.segmentation is not None
    assert content.segmentation.notes[0].startswith("outside")
