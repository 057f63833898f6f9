"""What a study session reads and prepares in workers, and how it runs its database writes."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medview.core.records import SeriesRecord
from medview.core.results import Classification, Segmentation
from medview.core.tasks import NEVER_CANCELLED, CancelToken
from medview.core.volume import Volume
from medview.report.model import Report
from medview.segedit.editor import Pending, SegmentationEditor
from medview.viewer.annotations import Measurement

Result = Segmentation | Classification
Keeper = Callable[[str, Callable[[], None]], None]  # (what, job): runs a database write


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def at_once(what: str, job: Callable[[], None]) -> None:
    job()


@dataclass
class Opened:
    """What opening a series reads, before anything is shown (`StudySession.read`)."""

    series: SeriesRecord
    volume: Volume
    measurements: list[Measurement] = field(default_factory=list)
    # kept AI results: (kind, result or None when it no longer fits the grid, date kept)
    kept: list[tuple[str, Result | None, str]] = field(default_factory=list)
    risk: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: Report | None = None  # the study's kept report


@dataclass(frozen=True)
class Prepared:
    """A new segmentation's undo step, made in a worker (`StudySession.prepare`)."""

    result: Segmentation
    editor: SegmentationEditor
    fresh: bool  # the editor was made for it (the session had none)
    pending: Pending | None  # None: it changes nothing


class Writes:
    """Runs database writes through ``keeper`` (``keeper(what, job)``: at once, or queued on
    a worker), counting each until it ends, so that a read can wait for those asked for
    before it."""

    def __init__(self, keeper: Keeper) -> None:
        self._keeper = keeper
        self._pending = 0  # writes asked for and not yet made (or failed)
        self._ended = threading.Condition()

    def __call__(self, what: str, job: Callable[[], None]) -> None:
        def counted() -> None:
            try:
                job()
            finally:
                with self._ended:
                    self._pending -= 1
                    self._ended.notify_all()

        with self._ended:
            self._pending += 1
        try:
            self._keeper(what, counted)
        except BaseException:
            with self._ended:  # never queued: nothing to wait for
                self._pending -= 1
            raise

    def wait(self, cancel: CancelToken = NEVER_CANCELLED) -> None:
        """Block until every write asked for so far has been made (or has failed)."""
        with self._ended:
            while self._pending > 0:
                cancel.raise_if_cancelled()
                self._ended.wait(0.1)
