"""A 4-D series in the window: its volumes are stepped through with Ctrl+Down / Ctrl+Up,
keeping slice, window and zoom, with the volume named in the corner text (real GE fMRI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from medview.viewer.mpr import View
from tests.conftest import extract_realdata
from tests.ui.conftest import wait_for_volume


def test_step_through_the_volumes_of_a_real_fmri_run(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = extract_realdata(("dcm_qa_nih",), tmp_path)
    window.import_paths([str(data / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004")])
    wait_for_volume(qtbot, window)
    first = window.current_series
    assert first.volume_label.startswith("volume 1 of 10")
    assert window.controller.info["volume"] == first.volume_label
    window.controller.go_to(View.AXIAL, 7)
    qtbot.keyClick(window, Qt.Key.Key_2)
    state = window.controller.state
    before = (state.slice_index(View.AXIAL), state.window, state.volume.array.copy())
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.current_series.key != first.key, timeout=20000)
    wait_for_volume(qtbot, window)
    state = window.controller.state
    assert window.current_series.volume_label.startswith("volume 2 of 10")
    assert state.slice_index(View.AXIAL) == before[0] and state.window == before[1]
    assert not np.array_equal(state.volume.array, before[2])  # another time point
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.current_series.key == first.key, timeout=20000)
    wait_for_volume(qtbot, window)
    # the volume slider and cine over volumes
    assert window.volume_slider.isVisible() and window.volume_slider.maximum() == 10
    assert window.volume_slider.value() == 1
    window.volume_slider.setValue(5)
    qtbot.waitUntil(
        lambda: window.current_series.volume_label.startswith("volume 5 of 10"), timeout=20000
    )
    assert window.volume_text.text().strip() == "Volume 5/10"
    assert window.controller.state.slice_index(View.AXIAL) == before[0]
    window.tools.cine_over.setCurrentIndex(1)
    window.tools.cine_fps.setValue(30)
    seen: set[str] = set()
    window.tools.toggle_cine()
    qtbot.waitUntil(
        lambda: seen.add(window.current_series.key) or len(seen) == 10, timeout=30000
    )  # every volume in turn, wrapping round
    window.tools.toggle_cine()
    assert not window.tools.cine.isActive()
    # volumes lately shown come from the cache: stepping back is at once
    shown = window.current_series.key
    task = window.step_volume(-1, wrap=True)
    assert task is None and window.current_series.key != shown


def test_a_series_of_one_volume_hides_the_volume_slider(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = extract_realdata(("dcm_qa_12bit",), tmp_path)
    window.import_paths([str(data / "dcm_qa_12bit" / "In")])
    wait_for_volume(qtbot, window)
    assert not window.volume_slider.isVisible()
    assert window.step_volume(1) is None


def test_browser_shows_a_4d_series_as_one_row(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = extract_realdata(("dcm_qa_nih",), tmp_path)
    window.import_paths([str(data / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004")])
    wait_for_volume(qtbot, window)
    study = window.browser.tree.topLevelItem(0).child(0)
    assert study.childCount() == 1  # one row for the series
    head = study.child(0)
    assert head.text(0).startswith("4  4-D: 64x64x15 x 10  Axial EPI-FMRI")
    assert "varies: acquisition order" in head.toolTip(0)
    assert head.text(3) == "150"
    assert head.childCount() == 10 and not head.isExpanded()
    assert head.child(2).text(0).startswith("Volume 3 of 10")
    window.browser._activated(head.child(2))  # a volume row opens that volume
    qtbot.waitUntil(
        lambda: window.current_series.volume_label.startswith("volume 3 of 10"), timeout=20000
    )
