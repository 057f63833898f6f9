"""The Segment Editor in the real window on the demo CT: a brush click and stroke by mouse
events, threshold, keep-largest-island and grow from seeds from the dock's buttons, Ctrl+Z
and Ctrl+Shift+Z, each checked voxel by voxel against numpy, scipy or SimpleITK directly; and
the edited segmentation back after quitting and reopening."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from tests.conftest import DEMO_CT
from tests.ui.conftest import open_window, wait_for_volume


def _button(dock, text: str):  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QPushButton

    return next(b for b in dock.findChildren(QPushButton) if b.text() == text)


def test_segment_editor_in_the_window(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import SimpleITK as sitk
    from scipy import ndimage

    from medview.viewer.mpr import View

    window = open_window(qtbot, tmp_path)
    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock = window.segment_dock
    dock.show()
    dock.raise_()
    session = window.session
    volume = session.volume
    image = np.asarray(volume.array)
    sp = np.asarray(volume.geometry.spacing)[::-1]
    lesion = dock.add_segment("Lesion")
    assert session.segmentation is not None
    assert session.segmentation.segment(lesion).snomed_code == "108369006"

    # a brush click on the axial view: one disc, voxel by voxel
    axial = window.viewer.views[View.AXIAL]
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.controller.painter is not None
    dock.size_mm.setValue(6.0)
    pos = QPoint(axial.width() // 2 - 20, axial.height() // 2 + 10)
    centre = axial._zyx(QPointF(pos))
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=pos)
    z, y, x = np.ogrid[: volume.shape[0], : volume.shape[1], : volume.shape[2]]
    disc = (z == round(centre[0])) & (
        ((y - centre[1]) * sp[1]) ** 2 + ((x - centre[2]) * sp[2]) ** 2 <= 36.0
    )
    labels = session.segmentation.labels.array
    assert np.array_equal(labels == lesion, disc)
    # a drag stroke is one undo step
    steps = len(session._undo)
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=pos + QPoint(0, 30))
    for k in range(1, 6):
        qtbot.mouseMove(axial, pos + QPoint(8 * k, 30))
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=pos + QPoint(40, 30))
    assert len(session._undo) == steps + 1
    assert (session.segmentation.labels.array == lesion).sum() > disc.sum()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(session.segmentation.labels.array == lesion, disc)
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # back to navigating: the brush is off
    assert window.controller.painter is None and not dock.paint_button.isChecked()

    # threshold to a new segment, then keep its largest island (scipy's components)
    lung = dock.add_segment("Lung")
    dock.low.setValue(-1000)
    dock.high.setValue(-400)
    dock.overwrite.setChecked(False)
    _button(dock, "Threshold").click()
    labels = session.segmentation.labels.array
    want = (image >= -1000) & (image <= -400) & ~disc
    assert np.array_equal(labels == lung, want)
    _button(dock, "Keep largest island").click()
    cc, _ = ndimage.label(want, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(cc.ravel())
    sizes[0] = 0
    want = cc == int(np.argmax(sizes))
    assert np.array_equal(session.segmentation.labels.array == lung, want)

    # grow from seeds (lesion disc + a stroke of a background segment), in the worker
    background = dock.add_segment("Other (no code)")
    session.edit(
        lambda e: __import__("medview.segedit.tools", fromlist=["paint"]).paint(
            e, [(round(centre[0]), centre[1] + 40, centre[2] + 40)], 4.0, background
        )
    )
    dock.select(lesion)
    dock.other.setCurrentIndex(dock.other.findData(background))
    from medview.segedit import tools

    plan = tools.seed_plan(session.segment_editor(), [lesion, background])
    _button(dock, "Grow from seeds").click()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=60000)
    # the same watershed, by SimpleITK directly
    region = plan.region
    img = sitk.GetImageFromArray(image[region].astype(np.float32))
    img.SetSpacing(tuple(float(s) for s in volume.geometry.spacing))
    grad = sitk.GradientMagnitudeRecursiveGaussian(img, float(sp.min()))
    grad = sitk.Cast(sitk.RescaleIntensity(grad, 0, 65535), sitk.sitkUInt16)  # 16-bit levels
    seeds = np.isin(plan.current, [lesion, background])
    markers = sitk.GetImageFromArray(np.where(seeds, plan.current, 0).astype(np.uint16))
    markers.CopyInformation(grad)
    ws = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(grad, markers, False, True))
    expected = plan.current.copy()
    free = (plan.current == 0) | seeds
    expected[free] = ws[free]
    assert np.array_equal(session.segmentation.labels.array[region], expected)
    grown = session.segmentation.labels.array.copy()

    # undo everything of the editor, then redo it
    for _ in range(20):
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert session.segmentation is None and window.controller.state.overlay is None
    for _ in range(20):
        qtbot.keyClick(
            window,
            Qt.Key.Key_Z,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    assert np.array_equal(session.segmentation.labels.array, grown)
    window.close()  # quits: the edit not yet kept by the timer is kept now
    window.db.close()

    again = open_window(qtbot, tmp_path)  # restarted
    try:
        again.open_stack(
            again.db.search()[0].study_uid and None, study_uid=again.db.search()[0].study_uid
        )
        wait_for_volume(qtbot, again)
        qtbot.waitUntil(lambda: again.session.segmentation is not None, timeout=10000)
        assert np.array_equal(again.session.segmentation.labels.array, grown)
        names = [e.segment.name for e in again.session.editor.table]
        assert names == ["Lesion", "Lung", "Other (no code)"]
        assert again.segment_dock.table.rowCount() == 3
    finally:
        again.close()
        again.db.close()


def test_fill_between_slices_and_refusals_in_the_window(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from scipy import ndimage

    from medview.segedit import tools
    from medview.viewer.mpr import View

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock, session = window.segment_dock, window.session
    value = dock.add_segment("Nodule")
    _button(dock, "Fill between slices").click()
    assert "empty" in dock.message.text()  # refused, with the reason
    session.edit(tools.paint, [(20, 250.0, 250.0)], 6.0, value)
    session.edit(tools.paint, [(26, 256.0, 244.0)], 12.0, value)
    drawn = session.segmentation.labels.array == value
    window.controller.set_active(window.viewer.views[View.AXIAL])
    _button(dock, "Fill between slices").click()
    assert dock.message.text() == ""
    sp = np.asarray(session.volume.geometry.spacing)[::-1][1:]

    def sdf(m: np.ndarray) -> np.ndarray:
        inside = ndimage.distance_transform_edt(m, sampling=sp)
        return ndimage.distance_transform_edt(~m, sampling=sp) - inside

    d0, d1 = sdf(drawn[20]), sdf(drawn[26])
    labels = session.segmentation.labels.array
    for k in range(21, 26):
        blend = (1 - (k - 20) / 6) * d0 + (k - 20) / 6 * d1
        differ = (labels[k] == value) != (blend < 0)
        assert np.all(np.abs(blend[differ]) < 1e-6)
    # a locked segment: the brush refuses it, the table says so, nothing changes
    before = labels.copy()
    row = next(
        r
        for r in range(dock.table.rowCount())
        if dock.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == value
    )
    dock.table.item(row, 4).setCheckState(Qt.CheckState.Checked)
    assert session.segment_editor().entry(value).locked
    _button(dock, "Clear").click()
    assert "locked" in dock.message.text()
    assert np.array_equal(session.segmentation.labels.array, before)


def test_every_tool_button_reaches_its_tool(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """Each button, on a drawn segment: it edits (one more undo step) or says why not, and
    never mixes up its arguments."""
    from medview.segedit import tools

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock, session = window.segment_dock, window.session
    other = dock.add_segment("Other (no code)")
    value = dock.add_segment("Lesion")
    session.edit(tools.paint, [(30, 250.0, 250.0), (31, 250.0, 250.0)], 8.0, value, axis=None)
    session.edit(tools.paint, [(30, 300.0, 300.0)], 4.0, value)
    session.edit(tools.paint, [(30, 250.0, 300.0)], 4.0, other)
    dock.other.setCurrentIndex(dock.other.findData(other))
    for text in (
        "Keep largest island",
        "Remove islands under",
        "Grow by",
        "Shrink by",
        "Hollow",
        "Invert",
        "Split islands",
        "Merge in",
        "Clear",
        "Threshold",
    ):
        dock.select(value)
        steps = len(session._undo)
        _button(dock, text).click()
        said = dock.message.text()
        assert "there is no segment" not in said and "unknown" not in said, (text, said)
        assert len(session._undo) == steps + 1 or said, text


def test_intensity_range_preview_tints_exactly_the_range(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    import time

    from medview.viewer.mpr import View

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock = window.segment_dock
    dock.add_segment("Lesion")
    axial = window.viewer.views[View.AXIAL]
    plain = axial.rendered().copy()
    dock.low.setValue(-400)
    dock.high.setValue(400)
    dock.limit.setChecked(True)
    t = time.perf_counter()
    tinted = axial.rendered()
    took = time.perf_counter() - t
    plane = window.controller.state.plane(View.AXIAL)
    inside = (plane >= -400) & (plane <= 400)
    assert np.array_equal(tinted != plain, inside & (tinted != plain))
    assert (tinted != plain).sum() > 0.9 * inside.sum()  # every in-range pixel is tinted
    assert took < 0.03
    dock.limit.setChecked(False)
    assert np.array_equal(axial.rendered(), plain)


def test_scissors_by_mouse_cut_through_the_volume(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from medview.segedit import tools
    from medview.viewer.mpr import View

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock, session = window.segment_dock, window.session
    value = dock.add_segment("Lung")
    session.edit(tools.threshold, value, -1000, -400)
    before = session.segmentation.labels.array == value
    axial = window.viewer.views[View.AXIAL]
    dock.scissors_button.setChecked(True)
    c = QPoint(axial.width() // 2, axial.height() // 2)
    corners = [c + QPoint(-60, -40), c + QPoint(60, -40), c + QPoint(60, 40), c + QPoint(-60, 40)]
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=corners[0])
    for p in corners[1:]:
        qtbot.mouseMove(axial, p)
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=corners[-1])
    outline = [tuple(axial._zyx(QPointF(p))) for p in corners]
    from medview.core.volume import Volume
    from medview.segedit.editor import SegmentationEditor

    # the same cut by the tool directly, on a copy
    ref = SegmentationEditor(session.volume)
    ref.table = session.editor.table
    ref.labels[...] = np.where(before, value, 0)
    ref._recount()
    tools.scissors(ref, value, outline, axis=0)
    assert np.array_equal(session.segmentation.labels.array == value, ref.labels == value)
    assert (session.segmentation.labels.array == value).sum() < before.sum()
    assert isinstance(session.segmentation.labels, Volume)


def test_renaming_and_recolouring_are_undoable(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    dock, session = window.segment_dock, window.session
    value = dock.add_segment("Nodule")
    dock.table.item(0, 1).setText("Nodule RUL")
    dock.set_colour(value, (10, 20, 30))
    seg = session.segmentation.segment(value)
    assert (seg.name, seg.color) == ("Nodule RUL", (10, 20, 30))
    assert window.controller.state.overlay.colors[value] == (10, 20, 30)
    session.undo()
    session.undo()
    seg = session.segmentation.segment(value)
    assert seg.name == "Nodule" and seg.color != (10, 20, 30)
    # what it is, changed after it was drawn: the code follows, and a typed name stays
    dock.set_kind(value, "Cyst")
    seg = session.segmentation.segment(value)
    assert (seg.name, seg.snomed_code, seg.snomed_meaning) == ("Cyst", "441457006", "Cyst")
    assert "441457006" in dock.table.item(0, 1).toolTip()
    dock.table.item(0, 1).setText("Cyst, left lobe")
    dock.set_kind(value, "Lymph node")
    seg = session.segmentation.segment(value)
    assert (seg.name, seg.snomed_code, seg.finding) == ("Cyst, left lobe", "59441001", False)
    assert session.undo() == "change type"
    assert session.segmentation.segment(value).snomed_code == "441457006"


def test_an_edit_is_back_when_its_series_is_opened_again_at_once(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """Opened again before the autosave timer fired (or while its write runs): the read waits
    for the write, so the edit is shown, not the state before it."""
    from medview.segedit import tools

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    session = window.session
    value = window.segment_dock.add_segment("Lesion")
    session.edit(tools.paint, [(30, 256.0, 256.0)], 10.0, value)
    edited = session.segmentation.labels.array.copy()
    assert window.autosave.isActive()  # not kept yet
    window.opener.open_series(window.current_series)
    qtbot.waitUntil(lambda: not window.runner.running and not window.keeper.running, timeout=30000)
    assert session.segmentation is not None
    assert np.array_equal(session.segmentation.labels.array, edited)


def test_the_risk_panel_sees_each_edit(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """The risk panel's segment figures follow the edits (live, not a recount on demand)."""
    from medview.segedit import tools

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    session = window.session
    value = window.segment_dock.add_segment("Lesion")
    session.edit(tools.paint, [(30, 256.0, 256.0)], 10.0, value, axis=None)
    offered = {s.name: s.volume_ml for s in window.risk_panel.segment_provider()}
    voxel_ml = float(np.prod(session.volume.geometry.spacing)) / 1000.0
    grown = int((session.segmentation.labels.array == value).sum())
    assert offered["Lesion"] == pytest.approx(grown * voxel_ml)
    session.edit(tools.paint, [(30, 256.0, 256.0)], 4.0, value, axis=None, erase=True)
    left = int((session.segmentation.labels.array == value).sum())
    assert 0 < left < grown
    offered = {s.name: s.volume_ml for s in window.risk_panel.segment_provider()}
    assert offered["Lesion"] == pytest.approx(left * voxel_ml)
