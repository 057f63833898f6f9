"""Study browser: the local database as a patient / study / series tree with a search box."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QLineEdit,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.core.records import DerivedRecord, SeriesRecord
from medview.io.database import StackRow, StudyDatabase, StudyRow
from medview.io.volumes4d import four_d_groups, what_varies
from medview.ui.bridge import TaskRunner

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1
DERIVED_ROLE = Qt.ItemDataRole.UserRole + 2
# the icon of each kind of derived object (Qt's own, so every platform style has one)
_DERIVED_ICONS = {
    "SEG": QStyle.StandardPixmap.SP_DialogApplyButton,
    "RTSTRUCT": QStyle.StandardPixmap.SP_FileDialogContentsView,
    "SR": QStyle.StandardPixmap.SP_FileDialogDetailedView,
}
SERIES_MIME = "application/x-medview-series"  # JSON {"uid": ..., "key": ...}


def series_mime(series: SeriesRecord | StackRow) -> QMimeData:
    mime = QMimeData()
    mime.setData(SERIES_MIME, json.dumps({"uid": series.series_uid, "key": series.key}).encode())
    return mime


def series_from_mime(mime: QMimeData) -> dict[str, str] | None:
    if not mime.hasFormat(SERIES_MIME):
        return None
    try:
        data = json.loads(bytes(mime.data(SERIES_MIME).data()).decode())
        return {"uid": str(data["uid"]), "key": str(data["key"])}
    except (ValueError, KeyError, TypeError):
        return None


class _SeriesTree(QTreeWidget):
    """Series rows can be dragged into a viewport."""

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:
        series = items[0].data(0, SERIES_ROLE) if items else None
        return series_mime(series) if series is not None else QMimeData()


class StudyBrowserPanel(QWidget):
    """Double-click a series to show it (``series_activated``); a SEG, RTSTRUCT or SR,
    listed under the series it annotates, to open it onto that series
    (``derived_activated``)."""

    series_activated = Signal(object)  # StackRow
    derived_activated = Signal(object)  # DerivedRecord
    thumbnails_wanted = Signal(object)  # list[StackRow] without a thumbnail yet

    def __init__(
        self, db: StudyDatabase, runner: TaskRunner | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.db, self.runner = db, runner
        self._series_items: list[QTreeWidgetItem] = []
        self._four_d_items: list[QTreeWidgetItem] = []
        self.search = QLineEdit(placeholderText="Search patient, ID, description, accession")
        self.search.setClearButtonEnabled(True)
        self.tree = _SeriesTree()
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.tree.setHeaderLabels(["Patient / study / series", "Mod", "Date", "Images", "Notes"])
        self.tree.setColumnWidth(0, 230)
        self.tree.setIconSize(QSize(48, 48))
        self._icons: dict[str, QIcon] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.refresh)
        self.tree.itemActivated.connect(self._activated)
        self.tree.itemDoubleClicked.connect(self._activated)

    def refresh(self) -> None:
        """Rebuild the tree from the database summaries: read in the runner's worker (no
        SQLite query on the GUI thread), or at once when the panel has no runner."""
        text = self.search.text().strip()
        if self.runner is None:
            self._fill(self._query(text))
            return
        self.runner.submit(
            "Listing studies",
            lambda *, cancel, progress: self._query(text),
            on_done=self._fill,
            slot="browser",
        )

    def _query(self, text: str) -> list[tuple[StudyRow, list[StackRow], list[DerivedRecord]]]:
        return [
            (row, self.db.stack_rows(row.study_uid), self.db.derived_objects(row.study_uid))
            for row in self.db.search(text)
        ]

    def _fill(self, studies: list[tuple[StudyRow, list[StackRow], list[DerivedRecord]]]) -> None:
        self.tree.clear()
        self._series_items = []
        self._four_d_items = []
        patients: dict[tuple[str, str], QTreeWidgetItem] = {}
        for row, rows, derived in studies:
            key = (row.patient_id, row.patient_name)
            pitem = patients.get(key)
            if pitem is None:
                pitem = QTreeWidgetItem([f"{row.patient_name or '(no name)'}  [{row.patient_id}]"])
                patients[key] = pitem
                self.tree.addTopLevelItem(pitem)
            sitem = QTreeWidgetItem(
                [
                    row.description or "(no description)",
                    "/".join(row.modalities),
                    _date(row.study_date),
                    str(row.instance_count),
                    f"{row.missing_count} missing" if row.missing_count else "",
                ]
            )
            pitem.addChild(sitem)
            for group in four_d_groups(rows, lambda r: (r.series_uid, r.shape, r.volume)):
                if len(group) == 1:
                    self._add_series(sitem, group[0])
                else:  # one row for a 4-D series; its volumes under it, collapsed
                    head = self._add_series(sitem, group[0], group)
                    for stack in group:
                        self._add_series(head, stack)
            self._add_derived(sitem, derived)
        self.tree.expandAll()
        for item in self._four_d_items:
            item.setExpanded(False)
        missing = [
            i.data(0, SERIES_ROLE)
            for i in self._series_items
            if i.data(0, SERIES_ROLE).key not in self._icons
        ]
        if missing:
            self.thumbnails_wanted.emit(missing)

    def set_thumbnails(self, images: dict[str, np.ndarray]) -> None:
        """Attach thumbnails (uint8 grey or RGB arrays) to their series rows."""
        for key, arr in images.items():
            h, w = arr.shape[:2]
            fmt = QImage.Format.Format_RGB888 if arr.ndim == 3 else QImage.Format.Format_Grayscale8
            image = QImage(arr.data, w, h, arr.strides[0], fmt).copy()
            self._icons[key] = QIcon(QPixmap.fromImage(image))
        for item in self._series_items:
            icon = self._icons.get(item.data(0, SERIES_ROLE).key)
            if icon is not None:
                item.setIcon(0, icon)

    def _add_series(
        self, parent: QTreeWidgetItem, s: StackRow, volumes: list[StackRow] | None = None
    ) -> QTreeWidgetItem:
        """A row for a stack; with ``volumes``, the row of a whole 4-D series (it opens the
        first volume) saying "4-D: 64x64x40 x 13" and what varies."""
        shape = "x".join(str(v) for v in reversed(s.shape))
        number = s.series_number if s.series_number is not None else "-"
        if volumes:
            warnings = tuple(dict.fromkeys(w for v in volumes for w in v.warnings))
            # the 4-D shape first: a long description is cut at the column's edge
            text = f"{number}  4-D: {shape} x {len(volumes)}  {s.description}".rstrip()
            count = str(sum(v.slices for v in volumes))
            tip = (
                f"4-D: {shape} x {len(volumes)} volumes (x, y, z x volumes)\n"
                f"varies: {what_varies([v.volume for v in volumes])}"
            )
        elif s.volume:
            warnings, count = s.warnings, str(s.slices)
            text = s.volume[0].upper() + s.volume[1:]
            tip = f"{shape} voxels (x, y, z)\n{s.key}"
        else:
            warnings, count = s.warnings, str(s.slices)
            text = f"{number}  {s.description or '(no description)'}"
            tip = f"{shape} voxels (x, y, z)\n{s.key}"
        notes = f"⚠ {len(warnings)}" if warnings else ""
        item = QTreeWidgetItem([text, s.modality, "", count, notes])
        if volumes:
            self._four_d_items.append(item)
        item.setToolTip(0, tip)
        if warnings:
            item.setToolTip(4, "\n".join(warnings))
        item.setData(0, SERIES_ROLE, s)
        icon = self._icons.get(s.key)
        if icon is not None:
            item.setIcon(0, icon)
        parent.addChild(item)
        if not volumes:
            self._series_items.append(item)
        return item

    def _add_derived(self, study: QTreeWidgetItem, objects: list[DerivedRecord]) -> None:
        """Each object under the first row of the series it annotates (under the study,
        saying so, when that series is not here)."""
        rows: dict[str, QTreeWidgetItem] = {}
        for i in range(study.childCount()):
            child = study.child(i)
            s = child.data(0, SERIES_ROLE) if child is not None else None
            if child is not None and s is not None:
                rows.setdefault(s.series_uid, child)
        style = QApplication.style()
        for obj in objects:
            parent = next((rows[u] for u in obj.referenced_series if u in rows), None)
            note = "" if parent is not None else "its series is not here"
            item = QTreeWidgetItem([obj.title, obj.kind, _date(obj.date), "", note])
            item.setIcon(0, style.standardIcon(_DERIVED_ICONS[obj.kind]))
            item.setToolTip(0, f"{obj.title}\ndouble-click to open it onto its series")
            item.setData(0, DERIVED_ROLE, obj)
            (parent or study).addChild(item)

    def derived_items(self) -> list[QTreeWidgetItem]:
        """Every SEG, RTSTRUCT and SR row, in display order."""
        out: list[QTreeWidgetItem] = []
        todo = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while todo:
            item = todo.pop(0)
            if item is None:
                continue
            if item.data(0, DERIVED_ROLE) is not None:
                out.append(item)
            todo[:0] = [item.child(i) for i in range(item.childCount())]
        return out

    def series_items(self) -> list[QTreeWidgetItem]:
        """Every series row, in display order."""
        return list(self._series_items)

    def _activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        series = item.data(0, SERIES_ROLE)
        if series is not None:
            self.series_activated.emit(series)
        obj = item.data(0, DERIVED_ROLE)
        if obj is not None:
            self.derived_activated.emit(obj)


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d
