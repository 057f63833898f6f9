"""Model runs in a worker process, so that a native crash (a segfault in a library, an abort,
the kernel's out-of-memory killer) costs that run and never the window or the reading.

One long-lived child per `InferenceProcess` (torch and the model libraries are imported once,
not per run), started with ``spawn`` (a fresh interpreter: forking a process with GUI and
worker threads is unsafe). A run sends the compute function (a module-level function, pickled
by name), the volume and the manifest; the child answers with progress, then the result or the
error. Cancel sets a shared event that the child's `CancelToken` reads. The child watches its
parent and exits with it (`medview.core.lifeline`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from medview.core.errors import CancelledError, InferenceError, MedviewError
from medview.core.geometry import Geometry
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume

log = logging.getLogger(__name__)


class InferenceCrashedError(InferenceError):
    """The worker process died during a run (native crash, abort, killed)."""


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _serve(conn: Connection, cancel_event: Any) -> None:
    """The child's loop: one request at a time until the parent closes the pipe."""
    from medview.core.lifeline import watch_parent

    watch_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is the parent's
    token = CancelToken(cancel_event)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        fn, args, kwargs = request
        for a in args:  # arrays arrive writeable; results must not alias them for writing
            array = getattr(a, "array", None)
            if array is not None:
                array.setflags(write=False)

        def progress(done: int, total: int, message: str = "") -> None:
            conn.send(("progress", done, total, message))

        try:
            result = fn(*args, cancel=token, progress=progress, **kwargs)
        except CancelledError:
            conn.send(("cancelled",))
        except MedviewError as e:
            detail = traceback.format_exc() if e.__cause__ is not None else ""
            conn.send(("error", type(e).__name__, str(e), detail))
        except Exception as e:  # the parent shows one sentence and logs the traceback
            conn.send(
                (
                    "error",
                    type(e).__name__,
                    "The model run failed because of an internal error.",
                    traceback.format_exc(),
                )
            )
        else:
            conn.send(("done", result))


class InferenceProcess:
    """A worker process that runs compute functions ``fn(*args, cancel=, progress=)``."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self._cancel = self._ctx.Event()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _ensure(self) -> tuple[Any, Connection]:
        if self._proc is None or not self._proc.is_alive():
            self._drop()
            ours, theirs = self._ctx.Pipe()
            proc = self._ctx.Process(
                target=_serve, args=(theirs, self._cancel), name="medview-inference", daemon=True
            )
            proc.start()
            theirs.close()
            self._proc, self._conn = proc, ours
        assert self._conn is not None
        return self._proc, self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
        self._proc, self._conn = None, None

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
        **kwargs: Any,
    ) -> Any:
        """``fn(*args, **kwargs)`` in the worker; its result, or its error raised here. A crash
        of the worker raises `InferenceCrashedError`; the next run starts a fresh worker."""
        with self._lock:
            proc, conn = self._ensure()
            self._cancel.clear()
            try:
                conn.send((fn, args, kwargs))
            except (BrokenPipeError, OSError) as e:
                self._drop()
                raise InferenceCrashedError("the model worker could not be reached") from e
            while True:
                if cancel.cancelled:
                    self._cancel.set()
                try:
                    ready = conn.poll(0.1)
                    reply = conn.recv() if ready else None
                except (EOFError, OSError):
                    reply, ready = None, True
                if reply is None:
                    if ready or not proc.is_alive():
                        proc.join(5)
                        code = proc.exitcode
                        self._drop()
                        raise InferenceCrashedError(
                            f"the model run crashed ({_signal_name(code)}) in its worker "
                            "process; MedView and the reading are unaffected"
                        )
                    continue
                kind = reply[0]
                if kind == "progress":
                    progress(reply[1], reply[2], reply[3])
                elif kind == "done":
                    return reply[1]
                elif kind == "cancelled":
                    raise CancelledError()
                else:
                    if len(reply) > 3 and reply[3]:
                        log.error("model run failed in the worker:\n%s", reply[3])
                        raise InferenceError(f"{reply[2]} The details are in the log file.")
                    raise InferenceError(reply[2])

    def shutdown(self) -> None:
        """Cancel what runs and end the worker."""
        self._cancel.set()
        if not self._lock.acquire(timeout=10):  # a run stuck in native code: end it
            proc = self._proc
            if proc is not None:
                proc.kill()
            self._lock.acquire()
        try:
            if self._conn is not None and self.alive:
                with contextlib.suppress(OSError):
                    self._conn.send(None)
                self._proc.join(5)
            self._drop()
        finally:
            self._lock.release()


def on_source_grid(result: Any, source: Volume) -> Any:
    """``result`` with every image that came back on ``source``'s grid sharing ``source``'s
    `Geometry` object again (pickling across the process boundary copied it)."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        return result
    changes = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, Volume) and _same_grid(value.geometry, source.geometry):
            value.array.setflags(write=False)
            changes[f.name] = dataclasses.replace(value, geometry=source.geometry)
    return dataclasses.replace(result, **changes) if changes else result


def _same_grid(a: Geometry, b: Geometry) -> bool:
    return a.shape == b.shape and np.array_equal(a.affine, b.affine)
