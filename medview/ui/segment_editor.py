"""The Segment Editor dock: the working segmentation's segment table and the tools that
correct it (brush and eraser in any MPR view, threshold, islands, margins, hollow, logical
operations, grow from seeds in a worker). Every change is a step of the session's one undo
history (Ctrl+Z / Ctrl+Shift+Z)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.segedit import tools
from medview.segedit.codes import PICK_LIST, new_colour, pick
from medview.segedit.editor import EditError
from medview.session import StudySession
from medview.ui.bridge import TaskRunner
from medview.ui.controller import ViewerController
from medview.ui.nodule_tool import NoduleClick, malignancy
from medview.ui.segment_mouse import Brush, Scissors


class SegmentEditorDock(QDockWidget):
    def __init__(
        self,
        session: StudySession,
        controller: ViewerController,
        runner: TaskRunner,
        notify: Callable[[str], None],
        progress: Callable[[int, int, str], None],
        parent: QWidget,
    ) -> None:
        super().__init__("Segment editor", parent)
        self.setObjectName("segment-editor")
        self.session, self.controller, self.runner = session, controller, runner
        self.notify, self.progress = notify, progress
        self.brush = Brush(self)
        self.cutter = Scissors(self)
        self.nodule = NoduleClick(self)
        body = QWidget()
        layout = QVBoxLayout(body)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["", "Segment", "Type", "Shown", "Locked"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setColumnWidth(0, 22)
        header = self.table.horizontalHeader()  # the name takes the room; the boxes fit
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column in (2, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellDoubleClicked.connect(self._cell_double_clicked)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        add, kind = QPushButton("Add segment…"), QPushButton("What it is…")
        remove = QPushButton("Remove")
        add.clicked.connect(self.add_segment_dialog)
        kind.clicked.connect(self.set_kind_dialog)
        remove.clicked.connect(self._remove)
        for b in (add, kind, remove):
            row.addWidget(b)
        layout.addLayout(row)
        grid = QGridLayout()
        self.paint_button = QPushButton("Paint (B)")
        self.erase_button = QPushButton("Erase (X)")
        for b in (self.paint_button, self.erase_button):
            b.setCheckable(True)
        self.scissors_button = QPushButton("Scissors")
        self.scissors_button.setCheckable(True)
        self.scissors_button.setToolTip("Draw an outline in a view: the segment is cut through")
        self.keep_inside = QCheckBox("keep inside")
        self.paint_button.toggled.connect(lambda on: self.set_brush(on, erase=False))
        self.erase_button.toggled.connect(lambda on: self.set_brush(on, erase=True))
        self.scissors_button.toggled.connect(self.set_scissors)
        self.size_mm = QDoubleSpinBox(minimum=0.5, maximum=100.0, value=5.0, suffix=" mm")
        self.size_mm.setToolTip("Brush radius (drawn as the cursor circle)")
        self.sphere = QCheckBox("3-D sphere")
        self.overwrite = QCheckBox("Overwrite other segments")
        self.overwrite.setChecked(True)
        self.limit = QCheckBox("Only intensities")
        self.low = QDoubleSpinBox(minimum=-100000, maximum=100000, value=-400, decimals=0)
        self.high = QDoubleSpinBox(minimum=-100000, maximum=100000, value=400, decimals=0)
        self.limit.setToolTip("Paint and threshold only these image values (shown as a tint)")
        self.limit.toggled.connect(self.show_range)
        self.low.valueChanged.connect(self.show_range)
        self.high.valueChanged.connect(self.show_range)
        grid.addWidget(self.paint_button, 0, 0)
        grid.addWidget(self.erase_button, 0, 1)
        grid.addWidget(self.size_mm, 0, 2)
        grid.addWidget(self.sphere, 1, 0)
        grid.addWidget(self.overwrite, 1, 1, 1, 2)
        grid.addWidget(self.limit, 2, 0)
        grid.addWidget(self.low, 2, 1)
        grid.addWidget(self.high, 2, 2)
        self.mm = QDoubleSpinBox(minimum=0.1, maximum=200.0, value=2.0, suffix=" mm")
        self.ml = QDoubleSpinBox(
            minimum=0.001, maximum=10000.0, value=0.5, suffix=" mL", decimals=3
        )
        self.other = QComboBox()
        self.other.setToolTip("The second segment of Merge and Grow from seeds")
        buttons: list[tuple[str, Callable[[], Any], int, int]] = [
            ("Threshold", self.threshold, 3, 0),
            ("Keep largest island", lambda: self._run(tools.keep_largest_island), 4, 0),
            (
                "Remove islands under",
                lambda: self._run(tools.remove_small_islands, self.ml.value()),
                4,
                1,
            ),
            ("Split islands", lambda: self._run(tools.split_islands), 5, 0),
            ("Fill between slices", self.fill_between, 5, 1),
            ("Grow by", lambda: self._run(tools.margin, self.mm.value()), 6, 0),
            ("Shrink by", lambda: self._run(tools.margin, -self.mm.value()), 6, 1),
            ("Hollow", lambda: self._run(tools.hollow, self.mm.value()), 7, 0),
            ("Invert", lambda: self._run(lambda e, v: tools.logical(e, "invert", v)), 7, 1),
            ("Clear", lambda: self._run(lambda e, v: tools.logical(e, "clear", v)), 7, 2),
            ("Smooth", lambda: self._run(tools.smooth, self.mm.value()), 9, 0),
            ("Merge in", self.merge, 8, 0),
            ("Grow from seeds", self.grow_from_seeds, 8, 1),
        ]
        for text, slot, r, c in buttons:
            b = QPushButton(text)
            b.clicked.connect(slot)
            grid.addWidget(b, r, c)
        grid.addWidget(self.ml, 4, 2)
        grid.addWidget(self.mm, 6, 2)
        grid.addWidget(self.other, 8, 2)
        grid.addWidget(self.scissors_button, 9, 1)
        grid.addWidget(self.keep_inside, 9, 2)
        self.nodule_button = QPushButton("Nodule (AI click)")
        self.nodule_button.setCheckable(True)
        self.nodule_button.setToolTip(
            "Click on a lung nodule in a view: it is segmented as a new segment. Click again "
            "near it to refine: outside it adds, inside it removes. Research use only."
        )
        self.nodule_button.toggled.connect(self.set_nodule)
        malignant = QPushButton("Malignancy (AI)")
        malignant.setToolTip("The selected nodule segment's malignancy estimate (research use)")
        malignant.clicked.connect(lambda: malignancy(self))
        grid.addWidget(self.nodule_button, 10, 0)
        grid.addWidget(malignant, 10, 1)
        layout.addLayout(grid)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        new = QPushButton("New segmentation on this series")
        new.clicked.connect(lambda: self.add_segment("Segment 1"))
        layout.addWidget(new)
        layout.addStretch(1)
        self.setWidget(body)
        self._filling = False
        session.subscribe("segmentation", lambda _s: self.refresh())
        session.subscribe("series", self._series_shown)

    # -- the table ------------------------------------------------------------------------------
    def _series_shown(self, _session: StudySession) -> None:
        self.refresh()
        self.show_range()

    def refresh(self) -> None:
        editor = self.session.editor
        rows = editor.table if editor is not None else ()
        seg = self.session.segmentation
        selected = self.selected_value()
        self._filling = True
        self.table.setRowCount(len(rows))
        for i, e in enumerate(rows):
            s = e.segment
            swatch = QTableWidgetItem()
            swatch.setBackground(QColor(*s.color))
            swatch.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            swatch.setData(Qt.ItemDataRole.UserRole, s.value)
            name = QTableWidgetItem(s.name)
            name.setToolTip(
                f"SNOMED CT {s.snomed_code}: {s.snomed_meaning}" if s.snomed_code else ""
            )
            kind = QTableWidgetItem(seg.algorithm_type_of(s).lower() if seg else "")
            kind.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.table.setItem(i, 0, swatch)
            self.table.setItem(i, 1, name)
            self.table.setItem(i, 2, kind)
            for col, on in ((3, e.visible), (4, e.locked)):
                box = QTableWidgetItem()
                box.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                box.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                self.table.setItem(i, col, box)
            if s.value == selected:
                self.table.selectRow(i)
        if rows and self.selected_value() is None:
            self.table.selectRow(0)
        self.other.clear()
        for e in rows:
            self.other.addItem(e.segment.name, e.segment.value)
        self._filling = False  # the overlay follows the table's Shown boxes (`AiResults`)

    def selected_value(self) -> int | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select(self, value: int) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == value:
                self.table.selectRow(row)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or self.session.editor is None:
            return
        head = self.table.item(item.row(), 0)
        if head is None:
            return
        value = head.data(Qt.ItemDataRole.UserRole)
        checked = item.checkState() == Qt.CheckState.Checked
        changes: dict[str, object] = {}
        if item.column() == 1:
            changes = {"name": item.text().strip() or "Segment"}
        elif item.column() == 3:
            changes = {"visible": checked}
        elif item.column() == 4:
            changes = {"locked": checked}
        if changes:
            editor = self.session.segment_editor()
            self.attempt(lambda: editor.update_entry(value, "change segment", **changes))

    def _cell_double_clicked(self, row: int, column: int) -> None:
        head = self.table.item(row, 0)
        if column != 0 or head is None:
            return
        from PySide6.QtWidgets import QColorDialog

        chosen = QColorDialog.getColor(head.background().color(), self, "Segment colour")
        if chosen.isValid():
            self.set_colour(
                int(head.data(Qt.ItemDataRole.UserRole)),
                (chosen.red(), chosen.green(), chosen.blue()),
            )

    def set_colour(self, value: int, rgb: tuple[int, ...]) -> None:
        """A segment's display colour (an undoable step; the SEG carries it)."""
        colour = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        editor = self.session.segment_editor()
        self.attempt(lambda: editor.update_entry(value, "change colour", color=colour))

    def add_segment_dialog(self) -> None:
        names = [p.name for p in PICK_LIST]
        name, ok = QInputDialog.getItem(self, "Add segment", "What it is", names, 0, True)
        if ok and name:
            self.add_segment(name)

    def set_kind_dialog(self) -> None:
        value = self.selected_value()
        if value is None:
            self.say("Select a segment first.")
            return
        names = [p.name for p in PICK_LIST]
        name, ok = QInputDialog.getItem(self, "What it is", "The segment is", names, 0, False)
        if ok and name:
            self.set_kind(value, name)

    def set_kind(self, value: int, name: str) -> None:
        """What a segment is, from the pick list (its SNOMED CT code; an undoable step): a
        segment named after the pick list takes the new name, a name the reader typed stays."""
        chosen, editor = pick(name), self.session.segment_editor()
        entry = editor.entry(value)
        if chosen is None or entry is None:
            return
        changes = chosen.codes()
        if pick(entry.segment.name) is not None:
            changes["name"] = chosen.name
        self.attempt(lambda: editor.update_entry(value, "change type", **changes))

    def add_segment(self, name: str, color: tuple[int, int, int] | None = None) -> int | None:
        """Add a segment (from the pick list when ``name`` is on it: with its SNOMED CT
        code) and select it; starts a segmentation on the shown series when there is none."""
        if self.session.volume is None:
            self.say("Open a series first.")
            return None
        chosen = pick(name)
        codes = chosen.codes() if chosen is not None else {}
        editor = self.session.segment_editor()
        colour = color or new_colour({e.segment.color for e in editor.table})
        segment = self.session.edit(lambda e: e.add_segment(name, colour, **codes))
        self.refresh()
        self.select(segment.value)
        return int(segment.value)

    def _remove(self) -> None:
        value = self.selected_value()
        if value is not None:
            self.attempt(lambda: self.session.edit(lambda e: e.remove_segment(value)))

    # -- tools ----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.message.setText(text)

    def attempt(self, action: Callable[[], Any]) -> Any:
        """Run an edit; a refused one says why (nothing was changed)."""
        try:
            out = action()
        except EditError as e:
            self.say(str(e))
            return None
        self.say("")
        return out

    def show_range(self) -> None:
        """Tint the voxels in the intensity range while "Only intensities" is on: what the
        brush may paint and what Threshold would take."""
        state = self.controller.state
        if state is None:
            return
        seg = self.session.segmentation
        value = self.selected_value()
        segment = seg.segment(value) if seg is not None and value is not None else None
        colour = segment.color if segment is not None else (255, 255, 0)
        rng = self.intensity()
        state.range_preview = (rng[0], rng[1], colour) if rng is not None else None
        self.controller.changed.emit()

    def intensity(self) -> tuple[float, float] | None:
        return (self.low.value(), self.high.value()) if self.limit.isChecked() else None

    def stop_brush(self) -> None:
        for b in (self.paint_button, self.erase_button, self.scissors_button, self.nodule_button):
            b.setChecked(False)

    def set_nodule(self, on: bool) -> None:
        if on:
            for b in (self.paint_button, self.erase_button, self.scissors_button):
                b.setChecked(False)
            self.controller.set_tool(None)
            self.say("Click on a nodule in a slice view.")
        self.controller.painter = self.nodule if on else None
        self.controller.changed.emit()

    def set_scissors(self, on: bool) -> None:
        if on:
            for b in (self.paint_button, self.erase_button, self.nodule_button):
                b.setChecked(False)
            self.controller.set_tool(None)
        self.controller.painter = self.cutter if on else None
        self.controller.changed.emit()

    def set_brush(self, on: bool, erase: bool) -> None:
        """Paint or erase with the mouse (``on``), or back to the viewer's tools."""
        if on:
            for other in (
                self.erase_button if not erase else self.paint_button,
                self.scissors_button,
                self.nodule_button,
            ):
                other.blockSignals(True)
                other.setChecked(False)
                other.blockSignals(False)
            self.brush.erase = erase
            self.controller.set_tool(None)
        self.controller.painter = self.brush if on else None
        self.controller.changed.emit()

    def _run(self, tool: Callable[..., Any], *args: Any) -> None:
        value = self.selected_value()
        if value is None:
            self.say("Select a segment first.")
            return
        step = self.attempt(lambda: self.session.edit(tool, value, *args))
        if step is None and not self.message.text():
            self.say("Nothing to change: the segment is already so.")

    def threshold(self) -> None:
        value = self.selected_value()
        if value is None:
            self.say("Select a segment first.")
            return
        lo, hi = self.low.value(), self.high.value()
        self.attempt(
            lambda: self.session.edit(
                tools.threshold, value, lo, hi, overwrite=self.overwrite.isChecked()
            )
        )

    def fill_between(self) -> None:
        """Fill between the slices drawn in the active view's direction."""
        active = self.controller.active_view
        state = self.controller.state
        if state is None:
            return
        view = active.view if active is not None else None
        axis = state.mapping(view).dims[0] if view is not None and view.value != "native" else 0
        self._run(tools.fill_between_slices, axis)

    def merge(self) -> None:
        value, other = self.selected_value(), self.other.currentData()
        if value is not None:
            self.attempt(lambda: self.session.edit(tools.logical, "merge", value, other))

    def grow_from_seeds(self) -> None:
        """The selected segment's and the second segment's strokes grow into the region
        around them, in a worker (progress, Cancel); applied when done."""
        value, other = self.selected_value(), self.other.currentData()
        if value is None or self.session.volume is None:
            self.say("Select a segment first.")
            return
        plan = self.attempt(lambda: tools.seed_plan(self.session.segment_editor(), [value, other]))
        if plan is None:
            return

        def done(out: np.ndarray) -> None:
            editor = self.session.editor
            if editor is not None:
                self.attempt(lambda: self.session.edit(lambda e: tools.apply_grown(e, plan, out)))

        self.runner.submit(
            "Growing from seeds",
            lambda *, cancel, progress: tools.grow_region(plan, cancel=cancel, progress=progress),
            on_done=done,
            on_error=self.notify,
            on_progress=self.progress,
            slot="grow",
        )
