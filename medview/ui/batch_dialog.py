"""File > Run on many studies...: submits the same job as ``medview batch`` (it runs that
command, so the window and the terminal share one engine and one results format) and shows its
progress: done and failed counts, rate, time left, and what the command says. Cancel stops the
job; finished series are kept and a later run with "Resume" goes on from them."""

from __future__ import annotations

import json
import os
from typing import Any

from PySide6.QtCore import QProcess, QSettings, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medview.core.shipped import command

ENGINES = (
    ("Ray on this computer", "ray"),
    ("Ray cluster at an address", "cluster"),
    ("In one process, one series at a time", "sequential"),
)


class BatchDialog(QDialog):
    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run on many studies")
        self.settings = settings
        self.process: QProcess | None = None
        self.status: dict[str, Any] = {}
        self._stdout = b""
        self._cancelled = False
        form = QFormLayout()
        self.pipeline = QLineEdit(str(settings.value("batch/pipeline", "")))
        form.addRow("Pipeline file", self._with_browse(self.pipeline, self._pick_pipeline))
        self.folders = QListWidget()
        self.folders.setMaximumHeight(90)
        add, remove = QPushButton("Add folder…"), QPushButton("Remove")
        add.clicked.connect(self._add_folder)
        remove.clicked.connect(lambda: self.folders.takeItem(self.folders.currentRow()))
        box = QVBoxLayout()
        box.addWidget(self.folders)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch()
        box.addLayout(row)
        holder = QWidget()
        holder.setLayout(box)
        form.addRow("Study folders", holder)
        self.database = QCheckBox("and the studies of the study database that match")
        self.search = QLineEdit()
        self.search.setPlaceholderText("text in name, ID, description (empty: all)")
        self.modality = QLineEdit()
        self.modality.setPlaceholderText("modality, e.g. CT")
        self.modality.setMaximumWidth(120)
        row_db = QHBoxLayout()
        row_db.addWidget(self.database)
        row_db.addWidget(self.search)
        row_db.addWidget(self.modality)
        form.addRow("", self._boxed(row_db))
        self.out = QLineEdit(str(settings.value("batch/out", "")))
        form.addRow("Results folder", self._with_browse(self.out, self._pick_out))
        self.engine = QComboBox()
        for label, key in ENGINES:
            self.engine.addItem(label, key)
        self.address = QLineEdit()
        self.address.setPlaceholderText("host:port of the cluster's head")
        self.address.setEnabled(False)
        self.engine.currentIndexChanged.connect(
            lambda _: self.address.setEnabled(self.engine.currentData() == "cluster")
        )
        row_engine = QHBoxLayout()
        row_engine.addWidget(self.engine)
        row_engine.addWidget(self.address)
        form.addRow("Run with", self._boxed(row_engine))
        self.resume = QCheckBox("Resume: skip the series this folder already holds")
        self.identifiers = QCheckBox("Put patient IDs and UIDs in the table")
        form.addRow("", self.resume)
        form.addRow("", self.identifiers)
        self.bar = QProgressBar()
        self.bar.setFormat("%v / %m")
        self.summary = QLabel("Research use only, not for diagnosis.")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open results folder")
        close = QPushButton("Close")
        self.cancel_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self._open_results)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for b in (self.run_button, self.cancel_button, self.open_button):
            buttons.addWidget(b)
        buttons.addStretch()
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addWidget(self.summary)
        layout.addWidget(self.log)
        layout.addLayout(buttons)
        self.resize(720, 620)

    # -- form -----------------------------------------------------------------------------------
    def _with_browse(self, edit: QLineEdit, pick: Any) -> QWidget:
        row = QHBoxLayout()
        row.addWidget(edit)
        b = QPushButton("Browse…")
        b.clicked.connect(pick)
        row.addWidget(b)
        return self._boxed(row)

    @staticmethod
    def _boxed(layout: Any) -> QWidget:
        layout.setContentsMargins(0, 0, 0, 0)
        w = QWidget()
        w.setLayout(layout)
        return w

    def _pick_pipeline(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Pipeline file", self.pipeline.text(), "Pipelines (*.toml *.json)"
        )
        if path:
            self.pipeline.setText(path)

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder of studies")
        if path:
            self.folders.addItem(path)

    def _pick_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Results folder", self.out.text())
        if path:
            self.out.setText(path)

    def arguments(self) -> list[str]:
        """``medview batch``'s arguments for the form as it is."""
        args = ["batch", self.pipeline.text().strip()]
        args += [self.folders.item(i).text() for i in range(self.folders.count())]
        if self.out.text().strip():
            args += ["--out", self.out.text().strip()]
        if self.database.isChecked():
            args += ["--database", "--search", self.search.text().strip()]
            if self.modality.text().strip():
                args += ["--modality", self.modality.text().strip()]
        engine = self.engine.currentData()
        if engine == "sequential":
            args += ["--engine", "sequential"]
        elif engine == "cluster":
            args += ["--address", self.address.text().strip()]
        if self.resume.isChecked():
            args.append("--resume")
        if self.identifiers.isChecked():
            args.append("--include-identifiers")
        return [*args, "--progress", "jsonl"]

    # -- the job --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.process is not None:
            return
        self.settings.setValue("batch/pipeline", self.pipeline.text().strip())
        self.settings.setValue("batch/out", self.out.text().strip())
        self.log.clear()
        self.status = {}
        self._stdout = b""
        self._cancelled = False
        p = QProcess(self)
        program, *first = command()
        p.setProgram(program)
        p.setArguments([*first, *self.arguments()])
        p.readyReadStandardOutput.connect(self._read_stdout)
        p.readyReadStandardError.connect(
            lambda: self._say(bytes(p.readAllStandardError().data()).decode(errors="replace"))
        )
        p.finished.connect(self._finished)
        self.process = p
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.open_button.setEnabled(False)
        self.summary.setText("Starting…")
        p.start()

    def cancel(self) -> None:
        if self.process is not None:
            self._say("Cancelling: finished series are kept (Resume goes on from them).\n")
            self._cancelled = True
            self.process.terminate()  # SIGTERM: the command writes its table and stops Ray

    def _read_stdout(self) -> None:
        assert self.process is not None
        self._stdout += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            if not text.startswith("{"):  # Ray's own messages
                self._say(text + "\n")
                continue
            try:
                status = json.loads(text)
            except ValueError:
                continue
            for key, say in (("note", "{}"), ("dashboard", "Ray dashboard: http://{}")):
                if status.get(key) and status[key] != self.status.get(key):
                    self._say(say.format(status[key]) + "\n")
            self.status = status
            self._show_status()

    def _show_status(self) -> None:
        s = self.status
        todo = max(1, s["total"] - s["skipped"])
        self.bar.setMaximum(todo)
        self.bar.setValue(s["done"] + s["failed"])
        eta = s.get("eta_s")
        left = "" if not eta else f", about {eta // 60} min {eta % 60} s left"
        skipped = f", {s['skipped']} already done" if s["skipped"] else ""
        self.summary.setText(
            f"{s['done']} done, {s['failed']} failed{skipped} of {s['total']} · "
            f"{s['per_hour']:.0f} series/hour{left} · {s['engine']}, {s['workers']} worker(s)"
            " · research use only, not for diagnosis"
        )

    def _say(self, text: str) -> None:
        self.log.moveCursor(self.log.textCursor().MoveOperation.End)
        self.log.insertPlainText(text)

    def _finished(self, code: int, _status: Any) -> None:
        self.process = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        out = self.out.text().strip()
        self.open_button.setEnabled(bool(out) and os.path.isdir(out))
        verdict = {0: "Finished", 1: "Finished with failures"}.get(code, "Not run")
        if self._cancelled:
            verdict = "Cancelled; the finished series are kept (Resume goes on from them)"
            self.resume.setChecked(True)
        self.summary.setText(f"{verdict}. " + self.summary.text())

    def _open_results(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.out.text().strip()))

    def closeEvent(self, event: Any) -> None:
        if self.process is not None:
            self.process.terminate()
            if not self.process.waitForFinished(15000):
                self.process.kill()
        super().closeEvent(event)
