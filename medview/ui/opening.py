"""Getting studies in and series shown: file and folder dialogs, drops, imports into the
database, opening a stack (records, pixels and what is kept with it read in a worker) into the
session, thumbnails, and the recent-studies menu. No SQLite query runs on the GUI thread."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from medview.core.errors import SeriesAssemblyError
from medview.core.records import DerivedRecord, SeriesRecord
from medview.core.tasks import CancelToken, Progress
from medview.core.volume import Volume
from medview.io.database import ImportResult, StackRow, StudyDatabase
from medview.io.volumes4d import four_d_groups, stack_facts
from medview.session import Opened, StudySession
from medview.ui.bridge import Task, TaskRunner
from medview.ui.browser import StudyBrowserPanel
from medview.ui.four_d import VolumeStepper
from medview.ui.report_actions import dialog_folder, remember_folder


class SeriesOpener(QObject):
    RECENT_MAX = 10

    def __init__(
        self,
        db: StudyDatabase,
        session: StudySession,
        runner: TaskRunner,
        browser: StudyBrowserPanel,
        settings: QSettings,
        show_compare: Callable[[Volume], None],
        notify: Callable[..., None],
        progress: Callable[[int, int, str], None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.db, self.session, self.runner, self.browser = db, session, runner, browser
        self.settings, self.show_compare = settings, show_compare
        self.notify, self.progress, self.parent_widget = notify, progress, parent
        self.volumes = VolumeStepper(self._open, parent.statusBar, self)  # type: ignore[attr-defined]
        self.open_after_import = True
        self.keep_view = False  # the volume being shown keeps the view (4-D stepping)
        self._last_live_refresh = 0.0
        self.recent_labels: dict[str, str] = {}  # study UID -> menu label, read in a worker
        self.recent_menu: QMenu | None = None
        browser.series_activated.connect(lambda row: self.open_stack(row.series_uid, row.key))
        browser.derived_activated.connect(self.open_derived)
        browser.thumbnails_wanted.connect(self._make_thumbnails)
        session.subscribe("series", lambda s: self._remember(s.series.study_uid))  # type: ignore[union-attr]

    # -- getting studies in ---------------------------------------------------------------------
    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self.parent_widget, "Open DICOM files or a zip", dialog_folder(self.settings, "open")
        )
        if files:
            remember_folder(self.settings, "open", files[0])
            self.import_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.parent_widget, "Open a folder of DICOM files", dialog_folder(self.settings, "open")
        )
        if folder:
            parent = os.path.dirname(folder.rstrip("/")) or folder
            remember_folder(self.settings, "open", parent)
            self.import_paths([folder])

    def import_paths(self, paths: Sequence[str], open_first: bool = True) -> Task:
        """Index ``paths`` into the database off the GUI thread, then show the first series."""
        self.open_after_import = open_first
        self._last_live_refresh = 0.0

        def progress(done: int, total: int, message: str) -> None:
            self.progress(done, total, message)
            now = time.monotonic()
            if done and now - self._last_live_refresh > 0.25:  # the database fills by batches
                self._last_live_refresh = now
                self.browser.refresh()

        return self.runner.submit(
            "Importing",
            self.db.import_paths,
            list(paths),
            on_done=self._imported,
            on_error=self.notify,
            on_progress=progress,
            slot="import",
        )

    def _imported(self, result: ImportResult) -> None:
        self.browser.refresh()
        if result.skipped:
            self.notify(f"{len(result.skipped)} file(s) could not be used:")
            for s in result.skipped[:500]:
                self.notify(f"  {os.path.basename(s.path)}: {s.reason}", detail=s.path)
        if not result.series_uids:
            self.notify("No images found in what was opened.")
            return
        if self.open_after_import:
            self.open_stack(result.series_uids[0])

    def retrieved(self, series_uids: list[str]) -> None:
        """Series retrieved from the PACS: listed, and the first shown."""
        self.browser.refresh()
        if series_uids:
            self.open_stack(series_uids[0])

    # -- showing series -------------------------------------------------------------------------
    def open_stack(
        self,
        series_uid: str | None,
        key: str | None = None,
        compare: bool = False,
        study_uid: str | None = None,
    ) -> Task:
        """Open a stack by UID and key (None: the first stack of the series; no UID: the first
        of study ``study_uid``). Records, pixels and what is kept with it are read in the
        worker."""
        session, db = self.session, self.db
        session.keep_segmentation()  # an edit not yet kept is kept before anything is read

        def work(*, cancel: CancelToken, progress: Progress) -> tuple[Opened, list[SeriesRecord]]:
            uid, wanted = series_uid, key
            if uid is None:
                rows = db.stack_rows(study_uid or "")
                if not rows:
                    raise SeriesAssemblyError("that study is no longer in the database")
                uid, wanted = rows[0].series_uid, rows[0].key
            stacks = db.series(uid)
            chosen = next((s for s in stacks if wanted is None or s.key == wanted), None)
            if chosen is None:
                raise SeriesAssemblyError("that series is no longer in the database")
            if compare:
                from medview.io.loader import load_series

                return Opened(chosen, load_series(chosen, cancel=cancel, progress=progress)), []
            # the volumes of a 4-D series on one grid, in order: what the volume slider steps
            group = next(
                g for g in four_d_groups(stacks, stack_facts) if any(s is chosen for s in g)
            )
            return session.read(chosen, cancel=cancel, progress=progress), group

        def done(result: tuple[Opened, list[SeriesRecord]]) -> None:
            opened, volumes = result
            if compare:
                self.show_compare(opened.volume)
            else:
                self.volumes.set_series(volumes)
                self.present(opened)

        return self.runner.submit(
            "Loading",
            work,
            on_done=done,
            on_error=self.notify,
            on_progress=self.progress,
            slot="compare" if compare else "load",
        )

    def open_derived(self, obj: DerivedRecord) -> Task:
        """Open a SEG, RTSTRUCT or SR onto the series it annotates: that series is shown
        first when it is not, then what the object holds joins the reading (one step)."""
        from medview.session.derived import read_derived, series_for, take_derived

        session, db = self.session, self.db
        session.keep_segmentation()
        shown = session.series

        def work(*, cancel: CancelToken, progress: Progress) -> tuple[Opened | None, object]:
            series = series_for(obj, db.study_series(obj.study_uid))
            opened = None
            volume = session.volume
            if shown is None or shown.key != series.key or volume is None:
                opened = session.read(series, cancel=cancel, progress=progress)
                volume = opened.volume
            return opened, read_derived(obj, series, volume, cancel=cancel, progress=progress)

        def done(result: tuple[Opened | None, object]) -> None:
            opened, derived = result
            if opened is not None:
                self.volumes.set_series([opened.series])
                self.present(opened)
            notes = take_derived(session, derived)  # type: ignore[arg-type]
            if derived.segmentation is None:  # type: ignore[attr-defined]
                for note in notes:  # a segmentation's notes are said with it (AiResults)
                    self.notify(note)
            self.notify(f"Opened {obj.title}")

        return self.runner.submit(
            "Opening",
            work,
            on_done=done,
            on_error=self.notify,
            on_progress=self.progress,
            slot="load",
        )

    def open_series(self, series: SeriesRecord) -> Task | None:
        self.volumes.set_series([])
        return self._open(series, None, False)

    def _open(self, series: SeriesRecord, cached: Opened | None, keep_view: bool) -> Task | None:
        """Show ``series``: at once from ``cached``, else read in the worker."""
        if cached is not None:
            self.present(cached, keep_view)
            return None
        self.session.keep_segmentation()  # kept before its series may be read back
        return self.runner.submit(
            "Loading volume" if keep_view else "Loading",
            lambda *, cancel, progress: self.session.read(series, cancel=cancel, progress=progress),
            on_done=lambda opened: self.present(opened, keep_view),
            on_error=self.notify,
            on_progress=self.progress,
            slot="load",
        )

    def present(self, opened: Opened, keep_view: bool = False) -> None:
        """Show what was read; ``keep_view``: another volume of the shown 4-D series."""
        self.volumes.keep(self.session.snapshot())  # the volume left, as the reading left it
        self.keep_view = keep_view
        for notice in self.session.show(opened):
            self.notify(notice)
        self.volumes.shown_volume(opened.series)

    def _make_thumbnails(self, rows: list[StackRow]) -> None:
        db = self.db

        def work(*, cancel: CancelToken, progress: Progress) -> dict[str, object]:
            from medview.viewer.thumbnail import thumbnails

            stacks = [s for r in rows if (s := db.stack(r.series_uid, r.key)) is not None]
            return thumbnails(stacks, cancel=cancel, progress=progress)  # type: ignore[return-value]

        self.runner.submit(
            "Thumbnails", work, on_done=self.browser.set_thumbnails, slot="thumbnails"
        )

    # -- recent studies -------------------------------------------------------------------------
    def recent_studies(self) -> list[str]:
        """Study Instance UIDs, newest first (labels come from the database when shown)."""
        raw = self.settings.value("recent_studies", "")
        return [u for u in str(raw or "").split(",") if u]

    def _remember(self, study_uid: str) -> None:
        recent = self.recent_studies()
        if recent[:1] != [study_uid]:
            recent = [study_uid] + [u for u in recent if u != study_uid]
            self.settings.setValue("recent_studies", ",".join(recent[: self.RECENT_MAX]))
        if study_uid not in self.recent_labels:
            self.refresh_recent()

    def refresh_recent(self) -> None:
        """The labels of the recent studies, read from the database in a worker."""
        db = self.db

        def work(*, cancel: CancelToken, progress: Progress) -> dict[str, str]:
            return {
                r.study_uid: f"{r.patient_name or r.patient_id}  {r.study_date}  {r.description}"
                for r in db.search()
            }

        def done(labels: dict[str, str]) -> None:
            self.recent_labels = labels

        self.runner.submit("Recent studies", work, on_done=done, slot="recent")

    def fill_recent(self) -> None:
        menu = self.recent_menu
        assert menu is not None
        menu.clear()
        for uid in self.recent_studies():
            label = self.recent_labels.get(uid)
            if label is not None:
                act = menu.addAction(label)
                act.triggered.connect(lambda _=False, u=uid: self.open_stack(None, study_uid=u))
        menu.setEnabled(bool(menu.actions()))
