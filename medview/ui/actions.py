"""The window's menus, toolbars and keyboard shortcuts, and the guard that keeps plain-key
shortcuts out of forms. Each action calls a window (or panel) operation; none holds logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QToolBar, QWidget

from medview.viewer.annotations import Kind

if TYPE_CHECKING:
    from medview.ui.main_window import MainWindow


def add_action(
    w: MainWindow,
    menu: Any,
    text: str,
    slot: Callable[..., Any],
    shortcut: str | None = None,
    checkable: bool = False,
) -> QAction:
    act = QAction(text, w)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
    act.setCheckable(checkable)
    act.triggered.connect(slot)
    menu.addAction(act)
    w.addAction(act)
    return act


def build_menus(w: MainWindow) -> None:
    """File, View, Navigate, Tools and Help menus, the view and tools toolbars."""
    from medview.ui import batch_actions  # the cohort dialog is built when it is asked for

    a = add_action
    report, tools, opener = w.report, w.tools, w.opener
    mb = w.menuBar()
    f = mb.addMenu("&File")
    a(w, f, "Open file…", opener.open_files_dialog, "Ctrl+O")
    a(w, f, "Open folder…", opener.open_folder_dialog, "Ctrl+Shift+O")
    opener.recent_menu = f.addMenu("Open recent")
    opener.recent_menu.aboutToShow.connect(opener.fill_recent)
    f.addSeparator()
    a(w, f, "Add key image", report.add_key_image, "Ctrl+K")
    a(w, f, "Export report…", lambda: report.export_report(), "Ctrl+E")
    a(w, f, "Export de-identified copy…", lambda: report.export_report(deidentify=True))
    a(w, f, "Send to PACS…", lambda: report.send_to_pacs())
    a(w, f, "PACS nodes…", lambda: w.pacs_panel.edit_nodes())
    f.addSeparator()
    a(w, f, "Save reading as pipeline…", lambda: batch_actions.save_reading_as_pipeline(w))
    a(w, f, "Run on many studies…", lambda: batch_actions.run_on_many_studies(w))
    f.addSeparator()
    a(w, f, "Preferences…", w.show_preferences, "Ctrl+,")
    f.addSeparator()
    a(w, f, "Quit", w.close, "Ctrl+Q")
    v = mb.addMenu("&View")
    tb = QToolBar("View", w)
    tb.setObjectName("viewbar")
    w.addToolBar(tb)
    for name, key in (("1x1", "Ctrl+1"), ("1x3", "Ctrl+3"), ("2x2", "Ctrl+4"), ("3d", "Ctrl+5")):
        text = "Layout 3-D" if name == "3d" else f"Layout {name}"
        tb.addAction(a(w, v, text, lambda _=False, n=name: tools.set_layout(n), key))
    a(w, v, "Swap the active view with the 3-D view", w.viewer.swap_3d, "V")
    v.addSeparator()
    a(w, v, "Compare: open selected series beside", w.compare_selected, "Ctrl+B")
    a(w, v, "Close comparison", w.close_compare)
    w.sync_action = a(w, v, "Synchronise comparison", w.toggle_sync, checkable=True)
    w.sync_action.setChecked(True)
    v.addSeparator()
    tools.preset_menu = v.addMenu("Window presets")
    for i in range(9):
        preset = lambda _=False, k=i: tools.apply_preset(k)  # noqa: E731
        a(w, tools.preset_menu, f"Preset {i + 1}", preset, str(i + 1))
    tools.preset_menu.aboutToShow.connect(tools.label_presets)
    a(w, v, "Invert", w.controller.toggle_invert, "I")
    a(w, v, "Reset zoom and pan", tools.fit_views, "R")
    a(w, v, "Reset view (slices, window, zoom)", tools.reset_views, "Shift+R")
    a(w, v, "Fit to window", tools.fit_views, "F")
    a(w, v, "Corner annotations", w.controller.toggle_annotations, "Ctrl+T")
    v.addSeparator()
    tools.cine_action = a(w, v, "Cine", tools.toggle_cine, "C", checkable=True)
    slab = v.addMenu("Thick slab (thickness in the toolbar)")
    for index, label in enumerate(("Off", "MIP", "MinIP")):
        a(w, slab, label, lambda _=False, i=index: tools.slab_mode.setCurrentIndex(i))
    tb.addSeparator()
    tb.addAction(tools.cine_action)
    tb.addWidget(tools.cine_fps)
    tb.addWidget(tools.cine_over)
    w.volumes.add_to(tb)
    tb.addSeparator()
    tb.addWidget(tools.slab_mode)
    tb.addWidget(tools.slab_mm)
    nav = mb.addMenu("&Navigate")
    for text, keys, delta in (
        ("Next slice", ("Down", "Right"), 1),
        ("Previous slice", ("Up", "Left"), -1),
        ("Forward 10", ("PgDown",), 10),
        ("Back 10", ("PgUp",), -10),
    ):
        act = a(w, nav, text, lambda _=False, d=delta: tools.step_active(d))
        act.setShortcuts([QKeySequence(k) for k in keys])
    a(w, nav, "Next volume (4-D)", lambda: w.volumes.step(1), "Ctrl+Down")
    a(w, nav, "Previous volume (4-D)", lambda: w.volumes.step(-1), "Ctrl+Up")
    a(w, nav, "First slice", lambda: tools.go_active(0), "Home")
    a(w, nav, "Last slice", lambda: tools.go_active(10**9), "End")
    t = mb.addMenu("&Tools")
    tools_bar = QToolBar("Tools", w)
    tools_bar.setObjectName("toolsbar")
    w.addToolBar(tools_bar)
    for label, kind, key in (
        ("Navigate", None, "Esc"),
        ("Ruler", Kind.RULER, "M"),
        ("Angle", Kind.ANGLE, "N"),
        ("Ellipse ROI", Kind.ELLIPSE, "E"),
        ("Rectangle ROI", Kind.RECTANGLE, "G"),
        ("Arrow", Kind.ARROW, "W"),
    ):
        act = a(w, t, label, lambda _=False, k=kind: tools.set_tool(k), key, checkable=True)
        tools_bar.addAction(act)
        tools.tool_actions[kind] = act
    tools.tool_actions[None].setChecked(True)
    t.addSeparator()
    seg = w.segment_dock
    a(w, t, "Segment editor: paint", lambda: seg.paint_button.toggle(), "B")
    a(w, t, "Segment editor: erase", lambda: seg.erase_button.toggle(), "X")
    t.addSeparator()
    a(w, t, "Delete measurement", w.controller.delete_selected, "Del")
    a(w, t, "Undo", w.undo, "Ctrl+Z")
    a(w, t, "Redo", w.redo, "Ctrl+Shift+Z")
    t.addSeparator()
    a(w, t, "Copy view to clipboard", report.copy_view, "Ctrl+C")
    a(w, t, "Save view as PNG…", report.save_view_dialog, "Ctrl+S")
    a(
        w,
        t,
        "Save view as PNG without annotations…",
        lambda: report.save_view_dialog(annotations=False),
        "Ctrl+Shift+S",
    )
    h = mb.addMenu("&Help")
    a(w, h, "Keyboard shortcuts", w.show_shortcuts, "F1")
    a(w, h, "About MedView", w.show_about)


def shortcut_rows(menubar: Any) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action with a shortcut, read from the menus."""
    rows = []

    def walk(menu: Any, path: str) -> None:
        for act in menu.actions():
            if act.menu() is not None:
                walk(act.menu(), f"{path} › {act.text().replace('&', '')}")
            elif act.shortcuts():
                keys = " / ".join(
                    k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts()
                )
                rows.append((path, act.text().replace("&", ""), keys))

    for top in menubar.actions():
        if top.menu() is not None:
            walk(top.menu(), top.text().replace("&", ""))
    return rows


class TypingGuard(QObject):
    """Keys typed into a form, a search box, a list or any widget outside the viewers go to
    that widget: the viewer's plain-key shortcuts (digits for presets, letters for tools,
    arrows for slices) are overridden there. Keys with Ctrl or Alt and F-keys still work."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(obj, QWidget):
            return False
        w = self._window
        if obj is w or not w.isAncestorOf(obj):
            return False
        if any(v.isAncestorOf(obj) or v is obj for v in (w.viewer, w.compare_viewer)):
            return False
        assert isinstance(event, QKeyEvent)
        held = event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        )
        if not held and not Qt.Key.Key_F1 <= event.key() <= Qt.Key.Key_F35:
            event.accept()  # the widget gets the key; the shortcut does not fire
        return False
