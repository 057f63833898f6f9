"""UI fixtures: a main window on a fresh database, offscreen."""

from __future__ import annotations

from pathlib import Path

import pytest


def open_window(qtbot, folder: Path):  # type: ignore[no-untyped-def]
    """A main window on the database and settings kept in ``folder`` (a second one on the
    same folder is the app restarted)."""
    from PySide6.QtCore import QSettings

    from medview.io.database import StudyDatabase
    from medview.ui.main_window import MainWindow

    db = StudyDatabase(folder / "db.sqlite")
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(db, settings)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    return w


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    w = open_window(qtbot, tmp_path)
    yield w
    w.close()
    w.db.close()


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


class StallProbe:
    """Measures the longest gap between ticks of a 10 ms timer on the GUI thread."""

    def __init__(self) -> None:
        import time

        from PySide6.QtCore import QTimer

        self._clock = time.perf_counter
        self.gaps: list[float] = []
        self._last = self._clock()
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = self._clock()
        self.gaps.append(now - self._last)
        self._last = now

    def __enter__(self) -> StallProbe:
        self._last = self._clock()
        self._timer.start(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.stop()

    @property
    def worst_ms(self) -> float:
        return max(self.gaps[1:], default=0.0) * 1000
