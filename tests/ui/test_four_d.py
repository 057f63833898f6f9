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
