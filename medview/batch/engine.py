"""Running a cohort: on Ray (local by default, a cluster with an address), or in this process
one series after the other (``engine="sequential"``, and the fallback when Ray is not
installed). The driver only schedules and commits; the series' work runs in Ray's workers:

- ``load`` and ``finish`` are CPU tasks (`medview.batch.steps`);
- inference runs in actors that load each model once and hold it (one per GPU when there are
  GPUs, else one per core, each with its share of the threads);
- at most a few series per actor are in flight, so memory stays flat on any cohort size;
- each row is committed to the journal as it arrives; a killed worker's tasks are retried by
  Ray (tasks ``max_retries``, actors ``max_restarts``/``max_task_retries``).

Ray is imported here only, inside `run_job`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.batch import steps
from medview.batch.inputs import WorkItem
from medview.batch.journal import Journal, write_table
from medview.batch.pipeline import Pipeline
from medview.core.errors import MedviewError
from medview.core.tasks import NEVER_CANCELLED, CancelToken

# Ray counts resources, not threads: an actor books 3/4 of a core and a load or finish task
# 1/4, so with one actor per core two tasks still run beside them (I/O overlapping compute)
ACTOR_CPUS = 0.75
TASK_CPUS = 0.25
IN_FLIGHT_PER_WORKER = 2
RESTARTS = 4  # a killed worker is restarted this many times; its calls are retried


@dataclass
class Job:
    pipeline: Pipeline
    items: list[WorkItem]
    out: Path
    resume: bool = False
    include_identifiers: bool = False
    engine: str = "ray"  # or "sequential"
    address: str | None = None  # a Ray cluster; None starts one on this machine
    workers: int = 0  # inference actors; 0: one per GPU, else one per core
    cpus: int = 0  # a local Ray's cores; 0: all
    dashboard: bool = True
    ray_temp_dir: str | None = None


@dataclass
class Status:
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0  # finished by an earlier run with the same pipeline (``--resume``)
    started: float = field(default_factory=time.monotonic)
    engine: str = ""
    workers: int = 0
    dashboard: str = ""
    nodes: int = 0
    note: str = ""

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate_per_hour(self) -> float:
        elapsed = time.monotonic() - self.started
        return 3600 * self.finished / elapsed if elapsed > 0 and self.finished else 0.0

    @property
    def eta_seconds(self) -> float | None:
        left = self.total - self.skipped - self.finished
        rate = self.rate_per_hour
        return 3600 * left / rate if rate else None


@dataclass
class Summary:
    status: Status
    table: Path
    csv: Path
    seconds: float
    cancelled: bool = False


Report = Callable[[Status], None]


def _nothing(_: Status) -> None:
    pass


def run_job(job: Job, report: Report = _nothing, cancel: CancelToken = NEVER_CANCELLED) -> Summary:
    """Run ``job``; every finished series is in the journal when its row is reported."""
    t0 = time.perf_counter()
    h = job.pipeline.hash
    with Journal(job.out) as journal:
        if not job.resume and journal.count():
            raise MedviewError(
                "the output folder holds the results of an earlier run: give --resume to go "
                "on with it, or choose another folder",
                path=job.out,
            )
        done = journal.done(h) if job.resume else set()
        todo = [i for i in job.items if i.key not in done]
        status = Status(len(job.items), skipped=len(job.items) - len(todo))
        run = journal.start_run(h, len(job.items), status.skipped)
        fin = steps.Finish(job.out, h, job.include_identifiers, _risk_rows(job.pipeline))
        engine = job.engine
        if engine == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                engine = "sequential"
                status.note = (
                    "Ray is not installed: running in this process, one series at a time "
                    "(pip install 'medview[cluster]' for workers and clusters)"
                )
        status.engine = engine

        def commit(row: dict[str, Any]) -> None:
            journal.commit(row)
            if row["status"] == "done":
                status.done += 1
            else:
                status.failed += 1
            journal.computed(run, status.finished)
            report(status)

        report(status)
        cancelled = False
        try:
            if not todo:  # everything was done by an earlier run: no engine to start
                pass
            elif engine == "ray":
                cancelled = _on_ray(job, todo, fin, status, commit, report, cancel)
            else:
                cancelled = _in_process(job, todo, fin, status, commit, cancel)
        finally:
            parquet, text = write_table(journal.rows(h), job.out)
    return Summary(status, parquet, text, time.perf_counter() - t0, cancelled)


def _risk_rows(pipeline: Pipeline) -> dict[str, dict[str, dict[str, str]]]:
    """Each risk model's feature rows by the value of its match column."""
    from medview.risk.rows import read_rows

    out: dict[str, dict[str, dict[str, str]]] = {}
    for step in pipeline.risk:
        if step.features:
            out[step.id] = {r[step.match]: r for r in read_rows(step.features) if r[step.match]}
    return out


