"""Cancellation and progress for compute functions that run off the GUI thread.

A compute function has the shape ``run(inputs, *, cancel: CancelToken, progress: Progress)``; it
calls ``cancel.raise_if_cancelled()`` at safe points and ``progress(done, total, message)``.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from medview.core.errors import CancelledError


class CancelToken:
    """Thread-safe cancellation flag shared between a requester and a worker."""

    def __init__(self, event: Any = None) -> None:
        # any object with set()/is_set(): a multiprocessing Event reaches a worker process
        self._event = event if event is not None else threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


class Progress(Protocol):
    """Receives ``done`` of ``total`` units of work; ``total`` may be 0 when unknown."""

    def __call__(self, done: int, total: int, message: str = "") -> None: ...


def no_progress(done: int, total: int, message: str = "") -> None:
    """A `Progress` that ignores reports."""


NEVER_CANCELLED = CancelToken()
