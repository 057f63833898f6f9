"""The PACS nodes dialog: add, edit, remove and test (C-ECHO) the nodes MedView talks to; they are
kept in the user's settings.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medview.core.errors import MedviewError
from medview.core.tasks import CancelToken, Progress
from medview.pacs.nodes import DEFAULT_OUR_AET, PacsNode, load_nodes, save_nodes
from medview.pacs.query import QueryKeys
from medview.ui.bridge import TaskRunner

log = logging.getLogger(__name__)


METHODS = (("C-GET", "get"), ("C-MOVE to our listener", "move"), ("WADO-RS", "wado"))


class PacsNodesDialog(QDialog):
    """Add, edit, remove and test PACS nodes. Passwords go to the OS keyring on OK."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.runner = runner
        try:
            self.nodes: list[PacsNode] = load_nodes()
        except MedviewError as e:
            self.nodes = []
            log.warning("PACS settings unreadable: %s", e)
        self.list = QListWidget()
        self.name = QLineEdit()
        self.aet = QLineEdit()
        self.aet.setMaxLength(16)
        self.host = QLineEdit("127.0.0.1")
        self.port = QSpinBox(minimum=1, maximum=65535, value=104)
        self.our_aet = QLineEdit(DEFAULT_OUR_AET)
        self.our_aet.setMaxLength(16)
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://host:8042/dicom-web (optional)")
        self.tls = QCheckBox("Use TLS")
        self.user = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        for label, w in (
            ("Name", self.name),
            ("AE title", self.aet),
            ("Host", self.host),
            ("Port", self.port),
            ("Our AE title", self.our_aet),
            ("DICOMweb URL", self.url),
            ("", self.tls),
            ("User", self.user),
            ("Password", self.password),
        ):
            form.addRow(label, w)
        add, remove, self.test = QPushButton("Add"), QPushButton("Remove"), QPushButton("Test")
        self.test.setText("Test connection")
        add.clicked.connect(self._add)
        remove.clicked.connect(self._remove)
        self.test.clicked.connect(self.test_connection)
        left = QVBoxLayout()
        left.addWidget(self.list)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        left.addLayout(row)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.test)
        right.addWidget(self.status)
        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 2)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addLayout(body)
        outer.addWidget(buttons)
        self._current = -1
        self.list.currentRowChanged.connect(self._select)
        for n in self.nodes:
            self.list.addItem(n.name)
        if self.nodes:
            self.list.setCurrentRow(0)

    def _form_node(self) -> PacsNode:
        return PacsNode(
            name=self.name.text().strip(),
            ae_title=self.aet.text().strip(),
            host=self.host.text().strip(),
            port=self.port.value(),
            our_ae_title=self.our_aet.text().strip() or DEFAULT_OUR_AET,
            dicomweb_url=self.url.text().strip(),
            tls=self.tls.isChecked(),
            username=self.user.text().strip(),
            password=self.password.text(),
        )

    def _store_form(self) -> None:
        if 0 <= self._current < len(self.nodes):
            self.nodes[self._current] = self._form_node()
            self.list.item(self._current).setText(self.nodes[self._current].name)

    def _select(self, row: int) -> None:
        self._store_form()
        self._current = row
        if not 0 <= row < len(self.nodes):
            return
        n = self.nodes[row]
        self.name.setText(n.name)
        self.aet.setText(n.ae_title)
        self.host.setText(n.host)
        self.port.setValue(int(n.port))
        self.our_aet.setText(n.our_ae_title)
        self.url.setText(n.dicomweb_url)
        self.tls.setChecked(n.tls)
        self.user.setText(n.username)
        self.password.setText(n.password)
        self.status.setText("")

    def _add(self) -> None:
        self._store_form()
        self.nodes.append(PacsNode(name=f"PACS {len(self.nodes) + 1}", ae_title="PACS"))
        self.list.addItem(self.nodes[-1].name)
        self.list.setCurrentRow(len(self.nodes) - 1)

    def _remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.nodes):
            self._current = -1
            del self.nodes[row]
            self.list.takeItem(row)

    def test_connection(self) -> None:
        """C-ECHO (or a QIDO search for a DICOMweb-only node) in the background."""
        try:
            node = self._form_node().checked()
        except MedviewError as e:
            self.status.setText(str(e))
            return
        self.status.setText("Testing…")

        def work(*, cancel: CancelToken, progress: Progress) -> str:
            from medview.pacs import dimse, service

            if node.ae_title:
                r = dimse.echo(node)
                return f"C-ECHO ok in {r.seconds * 1000:.0f} ms" if r.ok else "C-ECHO failed"
            service.search(node, QueryKeys(study_uid="1.2"), "study", web=True)
            return "DICOMweb answered"

        self.runner.submit(
            "Testing the connection",
            work,
            on_done=self.status.setText,
            on_error=lambda m: self.status.setText(f"Failed: {m}"),
            slot="pacs-echo",
        )

    def accept(self) -> None:
        self._store_form()
        try:
            save_nodes(self.nodes)
        except MedviewError as e:
            self.status.setText(str(e))
            return
        super().accept()
