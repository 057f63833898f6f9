"""Composition root of the GUI: settings, logging, database, main window; shutdown order."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
from collections.abc import Sequence
from logging.handlers import RotatingFileHandler
from types import TracebackType
from typing import Any

from medview.core.paths import data_dir
from medview.ui.theme import apply_dark_theme, apply_theme

log = logging.getLogger("medview")


def setup_logging() -> str:
    """Log to ``<data dir>/medview.log`` (rotated). Messages never carry patient data."""
    path = str(data_dir() / "medview.log")
    handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not any(isinstance(h, RotatingFileHandler) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def _notices_class() -> Any:
    from PySide6.QtCore import QObject, Signal

    class Notices(QObject):
        raised = Signal(str)

    return Notices


def create_window(paths: Sequence[str] = ()) -> Any:
    """Build the application objects (also used by the UI tests). Returns the main window."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from medview.io.database import StudyDatabase
    from medview.io.isolation import default_decoder
    from medview.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MedView")
    from PySide6.QtGui import QGuiApplication, QIcon

    from medview.core.shipped import shipped

    # the menu entry `medview desktop install` adds, and its icon
    QGuiApplication.setDesktopFileName("org.medview.MedView")
    QGuiApplication.setWindowIcon(QIcon(str(shipped("resources") / "icons" / "medview.svg")))
    apply_dark_theme(app)
    setup_logging()
    settings = QSettings(str(data_dir() / "settings.ini"), QSettings.Format.IniFormat)
    apply_theme(app, str(settings.value("theme", "dark")))
    window = MainWindow(StudyDatabase(), settings)

    # a signal: any thread may emit, the GUI thread delivers; owned by the window
    notices = _notices_class()(window)
    notices.raised.connect(window.notify)

    def excepthook(
        kind: type[BaseException], exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        notices.raised.emit(f"Unexpected error ({kind.__name__}); details are in the log file.")

    sys.excepthook = excepthook
    threading.excepthook = lambda a: excepthook(a.exc_type, a.exc_value, a.exc_traceback)
    # start the decoder workers now, off the GUI thread, so the first load does not wait
    threading.Thread(target=default_decoder().warm_up, name="decoder-warmup", daemon=True).start()
    if paths:
        QTimer.singleShot(0, lambda: window.import_paths(list(paths)))
    return window


def main(paths: Sequence[str] = ()) -> int:
    from PySide6.QtWidgets import QApplication

    window = create_window(paths)
    if window.settings.value("geometry") is None:
        window.resize(1500, 900)
    window.show()
    log.info("MedView started")
    app = QApplication.instance()
    quit_on_signals(app)
    rc = app.exec()  # type: ignore[union-attr]
    window.close()  # after SIGTERM/SIGINT too: workers cancelled, settings and results kept
    window.db.close()
    from medview.io.isolation import default_decoder

    default_decoder().shutdown()
    log.info("MedView ended")
    return int(rc)


def quit_on_signals(app: Any) -> None:
    """SIGTERM (logout, ``kill``) and SIGINT (Ctrl+C) end the event loop like File > Quit.

    Python runs signal handlers only when the interpreter has control, which Qt's event loop
    does not give back: the signal wakes a socket that Qt watches (``set_wakeup_fd``)."""
    import signal
    import socket

    from PySide6.QtCore import QSocketNotifier

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def woken() -> None:
        with contextlib.suppress(OSError):
            reader.recv(64)

    notifier.activated.connect(woken)
    app._medview_signal_sockets = (reader, writer, notifier)  # kept alive with the app

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: closing", signum)
        app.quit()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
