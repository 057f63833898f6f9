"""Errors become notices, logs carry no patient data, 2-D images get a single native view."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from medview.core.paths import data_dir
from medview.viewer.mpr import View
from tests.conftest import DEMO_CT, pydicom_data_dir
from tests.ui.conftest import wait_for_volume


def test_worker_bug_becomes_a_notice(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    def broken(*, cancel, progress):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("boom")

    window.runner.submit("Broken job", broken, on_error=window.notify)
    qtbot.waitUntil(lambda: window.notices.count() > 0, timeout=5000)
    notice = window.notices.item(0).text()
    # one sentence for the reader, no Python in it; the traceback is in the log
    assert notice == (
        "Broken job failed because of an internal error; the details are in the log file."
    )
    assert "ZeroDivisionError" not in notice and "Traceback" not in notice
    assert window.isVisible()


def test_uncaught_exceptions_anywhere_become_notices(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sys

    from medview.app import create_window

    old_hook, old_thread_hook = sys.excepthook, threading.excepthook
    w = create_window()
    qtbot.addWidget(w)
    try:
        try:
            raise KeyError("gui-thread bug")
        except KeyError:
            sys.excepthook(*sys.exc_info())
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
        qtbot.waitUntil(lambda: w.notices.count() >= 2, timeout=5000)
        texts = [w.notices.item(i).text() for i in range(w.notices.count())]
        assert any("KeyError" in x for x in texts) and any("ZeroDivisionError" in x for x in texts)
        log = (data_dir() / "medview.log").read_text()
        assert "gui-thread bug" in log and "ZeroDivisionError" in log
    finally:
        sys.excepthook, threading.excepthook = old_hook, old_thread_hook
        w.close()
        w.db.close()
        root = logging.getLogger()
        for h in list(root.handlers):
            if h.__class__.__name__ == "RotatingFileHandler":
                root.removeHandler(h)
                h.close()


def test_log_has_no_patient_names_or_ids(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from medview.app import setup_logging

    path = setup_logging()
    try:
        window.import_paths([str(DEMO_CT)])
        wait_for_volume(qtbot, window)
        logging.getLogger("medview").info("opened a study")
        text = Path(path).read_text()
        assert "opened a study" in text
        for phi in ("Demo^ChestCT", "DEMO-LUNG2", "ChestCT"):
            assert phi not in text
    finally:
        root = logging.getLogger()
        for h in list(root.handlers):
            if h.__class__.__name__ == "RotatingFileHandler":
                root.removeHandler(h)
                h.close()


def test_projection_image_shows_in_one_native_view(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(pydicom_data_dir() / "RG1_UNCR.dcm")])
    wait_for_volume(qtbot, window)
    views = window.viewer.visible_views()
    assert [v.view for v in views] == [View.NATIVE]
    assert window.controller.state.invert  # MONOCHROME1 shown inverted
    assert views[0].rendered().shape == (1955, 1841)


def test_colour_image_renders_rgb(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(pydicom_data_dir() / "US1_UNCR.dcm")])
    wait_for_volume(qtbot, window)
    argb = window.viewer.visible_views()[0].rendered()
    r, g = (argb >> 16) & 0xFF, (argb >> 8) & 0xFF
    assert (r != g).any()  # real colour, not grey
