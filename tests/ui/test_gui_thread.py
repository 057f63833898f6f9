"""The window never queries SQLite on its GUI thread: a whole reading (import, open, measure,
run a model, risk, key image, export, recent studies, search, reopen, quit) with every SQL
statement noted with the thread that ran it."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.conftest import DEMO_CT
from tests.ui.conftest import wait_for_volume

CHD = "framingham-chd-10y"


def test_no_sqlite_statement_runs_on_the_gui_thread(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from medview.io.database import StudyDatabase
    from medview.ui.main_window import MainWindow
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    db = StudyDatabase(tmp_path / "db.sqlite")  # opening it (the app's start) may: traced after
    gui = threading.main_thread()
    on_gui: list[str] = []
    on_workers: list[str] = []

    class Traced:
        """The database's connection, noting which thread runs each statement (a Python
        wrapper: SQLite's own trace callback can deadlock threads sharing a connection)."""

        def __init__(self, conn: object) -> None:
            self._conn = conn

        def _note(self, sql: str) -> None:
            (on_gui if threading.current_thread() is gui else on_workers).append(sql.strip()[:60])

        def execute(self, sql: str, *args: object) -> object:
            self._note(sql)
            return self._conn.execute(sql, *args)  # type: ignore[attr-defined]

        def executemany(self, sql: str, *args: object) -> object:
            self._note(sql)
            return self._conn.executemany(sql, *args)  # type: ignore[attr-defined]

        def executescript(self, sql: str) -> object:
            self._note(sql)
            return self._conn.executescript(sql)  # type: ignore[attr-defined]

        def __enter__(self) -> object:
            self._note("BEGIN (transaction)")
            return self._conn.__enter__()  # type: ignore[attr-defined]

        def __exit__(self, *exc: object) -> object:
            return self._conn.__exit__(*exc)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self._conn, name)

    real = db._conn
    db._conn = Traced(real)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(db, settings)
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    idle = lambda: not (window.runner.running or window.keeper.running or window.inference.running)  # noqa: E731
    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    volume = window.controller.state.volume
    g = volume.geometry
    a, b = (tuple(g.index_to_lps([30.0, y, x]).tolist()) for y, x in ((200, 150), (260, 210)))
    window.controller.add_measurement(Measurement(Kind.RULER, View.AXIAL, (a, b)))
    window.models_panel.select("chest-ct-segmentation")
    window.run_model(window.models_panel.selected(), "cpu")
    qtbot.waitUntil(idle, timeout=180000)
    assert window.session.segmentation is not None
    window.report.add_key_image()
    qtbot.waitUntil(lambda: window.risk_panel.study_uid is not None, timeout=10000)
    window.risk_panel.select(CHD)
    csv = tmp_path / "row.csv"
    csv.write_text("age,sysBP,totChol,diabetes,smoking\n66,170,280,1,yes\n")
    window.risk_panel.import_csv(str(csv))
    window.risk_panel.flush()
    window.export_report(out_dir=str(tmp_path / "export"))
    qtbot.waitUntil(lambda: window.session.last_export is not None and idle(), timeout=120000)
    window.opener.recent_menu.aboutToShow.emit()
    assert window.opener.recent_menu.actions()  # the demo study, labelled from the database
    window.browser.search.setText("no such patient")
    window.browser.search.setText("")
    series = window.current_series
    window.opener.open_series(series)  # shown again: measurements and results come back
    qtbot.waitUntil(lambda: idle() and window.session.segmentation is not None, timeout=20000)
    assert len(window.session.measurements.items) == 1
    window.close()
    db._conn = real
    kept = db.ai_results(series.key)  # the reading was kept, by the workers
    db.close()
    assert "segmentation" in kept
    assert on_gui == [], f"SQL on the GUI thread: {sorted(set(on_gui))}"
    assert {"INSERT", "SELECT"} <= {sql.split()[0] for sql in on_workers}
