"""PACS in the window: the nodes dialog (with Test connection), the query/retrieve panel, and
the storage listener switch. Every network call runs as a background task (progress, Cancel);
this module only builds requests and shows answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.core.errors import MedviewError
from medview.core.tasks import CancelToken, Progress
from medview.pacs.nodes import DEFAULT_OUR_AET, PacsNode, load_nodes
from medview.pacs.query import QueryKeys, SeriesMatch, StudyMatch
from medview.ui.bridge import TaskRunner
from medview.ui.pacs_nodes import METHODS, PacsNodesDialog

log = logging.getLogger(__name__)


class _ListenerBridge(QObject):
    received = Signal(int)  # emitted from the listener's threads; delivered on the GUI thread


class PacsPanel(QWidget):
    """Query a node, browse its studies and series, retrieve them; the listener switch."""

    retrieved = Signal(list)  # series UIDs now in the database

    def __init__(
        self,
        runner: TaskRunner,
        settings: QSettings,
        progress: Callable[[int, int, str], None],
        notify: Callable[[str], None],
        database: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.database = database  # the window's study database (None: the default one)
        self.runner = runner
        self.settings = settings
        self._progress = progress
        self.notify = notify
        self.studies: list[StudyMatch] = []
        self.series: list[SeriesMatch] = []
        self.listener: Any = None
        self._bridge = _ListenerBridge()
        self._bridge.received.connect(self._listener_received)

        self.node = QComboBox()
        edit = QPushButton("Nodes…")
        edit.clicked.connect(self.edit_nodes)
        self.patient_name = QLineEdit()
        self.patient_name.setPlaceholderText("Doe^J (a trailing * is added)")
        self.patient_id = QLineEdit()
        self.date = QComboBox()
        self.date.setEditable(True)
        self.date.addItems(["Any date", "Today", "Last 7 days", "Last 30 days", "Last year"])
        self.date.setToolTip("Or type YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.modality = QComboBox()
        self.modality.setEditable(True)
        self.modality.addItems(["", "CT", "MR", "PT", "CR", "DX", "US", "MG", "NM", "SEG", "SR"])
        self.accession = QLineEdit()
        self.description = QLineEdit()
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.use_web = QCheckBox("Use DICOMweb")
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.node, 1)
        row.addWidget(edit)
        form.addRow("Node", row)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Study date", self.date)
        form.addRow("Modality", self.modality)
        form.addRow("Accession", self.accession)
        form.addRow("Description", self.description)
        form.addRow(self.use_web, self.search_button)

        self.study_table = self._table(
            ["Patient", "ID", "Date", "Description", "Modalities", "Series", "Images"]
        )
        self.study_table.itemSelectionChanged.connect(self._study_selected)
        self.series_table = self._table(["#", "Modality", "Description", "Images"])
        self.series_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.method = QComboBox()
        for label, key in METHODS:
            self.method.addItem(label, key)
        self.retrieve_button = QPushButton("Retrieve")
        self.retrieve_button.clicked.connect(self.retrieve)
        bottom = QHBoxLayout()
        bottom.addWidget(self.method, 1)
        bottom.addWidget(self.retrieve_button)

        self.listen = QCheckBox("Receive from PACS nodes (storage listener)")
        self.listen_port = QSpinBox(minimum=1, maximum=65535)
        self.listen_port.setValue(int(str(self.settings.value("pacs/listen_port", 11112))))
        self.listen_remote = QCheckBox("Accept connections from other computers")
        self.listen_remote.setChecked(
            bool(self.settings.value("pacs/listen_remote", False, type=bool))
        )
        self.listen_status = QLabel("Off")
        box = QGroupBox("Storage listener")
        lay = QFormLayout(box)
        lay.addRow(self.listen)
        lay.addRow("Port", self.listen_port)
        lay.addRow(self.listen_remote)
        lay.addRow(self.listen_status)
        self.listen.toggled.connect(self.set_listening)

        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addWidget(QLabel("Studies"))
        outer.addWidget(self.study_table, 2)
        outer.addWidget(QLabel("Series (none selected: the whole study)"))
        outer.addWidget(self.series_table, 1)
        outer.addLayout(bottom)
        outer.addWidget(box)
        self.reload_nodes()
        # off by default; on again at start only if the user left it on
        if bool(self.settings.value("pacs/listen", False, type=bool)):
            self.listen.setChecked(True)

    @staticmethod
    def _table(headers: list[str]) -> QTableWidget:
        t = QTableWidget(0, len(headers))
        t.setHorizontalHeaderLabels(headers)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.verticalHeader().setVisible(False)
        t.horizontalHeader().setStretchLastSection(True)
        return t

    # -- nodes ----------------------------------------------------------------------------------
    def reload_nodes(self) -> None:
        try:
            self.nodes = load_nodes()
        except MedviewError as e:
            self.notify(str(e))
            self.nodes = []
        current = self.node.currentText()
        self.node.clear()
        self.node.addItems([n.name for n in self.nodes])
        if current:
            self.node.setCurrentText(current)

    def edit_nodes(self) -> None:
        dialog = PacsNodesDialog(self.runner, self)
        if dialog.exec():
            self.reload_nodes()

    def current_node(self) -> PacsNode | None:
        i = self.node.currentIndex()
        if not 0 <= i < len(self.nodes):
            self.notify("Configure a PACS node first (PACS > Nodes…).")
            return None
        return self.nodes[i]

    # -- query ----------------------------------------------------------------------------------
    def keys(self) -> QueryKeys:
        name = self.patient_name.text().strip()
        if name and not any(c in name for c in "*?"):
            name += "*"  # what a radiologist expects from "Doe": Doe^John too
        return QueryKeys(
            patient_name=name,
            patient_id=self.patient_id.text().strip(),
            study_date=self._date_range(),
            modality=self.modality.currentText().strip().upper(),
            accession=self.accession.text().strip(),
            description=self.description.text().strip(),
        )

    def _date_range(self) -> str:
        text = self.date.currentText().strip()
        today = date.today()
        days = {"Today": 0, "Last 7 days": 7, "Last 30 days": 30, "Last year": 365}
        if text in days:
            start = today - timedelta(days=days[text])
            return f"{start:%Y%m%d}-{today:%Y%m%d}"
        return "" if text in ("", "Any date") else text

    def search(self) -> None:
        node = self.current_node()
        if node is None:
            return
        try:
            keys = self.keys().checked()
        except MedviewError as e:
            self.notify(str(e))
            return
        web = self.use_web.isChecked() or not node.ae_title

        def work(*, cancel: CancelToken, progress: Progress) -> list[Any]:
            from medview.pacs import service

            return list(service.search(node, keys, "study", web=web, cancel=cancel))

        self.search_button.setEnabled(False)
        self.runner.submit(
            "Searching the PACS",
            work,
            on_done=self._show_studies,
            on_error=self._failed,
            slot="pacs-find",
        )

    def _failed(self, message: str) -> None:
        self.search_button.setEnabled(True)
        self.notify(f"PACS: {message}")

    def _show_studies(self, studies: list[StudyMatch]) -> None:
        self.search_button.setEnabled(True)
        self.studies = sorted(studies, key=lambda s: s.study_date, reverse=True)
        t = self.study_table
        t.setRowCount(len(self.studies))
        for r, s in enumerate(self.studies):
            date_text = (
                f"{s.study_date[:4]}-{s.study_date[4:6]}-{s.study_date[6:]}"
                if len(s.study_date) == 8
                else s.study_date
            )
            cells = [
                s.patient_name.replace("^", " ").strip(),
                s.patient_id,
                date_text,
                s.description,
                s.modalities,
                "" if s.series_count is None else str(s.series_count),
                "" if s.instance_count is None else str(s.instance_count),
            ]
            for c, text in enumerate(cells):
                t.setItem(r, c, QTableWidgetItem(text))
        t.resizeColumnsToContents()
        self.series = []
        self.series_table.setRowCount(0)
        self.notify(
            f"PACS: {len(self.studies)} stud{'y' if len(self.studies) == 1 else 'ies'} found"
        )

    def selected_study(self) -> StudyMatch | None:
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows else None

    def _study_selected(self) -> None:
        study, node = self.selected_study(), self.current_node()
        if study is None or node is None:
            return
        web = self.use_web.isChecked() or not node.ae_title

        def work(*, cancel: CancelToken, progress: Progress) -> list[Any]:
            from medview.pacs import service

            keys = QueryKeys(study_uid=study.study_uid)
            return list(service.search(node, keys, "series", web=web, cancel=cancel))

        self.runner.submit(
            "Listing series",
            work,
            on_done=self._show_series,
            on_error=self._failed,
            slot="pacs-series",
        )

    def _show_series(self, series: list[SeriesMatch]) -> None:
        self.series = sorted(series, key=lambda s: (s.series_number or 0, s.description))
        t = self.series_table
        t.setRowCount(len(self.series))
        for r, s in enumerate(self.series):
            cells = [
                "" if s.series_number is None else str(s.series_number),
                s.modality,
                s.description,
                "" if s.instance_count is None else str(s.instance_count),
            ]
            for c, text in enumerate(cells):
                t.setItem(r, c, QTableWidgetItem(text))
        t.resizeColumnsToContents()

    # -- retrieve -------------------------------------------------------------------------------
    def retrieve(self) -> None:
        """Retrieve the selected series (or the whole study) in the background; the status
        bar shows progress and Cancel."""
        study, node = self.selected_study(), self.current_node()
        if node is None:
            return
        if study is None:
            self.notify("Select a study to retrieve.")
            return
        rows = sorted(i.row() for i in self.series_table.selectionModel().selectedRows())
        targets: list[str | None] = [self.series[r].series_uid for r in rows] or [None]
        method = str(self.method.currentData())
        database = self.database
        port = self.listen_port.value()
        if method == "move" and self.listener is not None:
            self.notify("Turn the storage listener off for C-MOVE (it uses the same port).")
            return

        def work(*, cancel: CancelToken, progress: Progress) -> list[str]:
            from medview.pacs import service

            for series_uid in targets:
                r = service.retrieve(
                    node,
                    study.study_uid,
                    series_uid,
                    method=method,
                    listen_port=port,
                    database=database,
                    cancel=cancel,
                    progress=progress,
                )
                if r.failed:
                    raise MedviewError(f"{r.failed} instance(s) failed to arrive ({r.method})")
            from medview.io.database import StudyDatabase

            with StudyDatabase(database) as db:
                uids = [s.series_uid for s in db.study_series(study.study_uid)]
            return list(dict.fromkeys(uids))

        self.runner.submit(
            "Retrieving from the PACS",
            work,
            on_done=self._retrieved,
            on_error=self._failed,
            on_progress=self._progress,
            slot="pacs-retrieve",
        )

    def _retrieved(self, series_uids: list[str]) -> None:
        self.notify(f"PACS: retrieved; {len(series_uids)} series of the study are here")
        self.retrieved.emit(series_uids)

    # -- listener -------------------------------------------------------------------------------
    def set_listening(self, on: bool) -> None:
        from medview.pacs.listener import ListenerSettings, Peer, StorageListener
        from medview.pacs.service import index_files

        self.settings.setValue("pacs/listen", on)
        self.settings.setValue("pacs/listen_port", self.listen_port.value())
        self.settings.setValue("pacs/listen_remote", self.listen_remote.isChecked())
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if not on:
            self.listen_status.setText("Off")
            return
        peers = tuple(Peer(n.ae_title, n.host) for n in self.nodes if n.ae_title)
        if not peers:
            self.listen_status.setText("Off: configure a PACS node first (only nodes may send)")
            self.listen.setChecked(False)
            return
        bridge = self._bridge
        database = self.database

        def received(paths: list[Path]) -> None:  # a listener thread
            bridge.received.emit(len(index_files(paths, database)))

        our = self.nodes[0].our_ae_title if self.nodes else DEFAULT_OUR_AET
        s = ListenerSettings(
            ae_title=our,
            port=self.listen_port.value(),
            host="0.0.0.0" if self.listen_remote.isChecked() else "127.0.0.1",
            peers=peers,
        )
        try:
            self.listener = StorageListener(s, on_received=received)
            self.listener.start()
        except MedviewError as e:
            self.listener = None
            self.listen_status.setText(f"Off: {e}")
            self.listen.setChecked(False)
            return
        where = "all networks" if self.listen_remote.isChecked() else "this computer only"
        self.listen_status.setText(
            f"On: AE {s.ae_title}, port {self.listener.port}, {where}; "
            f"accepting {', '.join(p.ae_title for p in peers)}"
        )

    def _listener_received(self, count: int) -> None:
        self.notify(
            f"PACS: received instances ({count} series updated) at {time.strftime('%H:%M')}"
        )
        self.retrieved.emit([])

    def shutdown(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None


def send_request(node: PacsNode, paths: list[str]) -> Callable[..., Any]:
    """The background work that sends ``paths`` to ``node`` (C-STORE or STOW-RS)."""

    def work(*, cancel: CancelToken, progress: Progress) -> Any:
        from medview.pacs import service

        return service.send(node, paths, cancel=cancel, progress=progress)

    return work
