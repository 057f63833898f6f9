"""The one bridge between compute functions and the GUI thread.

`TaskRunner.submit` runs ``fn(*args, cancel=token, progress=callback)`` on a worker thread and
delivers progress, result or error as Qt signals on the GUI thread. Submitting with a ``slot``
name cancels the earlier task of that slot (a newer request replaces the one it supersedes).
"""

from __future__ import annotations

import itertools
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from medview.core.errors import CancelledError, MedviewError
from medview.core.tasks import CancelToken

log = logging.getLogger(__name__)


class _Signals(QObject):
    progressed = Signal(int, int, int, str)  # task id, done, total, message
    succeeded = Signal(int, object)
    failed = Signal(int, str, bool)  # task id, message, cancelled


@dataclass
class Task:
    id: int
    name: str
    cancel: CancelToken
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[str], None] | None = None
    on_progress: Callable[[int, int, str], None] | None = None
    slot: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TaskRunner(QObject):
    """Runs compute functions off the GUI thread; callbacks run on the GUI thread."""

    task_started = Signal(object)  # Task
    task_ended = Signal(object)  # Task

    def __init__(self, workers: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medview-task")
        self._signals = _Signals()
        self._signals.progressed.connect(self._on_progress)
        self._signals.succeeded.connect(self._on_success)
        self._signals.failed.connect(self._on_failure)
        self._tasks: dict[int, Task] = {}
        self._slots: dict[str, Task] = {}
        self._ids = itertools.count(1)

    @property
    def running(self) -> list[Task]:
        return list(self._tasks.values())

    def submit(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        slot: str | None = None,
    ) -> Task:
        if slot and slot in self._slots:
            self._slots[slot].cancel.cancel()
        task = Task(next(self._ids), name, CancelToken(), on_done, on_error, on_progress, slot)
        self._tasks[task.id] = task
        if slot:
            self._slots[slot] = task
        sig = self._signals

        def progress(done: int, total: int, message: str = "") -> None:
            sig.progressed.emit(task.id, done, total, message)

        def work() -> None:
            try:
                result = fn(*args, cancel=task.cancel, progress=progress)
            except CancelledError:
                sig.failed.emit(task.id, "cancelled", True)
            except MedviewError as e:
                sig.failed.emit(task.id, str(e), False)
            except Exception as e:  # a bug must become a notice, never a dead window
                # one sentence for the reader; the traceback goes to the log file
                log.error(
                    "task %s failed (%s):\n%s", name, type(e).__name__, traceback.format_exc()
                )
                sig.failed.emit(
                    task.id,
                    f"{name} failed because of an internal error; the details are in the log file.",
                    False,
                )
            else:
                sig.succeeded.emit(task.id, result)

        self.task_started.emit(task)
        self._pool.submit(work)
        return task

    def cancel_all(self) -> None:
        for t in self._tasks.values():
            t.cancel.cancel()

    def shutdown(self, cancel: bool = True) -> None:
        """Stop: cancel what runs and what waits (``cancel``), or let every task asked for
        run to its end (writes that must be made before the database closes)."""
        if cancel:
            self.cancel_all()
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def _finish(self, task_id: int) -> Task | None:
        task = self._tasks.pop(task_id, None)
        if task and task.slot and self._slots.get(task.slot) is task:
            del self._slots[task.slot]
        if task:
            self.task_ended.emit(task)
        return task

    def _on_progress(self, task_id: int, done: int, total: int, message: str) -> None:
        task = self._tasks.get(task_id)
        if task and task.on_progress and not task.cancel.cancelled:
            task.on_progress(done, total, message)

    def _on_success(self, task_id: int, result: object) -> None:
        task = self._finish(task_id)
        if task and task.on_done and not task.cancel.cancelled:
            task.on_done(result)

    def _on_failure(self, task_id: int, message: str, cancelled: bool) -> None:
        task = self._finish(task_id)
        if task and task.on_error and not cancelled:
            task.on_error(message)


class DeviceQueues(QObject):
    """One single-worker `TaskRunner` per device: runs on one device queue in request order,
    different devices run side by side. ``running`` covers all of them."""

    task_started = Signal(object)
    task_ended = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queues: dict[str, TaskRunner] = {}

    def queue(self, device: str) -> TaskRunner:
        if device not in self._queues:
            q = TaskRunner(workers=1, parent=self)
            q.task_started.connect(self.task_started)
            q.task_ended.connect(self.task_ended)
            self._queues[device] = q
        return self._queues[device]

    @property
    def running(self) -> list[Task]:
        return [t for q in self._queues.values() for t in q.running]

    def submit(self, device: str, name: str, fn: Callable[..., Any], **kw: Any) -> Task:
        return self.queue(device).submit(name, fn, **kw)

    def cancel_all(self) -> None:
        for q in self._queues.values():
            q.cancel_all()

    def shutdown(self) -> None:
        for q in self._queues.values():
            q.shutdown()
