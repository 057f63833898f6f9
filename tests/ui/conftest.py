"""UI fixtures: a main window on a fresh database, offscreen."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from medview.io.database import StudyDatabase
    from medview.ui.main_window import MainWindow

    db = StudyDatabase(tmp_path / "db.sqlite")
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(db, settings)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    yield w
    w.close()
    db.close()


def wait_for_volume(qtbot, window, timeout: int = 20000) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(
        lambda: window.controller.state is not None and not window.runner.running, timeout=timeout
    )


def scroll(view, steps: int = 1) -> None:  # type: ignore[no-untyped-def]
    """Send a mouse-wheel event of ``steps`` notches towards the user (next slice)."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    event = QWheelEvent(
        QPointF(50, 50),
        view.mapToGlobal(QPointF(50, 50)),
        QPoint(0, 0),
        QPoint(0, -120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, event)