def _in_process(
    job: Job,
    todo: list[WorkItem],
    fin: steps.Finish,
    status: Status,
    commit: Callable[[dict[str, Any]], None],
    cancel: CancelToken,
) -> bool:
    models = steps.Models(job.pipeline)
    status.workers = 1
    for item in todo:
        if cancel.cancelled:
            return True
        loaded = steps.load(item, job.out)
        ran = models.run(loaded)
        commit(steps.finish(job.pipeline, fin, loaded, ran, item))
    return False


class ModelWorker(steps.Models):
    """The inference actor: `steps.Models` and where it runs (for the tests and the table)."""

    def pid(self) -> int:
        return os.getpid()


def _on_ray(
    job: Job,
    todo: list[WorkItem],
    fin: steps.Finish,
    status: Status,
    commit: Callable[[dict[str, Any]], None],
    report: Report,
    cancel: CancelToken,
) -> bool:
    import logging

    import ray

    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    env = {k: os.environ[k] for k in ("MEDVIEW_HOME",) if k in os.environ}
    if env:
        options["runtime_env"] = {"env_vars": env}
    if job.address:
        options["address"] = job.address
    else:
        options["include_dashboard"] = job.dashboard
        if job.cpus:
            options["num_cpus"] = job.cpus
        if job.ray_temp_dir:
            options["_temp_dir"] = job.ray_temp_dir
    handlers = _signal_handlers()
    context = ray.init(**options)
    _restore(handlers)
    try:
        status.dashboard = context.dashboard_url or ""
        resources = ray.cluster_resources()
        status.nodes = len([n for n in ray.nodes() if n.get("Alive")])
        gpus = int(resources.get("GPU", 0))
        cpus = resources.get("CPU", 1)
        workers = job.workers or gpus or max(1, int(cpus))
        status.workers = workers
        per_worker = max(1, int(cpus // workers)) if not gpus else 0
        actor = ray.remote(ModelWorker).options(
            num_cpus=0 if gpus else ACTOR_CPUS,
            num_gpus=1 if gpus else 0,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
            scheduling_strategy="SPREAD",
        )
        actors = [actor.remote(job.pipeline, threads=per_worker) for _ in range(workers)]
        load_task = ray.remote(steps.load).options(num_cpus=TASK_CPUS, max_retries=RESTARTS)
        finish_task = ray.remote(steps.finish).options(num_cpus=TASK_CPUS, max_retries=RESTARTS)
        pipeline_ref, fin_ref = ray.put(job.pipeline), ray.put(fin)
        pending = deque(todo)
        busy = dict.fromkeys(range(workers), 0)
        flight: dict[Any, tuple[int, WorkItem]] = {}
        limit = IN_FLIGHT_PER_WORKER * workers + 1
        report(status)
        while pending or flight:
            if cancel.cancelled:
                for ref in flight:
                    ray.cancel(ref, force=True)
                return True
            while pending and len(flight) < limit:
                item = pending.popleft()
                a = min(busy, key=lambda k: busy[k])
                loaded = load_task.remote(item, job.out)
                ran = actors[a].run.remote(loaded)  # type: ignore[attr-defined]
                ref = finish_task.remote(pipeline_ref, fin_ref, loaded, ran, item)
                flight[ref] = (a, item)
                busy[a] += 1
            ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
            for ref in ready:
                a, item = flight.pop(ref)
                busy[a] -= 1
                try:
                    row: dict[str, Any] = ray.get(ref)
                except ray.exceptions.RayError as e:  # retries spent: this series' error row
                    row = _lost(job, fin, item, e)
                commit(row)
            if not ready:
                report(status)
        return False
    finally:
        ray.shutdown()


def _signal_handlers() -> dict[int, Any]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}


def _restore(handlers: dict[int, Any]) -> None:
    """Ray's driver installs a native handler that logs SIGTERM and then dies of it, before
    Python's handler can unwind: measured, 2 of 6 cancels lost the results table that way.
    Python's own handlers go back, so a stop ends ``run_job`` through its ``finally``."""
    import signal

    for number, handler in handlers.items():
        if handler is not None:
            signal.signal(number, handler)


def _lost(job: Job, fin: steps.Finish, item: WorkItem, e: BaseException) -> dict[str, Any]:
    failed = steps.Failed(item.key, "worker", " ".join(f"{type(e).__name__}: {e}".split())[:500])
    return steps.finish(job.pipeline, fin, failed, failed, item)
