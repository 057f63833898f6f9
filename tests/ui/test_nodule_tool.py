"""The nodule click tool in the real window on the demo chest CT: a mouse click on the tumour
in the axial view segments it in a worker, as a segment of its own with the research-use
notice; a click inside refines it; Ctrl+Z undoes the refinement; "Malignancy (AI)" shows a
probability with its interval and a Grad-CAM map; the nodule is back after a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt

from tests.conftest import DEMO_CT, REPO
from tests.ui.conftest import open_window, wait_for_volume

REFERENCE = REPO / "resources" / "reference" / "lung2_tumour_label.nii.gz"


def _click(qtbot, view, zyx: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    pos = view.to_widget(float(zyx[1]), float(zyx[2]))
    point = QPoint(round(pos.x()), round(pos.y()))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=point)


def test_nodule_click_tool_in_the_window(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import SimpleITK as sitk

    from medview.viewer.mpr import View

    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(REFERENCE))) > 0
    centre = np.argwhere(ref).mean(axis=0)
    window = open_window(qtbot, tmp_path)
    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock, session = window.segment_dock, window.session
    dock.show()
    # a model run from the Models panel explains where the click model lives
    from medview.inference.manifest import read_manifest

    said: list[str] = []
    window.ai.notify = said.append
    window.ai.run_model(read_manifest(REPO / "models" / "lung-nodule-segmentation"))
    assert said and "click" in said[0]
    dock.nodule_button.setChecked(True)
    assert window.controller.painter is dock.nodule
    axial = window.viewer.views[View.AXIAL]
    window.controller.go_to(View.AXIAL, round(centre[0]))
    _click(qtbot, axial, centre)
    qtbot.waitUntil(
        lambda: session.editor is not None and dock.nodule.value is not None, timeout=20000
    )
    value = dock.nodule.value
    entry = session.editor.entry(value)
    assert entry.segment.name == "lung nodule 1" and entry.segment.finding
    assert "Research use only" in dock.message.text()
    assert "outside the model's domain" in dock.message.text()  # 5 mm slices
    mask = np.asarray(session.editor.labels) == value
    dice = 2 * float((mask & ref).sum()) / float(mask.sum() + ref.sum())
    assert dice > 0.8, dice  # the 55 mm tumour, found in the 1.5-times box
    first = int(mask.sum())
    # a click inside, near the border, takes that part away; Ctrl+Z brings it back
    inside = np.argwhere(mask)
    far = inside[np.argmax(np.linalg.norm((inside - centre) * [5, 0.63, 0.63], axis=1))]
    window.controller.go_to(View.AXIAL, int(far[0]))
    _click(qtbot, axial, far.astype(float))
    qtbot.waitUntil(lambda: session.editor.count(value) != first, timeout=20000)
    assert session.editor.labels[tuple(far)] != value
    assert session.editor.history.done[-1].name == "refine nodule (AI click)"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert session.editor.count(value) == first
    # the malignancy of the selected nodule segment, shown as the AI result
    dock.select(value)
    next(
        b for b in dock.findChildren(type(dock.nodule_button)) if b.text() == "Malignancy (AI)"
    ).click()
    qtbot.waitUntil(lambda: session.classification is not None, timeout=20000)
    result = session.classification
    lo, hi = result.interval
    assert lo <= result.finding_probability <= hi
    assert result.heatmap is not None and float(np.asarray(result.heatmap.array).max()) > 0
    assert "95 % interval" in dock.message.text()
    window.close()
    window.db.close()

    again = open_window(qtbot, tmp_path)  # restarted: the nodule is kept
    try:
        again.open_stack(None, study_uid=again.db.search()[0].study_uid)
        wait_for_volume(qtbot, again)
        qtbot.waitUntil(lambda: again.session.segmentation is not None, timeout=10000)
        kept = again.session.segmentation.segment(value)
        assert kept is not None and kept.name == "lung nodule 1"
        assert (
            kept.algorithm_name.startswith("Lung nodule") and kept.algorithm_type == "SEMIAUTOMATIC"
        )
        assert int((np.asarray(again.session.segmentation.labels.array) == value).sum()) == first
        assert again.session.classification is not None
        assert again.session.classification.interval == (lo, hi)
    finally:
        again.close()
        again.db.close()
