"""Decoding in worker processes, so a crashing native decoder cannot take MedView down.

`IsolatedDecoder` keeps a small warm process pool. When a worker dies (abort, segfault, OOM
kill) the pool breaks; the tasks that were in flight are re-run one at a time in a fresh pool to
find the culprit, which is reported as a `DecodeError`; everything else goes on.

A hand-written scheduler over `concurrent.futures` rather than a bare ``executor.map``: the
standard pool fails *every* pending future when one worker dies, with no way to tell which file
did it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

import numpy as np

from medview.core.errors import CancelledError, DecodeError, MedviewError
from medview.core.lifeline import mark_owner, watch_parent
from medview.core.tasks import NEVER_CANCELLED, CancelToken

DecodeFn = Callable[[str], np.ndarray]
T = TypeVar("T")


def _context() -> multiprocessing.context.BaseContext:
    # fork is unsafe in a process with GUI/worker threads; forkserver forks from a clean server
    mark_owner()  # the forkserver and the workers exit when this process is gone
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["medview.io.forkserver_lifeline", "medview.io.decode_worker"])
        return ctx
    return multiprocessing.get_context("spawn")


class IsolatedDecoder:
    """Decode files with ``decode_fn`` (a picklable module-level function) in worker processes."""

    def __init__(self, decode_fn: DecodeFn | None = None, workers: int | None = None) -> None:
        self._decode_fn = decode_fn
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def decode_fn(self) -> DecodeFn:
        """The decoding function (default: `medview.io.decode_worker.decode_file`, imported
        only when something is decoded: it brings pydicom and the codecs)."""
        if self._decode_fn is None:
            from medview.io.decode_worker import decode_file

            self._decode_fn = decode_file
        return self._decode_fn

    def _executor(self, workers: int | None = None) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=workers or self.workers, mp_context=_context(), initializer=watch_parent
            )
        return self._pool

    def _reset(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def warm_up(self) -> None:
        """Start the workers now (e.g. at application start), not on the first decode."""
        with self._lock:
            ex = self._executor()
            list(ex.map(abs, range(self.workers)))

    @property
    def is_warm(self) -> bool:
        return self._pool is not None and not self._pool_is_broken()

    def map_chunks(
        self,
        fn: Callable[[list[str]], list[T]],
        items: list[str],
        chunk: int,
        cancel: CancelToken = NEVER_CANCELLED,
    ) -> Iterator[T]:
        """``fn`` over ``items`` in chunks on the workers, results in order. ``fn`` must not
        crash its process; if a worker dies anyway, the chunk is re-run in this process."""
        chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        with self._lock:
            futures = [self._executor().submit(fn, c) for c in chunks]
        for c, f in zip(chunks, futures, strict=True):
            if cancel.cancelled:
                for g in futures:
                    g.cancel()
                raise CancelledError()
            try:
                yield from f.result()
            except BrokenProcessPool:
                with self._lock:
                    self._reset()
                yield from fn(c)

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def decode(
        self, paths: Iterable[str], *, cancel: CancelToken = NEVER_CANCELLED
    ) -> Generator[tuple[str, np.ndarray | MedviewError], None, None]:
        """Yield ``(path, array or error)`` as files finish, in completion order."""
        with self._lock:
            yield from self._decode(list(paths), cancel)

    def _decode(
        self, paths: list[str], cancel: CancelToken
    ) -> Iterator[tuple[str, np.ndarray | MedviewError]]:
        pending = deque(paths)
        in_flight: dict[Future[np.ndarray], str] = {}
        limit = 2 * self.workers  # bounded, so a crash leaves few suspects to re-run
        try:
            yield from self._run(pending, in_flight, limit, cancel)
        finally:  # consumer stopped early (error, cancel): drop work not yet started
            for f in in_flight:
                f.cancel()

    def _run(
        self,
        pending: deque[str],
        in_flight: dict[Future[np.ndarray], str],
        limit: int,
        cancel: CancelToken,
    ) -> Iterator[tuple[str, np.ndarray | MedviewError]]:
        while pending or in_flight:
            cancel.raise_if_cancelled()  # the caller's finally drops queued work
            suspects: list[str] = []
            while pending and len(in_flight) < limit:
                p = pending.popleft()
                try:
                    in_flight[self._executor().submit(self.decode_fn, p)] = p
                except BrokenProcessPool:
                    suspects.append(p)
                    break
            done, _ = wait(in_flight, timeout=0.25, return_when=FIRST_COMPLETED)
            for f in done:
                p = in_flight.pop(f)
                exc = f.exception()
                if isinstance(exc, BrokenProcessPool):
                    suspects.append(p)
                elif exc is None:
                    yield p, f.result()
                else:
                    yield p, _as_error(exc, p)
            if suspects or self._pool_is_broken():
                suspects.extend(in_flight.values())
                in_flight.clear()
                self._reset()
                yield from self._isolate(suspects, cancel)

    def _pool_is_broken(self) -> bool:
        return bool(self._pool is not None and getattr(self._pool, "_broken", False))

    def _isolate(
        self, suspects: list[str], cancel: CancelToken
    ) -> Iterator[tuple[str, np.ndarray | MedviewError]]:
        """Run each suspect alone so a crash is pinned on the file that caused it."""
        for p in suspects:
            cancel.raise_if_cancelled()
            try:
                yield p, self._executor().submit(self.decode_fn, p).result()
            except BrokenProcessPool:
                self._reset()
                yield (
                    p,
                    DecodeError(
                        "the pixel decoder crashed on this file (corrupt or hostile data); "
                        "MedView carried on without it",
                        path=p,
                    ),
                )
            except Exception as e:  # any decoder failure is reported per file
                yield p, _as_error(e, p)


def _as_error(exc: BaseException, path: str) -> MedviewError:
    if isinstance(exc, MedviewError):
        return exc
    if isinstance(exc, MemoryError):
        return DecodeError("not enough memory to decode this file", path=path)
    return DecodeError(f"cannot decode pixel data: {type(exc).__name__}: {exc}", path=path)


_default: IsolatedDecoder | None = None
_default_lock = threading.Lock()


def default_decoder() -> IsolatedDecoder:
    """The process-wide decoder pool (created on first use, shut down at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = IsolatedDecoder()
            atexit.register(_default.shutdown)
        return _default
