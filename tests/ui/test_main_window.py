"""The workstation window driven as a person would: drop, scroll, window, click."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDropEvent

from medview.io.scan import scan
from medview.viewer.mpr import View
from tests.conftest import DEMO_CT, write_ct
from tests.ui.conftest import StallProbe, scroll, wait_for_volume


def drop(window, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_drop_folder_fills_browser_and_shows_image(qtbot, window, tmp_path: Path) -> None:
    write_ct(tmp_path / "ct", n=12, rows=64, cols=64, patient_name="Drop^Test")
    drop(window, [tmp_path / "ct"])
    wait_for_volume(qtbot, window)
    items = window.browser.series_items()
    assert len(items) == 1 and "synthetic" in items[0].text(0)
    state = window.controller.state
    assert state.volume.shape == (12, 64, 64)
    axial = window.viewer.views[View.AXIAL]
    pixels = axial.rendered()
    assert pixels is not None and pixels.shape == (64, 64) and len(np.unique(pixels)) > 2
    assert axial.isVisible() and window.viewer.views[View.SAGITTAL].isVisible()


def test_non_dicom_drop_shows_notice(qtbot, window, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    drop(window, [tmp_path / "notes.txt"])
    qtbot.waitUntil(lambda: window.notices.count() > 0 and not window.runner.running, timeout=10000)
    texts = [window.notices.item(i).text() for i in range(window.notices.count())]
    assert any("not a DICOM file" in t for t in texts)
    assert window.notice_dock.isVisible() and window.controller.state is None


def _open_demo(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    drop(window, [DEMO_CT])
    wait_for_volume(qtbot, window)


def test_scroll_and_keys_change_slice(qtbot, window) -> None:
    _open_demo(qtbot, window)
    axial = window.viewer.views[View.AXIAL]
    state = window.controller.state
    k0 = state.slice_index(View.AXIAL)
    scroll(axial)
    assert state.slice_index(View.AXIAL) == k0 + 1
    window.controller.set_active(axial)
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert state.slice_index(View.AXIAL) == 60
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert state.slice_index(View.AXIAL) == 50
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert state.slice_index(View.AXIAL) == 0


def test_right_drag_changes_window_and_pixels(qtbot, window) -> None:
    _open_demo(qtbot, window)
    axial = window.viewer.views[View.AXIAL]
    before_window = window.controller.state.window
    before = axial.rendered().copy()
    centre = axial.rect().center()
    qtbot.mousePress(axial, Qt.MouseButton.RightButton, pos=centre)
    qtbot.mouseMove(axial, centre + QPoint(60, 40))
    qtbot.mouseRelease(axial, Qt.MouseButton.RightButton, pos=centre + QPoint(60, 40))
    after_window = window.controller.state.window
    assert after_window.width > before_window.width
    assert after_window.center < before_window.center
    assert not np.array_equal(before, axial.rendered())


def test_presets_and_invert(qtbot, window) -> None:
    _open_demo(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.controller.state.window.width == 80  # brain
    qtbot.keyClick(window, Qt.Key.Key_8)
    assert window.controller.state.window.center == 400  # bone
    grey = window.viewer.views[View.AXIAL].rendered().copy()
    qtbot.keyClick(window, Qt.Key.Key_I)
    inverted = window.viewer.views[View.AXIAL].rendered()
    assert np.array_equal((grey & 0xFF) + (inverted & 0xFF), np.full(grey.shape, 255))


def test_click_moves_crosshair_in_other_views(qtbot, window) -> None:
    _open_demo(qtbot, window)
    axial = window.viewer.views[View.AXIAL]
    state = window.controller.state
    target = axial.to_widget(100.0, 400.0)  # row 100 (anterior), column 400 (patient left)
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=target.toPoint())
    assert abs(state.slice_index(View.CORONAL) - 100) <= 1
    assert abs(state.slice_index(View.SAGITTAL) - 400) <= 1
    _row, col = state.screen_point(View.CORONAL)
    assert abs(col - 400) <= 1  # same left-right position in the coronal view


def test_layouts_and_cine(qtbot, window) -> None:
    _open_demo(qtbot, window)
    window.tools.set_layout("1x1")
    assert [v.view for v in window.viewer.visible_views()] == [View.AXIAL]
    window.tools.set_layout("2x2")  # the three MPR views and the 3-D view
    assert len(window.viewer.visible_views()) == 3 and window.viewer.showing_3d()
    state = window.controller.state
    window.controller.set_active(window.viewer.views[View.AXIAL])
    k0 = state.slice_index(View.AXIAL)
    window.tools.cine_fps.setValue(50)
    qtbot.keyClick(window, Qt.Key.Key_C)
    qtbot.wait(300)
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert state.slice_index(View.AXIAL) != k0 and not window.tools.cine.isActive()


def test_gui_thread_never_stalls_during_import_and_load(qtbot, window, tmp_path: Path) -> None:
    """A 10 ms timer measures the longest gap between GUI-thread ticks while a 300-file import
    and a compressed load run in the background."""
    write_ct(tmp_path / "big", n=300, rows=64, cols=64, seed="stall")
    with StallProbe() as probe:
        drop(window, [tmp_path / "big", DEMO_CT])
        wait_for_volume(qtbot, window, timeout=30000)
    worst_ms = probe.worst_ms
    print(
        f"\nworst GUI-thread stall during import + load: {worst_ms:.0f} ms "
        f"over {len(probe.gaps)} ticks"
    )
    assert worst_ms < 250  # hard ceiling for CI noise; the figure is reported in the README


@pytest.mark.parametrize("open_first", [True])
def test_cancel_button_stops_import(qtbot, window, tmp_path: Path, open_first: bool) -> None:
    for i in range(6):
        write_ct(tmp_path / f"s{i}", n=100, rows=16, cols=16, seed=f"cancel{i}")
    task = window.import_paths([tmp_path], open_first=open_first)
    qtbot.waitUntil(lambda: window.cancel_button.isVisible(), timeout=5000)
    window.cancel_button.click()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=10000)
    assert task.cancel.cancelled and not window.cancel_button.isVisible()


def test_browser_shows_thumbnails(qtbot, window, tmp_path: Path) -> None:
    write_ct(tmp_path / "a", n=5, rows=32, cols=32, seed="ta")
    drop(window, [tmp_path / "a", DEMO_CT])
    wait_for_volume(qtbot, window)
    qtbot.waitUntil(
        lambda: all(not i.icon(0).isNull() for i in window.browser.series_items()), timeout=10000
    )
    assert len(window.browser.series_items()) == 2


def test_preferences_presets_and_recent(qtbot, window) -> None:
    from medview.ui.preferences import PreferencesDialog

    _open_demo(qtbot, window)
    dialog = PreferencesDialog(window.settings, window)
    dialog.table.item(0, 0).setText("My brain")
    dialog.table.item(0, 1).setText("35")
    dialog.table.item(0, 2).setText("90")
    dialog.layout_box.setCurrentText("2x2")
    dialog.accept()
    window.apply_preferences()
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.controller.state.window.center == 35
    assert window.controller.state.window.width == 90
    assert window.settings.value("default_layout") == "2x2"
    qtbot.waitUntil(lambda: not window.runner.running, timeout=10000)
    window.opener.fill_recent()
    labels = [a.text() for a in window.opener.recent_menu.actions()]
    assert len(labels) == 1 and "CT chest" in labels[0]
    assert "Demo" not in str(window.settings.value("recent_studies"))  # UIDs only


def test_side_by_side_scrolls_together(qtbot, window, tmp_path: Path) -> None:
    """Two series of one frame of reference (different spacing) stay at the same position."""
    import pydicom

    write_ct(
        tmp_path / "thin",
        n=20,
        rows=32,
        cols=32,
        spacing=(1.0, 1.0, 1.0),
        seed="thin",
        origin=(0, 0, 0),
    )
    write_ct(
        tmp_path / "thick",
        n=5,
        rows=32,
        cols=32,
        spacing=(1.0, 1.0, 4.0),
        seed="thick",
        origin=(0, 0, 0),
        series_number=2,
    )
    for_uid = pydicom.dcmread(next((tmp_path / "thin").glob("*.dcm"))).FrameOfReferenceUID
    for f in (tmp_path / "thick").glob("*.dcm"):  # same patient frame of reference
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = for_uid
        ds.save_as(f)
    drop(window, [tmp_path / "thin"])
    wait_for_volume(qtbot, window)
    thick = scan([tmp_path / "thick"]).series[0]
    window.open_compare(thick)
    qtbot.waitUntil(
        lambda: window.compare_controller.state is not None and not window.runner.running,
        timeout=10000,
    )
    assert window.compare_viewer.isVisible() and window.sync.linked()
    window.controller.go_to(View.AXIAL, 12)  # z = 12 mm in the thin series
    assert window.compare_controller.state.slice_index(View.AXIAL) == 3  # 12 mm / 4 mm
    window.compare_controller.go_to(View.AXIAL, 1)  # and back the other way
    assert window.controller.state.slice_index(View.AXIAL) == 4
    window.close_compare()
    assert not window.compare_viewer.isVisible()


def test_drag_series_from_browser_into_viewport(qtbot, window, tmp_path: Path) -> None:
    from medview.ui.browser import series_mime

    write_ct(tmp_path / "a", n=4, rows=16, cols=16, seed="dragA", patient_id="PA")
    write_ct(tmp_path / "b", n=6, rows=16, cols=16, seed="dragB", patient_id="PB")
    drop(window, [tmp_path / "a", tmp_path / "b"])
    wait_for_volume(qtbot, window)
    items = window.browser.series_items()
    target = next(
        i for i in items if i.data(0, Qt.ItemDataRole.UserRole + 1).key != window.current_series.key
    )
    series = target.data(0, Qt.ItemDataRole.UserRole + 1)  # a StackRow summary
    mime = window.browser.tree.mimeData([target])
    assert mime.hasFormat("application/x-medview-series")
    axial = window.viewer.views[View.AXIAL]
    payload = series_mime(series)  # QDropEvent does not own its mime data: keep it alive
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        payload,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    axial.dropEvent(event)
    qtbot.waitUntil(
        lambda: (
            window.controller.state.volume.shape[0] == series.slices and not window.runner.running
        ),
        timeout=10000,
    )
    assert window.current_series.key == series.key


def test_browser_fills_during_import(qtbot, window, tmp_path: Path) -> None:
    for i in range(8):
        write_ct(tmp_path / f"s{i}", n=500, rows=8, cols=8, seed=f"live{i}", patient_id=f"L{i}")
    seen: list[int] = []
    window.browser.tree.model().rowsInserted.connect(
        lambda *a: seen.append(window.runner.running != [])
    )
    window.import_paths([str(tmp_path)], open_first=False)
    qtbot.waitUntil(lambda: not window.runner.running, timeout=30000)
    assert any(seen)  # rows appeared while the import was still running
    assert window.browser.tree.topLevelItemCount() == 8


def test_slab_thickness_from_toolbar(qtbot, window) -> None:
    _open_demo(qtbot, window)
    state = window.controller.state
    window.controller.go_to(View.CORONAL, 300)
    plain = state.plane(View.CORONAL).copy()
    coronal = window.viewer.views[View.CORONAL]
    qtbot.mouseClick(coronal, Qt.MouseButton.LeftButton, pos=coronal.rect().center())
    window.controller.go_to(View.CORONAL, 300)
    window.tools.slab_mm.setValue(20.0)
    window.tools.slab_mode.setCurrentIndex(1)  # MIP on the active (coronal) view only
    assert state.slab(View.CORONAL) == (20.0, "mip")
    assert state.slab(View.AXIAL) == (0.0, "mip")
    mip = state.plane(View.CORONAL)
    assert (mip >= plain).all() and (mip > plain).any()
    axial = window.viewer.views[View.AXIAL]
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=axial.rect().center())
    assert window.tools.slab_mode.currentIndex() == 0  # the toolbar follows the active view
    window.tools.slab_mode.setCurrentIndex(2)
    window.tools.slab_mm.setValue(5.0)
    assert state.slab(View.AXIAL) == (5.0, "minip") and state.slab(View.CORONAL)[0] == 20.0


def test_preferences_choose_data_folder(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    from medview.core.paths import chosen_data_dir
    from medview.ui.preferences import PreferencesDialog

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    dialog = PreferencesDialog(window.settings, window)
    dialog.set_data_folder(str(tmp_path / "new-home"))
    dialog.accept()
    assert chosen_data_dir() == tmp_path / "new-home"


def test_keys_typed_in_a_form_never_reach_the_viewer(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    _open_demo(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_4)  # lung preset from the viewer
    before = window.controller.state.window
    tool = window.controller.tool
    window.risk_dock.raise_()
    window.risk_panel.select("framingham-chd-10y")
    editor = next(
        r.editor for r in window.risk_panel._rows.values() if hasattr(r.editor, "setText")
    )
    editor.setFocus()
    qtbot.keyClicks(editor, "18")  # digits: presets 1 and 8 in the viewer
    qtbot.keyClicks(editor, "m")  # a tool key in the viewer
    assert editor.text().endswith("18m")
    assert window.controller.state.window == before
    assert window.controller.tool is tool
    # a drop-down field of the form (sex, smoker ...) and the study browser's list
    combo = next(
        r.editor for r in window.risk_panel._rows.values() if not hasattr(r.editor, "setText")
    )
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_1)
    qtbot.keyClick(combo, Qt.Key.Key_8)
    window.browser.tree.setFocus()
    k = window.controller.state.slice_index(View.AXIAL)
    qtbot.keyClick(window.browser.tree, Qt.Key.Key_Down)
    assert window.controller.state.window == before
    assert window.controller.state.slice_index(View.AXIAL) == k


def test_f1_lists_every_shortcut_of_the_menus(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QKeySequence

    rows = window.shortcut_rows()
    listed = {keys for _, _, keys in rows}
    actions = [a for a in window.findChildren(QAction) if a.shortcuts()]
    assert len(rows) >= 30
    for act in actions:
        keys = " / ".join(
            k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts()
        )
        assert keys in listed, act.text()
    from medview.ui.help import shortcut_sheet

    sheet = shortcut_sheet(rows)
    for needed in ("Shift+R", "Ctrl+K", "Esc", "PgDown", "Ctrl+Shift+S"):
        assert needed in sheet, needed


def test_r_resets_zoom_and_pan_only(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    _open_demo(qtbot, window)
    state = window.controller.state
    axial = window.viewer.views[View.AXIAL]
    qtbot.keyClick(window, Qt.Key.Key_End)
    qtbot.keyClick(window, Qt.Key.Key_4)
    slice_, level = state.slice_index(View.AXIAL), state.window
    axial.zoom, axial.pan = 3.0, QPoint(40, 20)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert axial.zoom == 1.0 and axial.pan == QPoint(0, 0)
    assert state.slice_index(View.AXIAL) == slice_ and state.window == level
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    state = window.controller.state
    assert state.slice_index(View.AXIAL) != slice_ or state.window != level


def test_opens_on_the_models_tab_and_dialogs_remember_folders(
    qtbot, window, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QFileDialog

    assert not window.models_dock.visibleRegion().isEmpty()  # the Models tab is in front
    assert window.pacs_dock.visibleRegion().isEmpty()
    asked: list[str] = []
    chosen = tmp_path / "exports"
    chosen.mkdir()

    def fake(parent, caption, folder="", *rest):  # type: ignore[no-untyped-def]
        asked.append(folder)
        return str(chosen)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(fake))
    assert window.report.ask_export_dir() == str(chosen)
    assert window.report.ask_export_dir() == str(chosen)
    assert asked[1] == str(chosen)  # the second time it opens where the first ended
    window.settings.sync()
    from PySide6.QtCore import QSettings

    kept = QSettings(window.settings.fileName(), QSettings.Format.IniFormat)
    assert kept.value("dialogs/export") == str(chosen)  # and after a restart
