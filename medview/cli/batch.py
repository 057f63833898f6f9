"""``medview batch PIPELINE [PATH...] --out DIR``: a pipeline over a cohort, on Ray (this
machine by default, ``--address`` for a cluster), with a progress bar, a results table
(Parquet and CSV) and a summary. The window's "Run on many studies..." runs this command.

Exit codes: 0 every series done; 1 some series failed (their rows say why) or the run was
interrupted; 2 the pipeline or the inputs were refused before any work started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from medview.core.errors import MedviewError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="run a pipeline over many studies (Ray: this machine, or a cluster)",
        description="Run a pipeline file over a cohort: folders, a study-database search or a "
        "PACS query. Results: results.parquet and results.csv in the output folder, one row "
        "per series; per-series files under series/KEY/.",
    )
    p.add_argument("pipeline", metavar="PIPELINE", help="a pipeline file (.toml or .json)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders, files, zips, DICOMDIRs")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the pipeline's)")
    p.add_argument("--resume", action="store_true", help="go on: skip series already done")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="put patient ID, accession and UIDs in the table (default: a pseudonymous key)",
    )
    p.add_argument(
        "--allow-root",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder the pipeline may name files in (besides its own)",
    )
    g = p.add_argument_group("inputs besides PATHs")
    g.add_argument(
        "--database",
        action="store_true",
        help="the studies of the study database that --search/--modality/dates find",
    )
    g.add_argument("--search", default="", help="database: text in name, ID, description")
    g.add_argument("--pacs", metavar="NODE", help="query this configured PACS node")
    g.add_argument("--patient-id", default="")
    g.add_argument("--accession", default="")
    g.add_argument("--study-date", default="", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
    g.add_argument("--modality", default="", help="database and PACS: studies with it")
    g.add_argument("--retrieve", choices=("get", "move", "wado"), default="get")
    r = p.add_argument_group("engine")
    r.add_argument(
        "--engine",
        choices=("ray", "sequential"),
        default="ray",
        help="ray (default) or one series after the other in this process",
    )
    r.add_argument("--address", help="a Ray cluster's address (default: start one here)")
    r.add_argument(
        "--workers",
        type=int,
        default=0,
        help="inference workers (default: one per GPU, else one per core)",
    )
    r.add_argument("--cpus", type=int, default=0, help="cores a local Ray may use")
    r.add_argument("--no-dashboard", action="store_true", help="local Ray without dashboard")
    r.add_argument("--ray-temp-dir", help="where a local Ray keeps its files (default /tmp/ray)")
    p.add_argument(
        "--progress",
        choices=("bar", "jsonl", "none"),
        default="bar",
        help="bar (a terminal), jsonl (one JSON line per update) or none",
    )
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from medview.batch.engine import Job, run_job
    from medview.batch.pipeline import read_pipeline

    err = sys.stderr
    try:
        pipeline = read_pipeline(args.pipeline, roots=tuple(args.allow_root), folder=args.out)
    except MedviewError as e:
        err.write(f"medview batch: refused: {e}\n")
        return 2
    if not pipeline.folder:
        err.write("medview batch: give --out, or [export] folder in the pipeline\n")
        return 2
    out = Path(pipeline.folder)
    if not (args.paths or args.database or args.pacs):
        err.write("medview batch: give PATHs, --database or --pacs NODE\n")
        return 2
    try:
        cohort = _cohort(args, pipeline, out)
    except MedviewError as e:
        err.write(f"medview batch: {e}\n")
        return 2
    err.write(
        f"{pipeline.name}: {len(cohort.items)} series selected"
        f" ({cohort.not_selected} not selected by the rules, {cohort.not_volumes} not volumes, "
        f"{cohort.unreadable} unreadable file(s)); pipeline {pipeline.hash}\n"
    )
    job = Job(
        pipeline,
        cohort.items,
        out,
        resume=args.resume,
        include_identifiers=args.include_identifiers,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        cpus=args.cpus,
        dashboard=not args.no_dashboard,
        ray_temp_dir=args.ray_temp_dir,
    )
    show = _reporter(args.progress, err)
    try:
        summary = run_job(job, show)
    except MedviewError as e:
        err.write(f"\nmedview batch: {e}\n")
        return 2
    except KeyboardInterrupt:
        err.write("\nmedview batch: interrupted; finished series are kept (--resume goes on)\n")
        return 1
    s = summary.status
    show(s, final=True)
    rate = 3600 * s.finished / summary.seconds if summary.seconds else 0
    err.write(
        f"\n{s.done} done, {s.failed} failed, {s.skipped} already done (skipped) of {s.total} "
        f"in {summary.seconds:.1f} s ({rate:.0f} series/hour; {s.engine}, {s.workers} "
        f"worker(s), {s.nodes or 1} node(s))\nresults: {summary.table}\n         {summary.csv}\n"
        "AI results: research use only, not for diagnosis.\n"
    )
    return 1 if s.failed or summary.cancelled else 0


def _cohort(args: argparse.Namespace, pipeline: Any, out: Path) -> Any:
    from medview.batch import inputs

    secret = inputs.secret_of(out)
    cohort = inputs.Cohort()
    if args.paths:
        cohort = inputs.from_folders(
            args.paths, pipeline, secret, out / ".medview-batch" / "extracted"
        )
    if args.database:
        found = inputs.from_database(
            pipeline,
            secret,
            text=args.search,
            modality=args.modality,
            date_from=args.study_date.split("-")[0] if args.study_date else "",
            date_to=args.study_date.split("-")[-1] if args.study_date else "",
        )
        cohort = cohort.merged(found)
    if args.pacs:
        from medview.pacs.query import QueryKeys

        keys = QueryKeys(
            patient_id=args.patient_id,
            accession=args.accession,
            study_date=args.study_date,
            modality=args.modality,
        )
        found = inputs.from_pacs(args.pacs, keys, pipeline, secret, method=args.retrieve)
        cohort = cohort.merged(found)
    return cohort


def _reporter(kind: str, err: TextIO) -> Any:
    last = [0.0, -1.0]  # when, and how many were finished, at the last line

    def show(s: Any, final: bool = False) -> None:
        now = time.monotonic()
        # a terminal's bar is redrawn twice a second; a log gets a line per finished series
        # (and one a minute while a long series runs)
        gap = 0.5 if err.isatty() or kind == "jsonl" else 60.0
        changed = s.finished != last[1]
        if not final and now - last[0] < gap and not (changed and not err.isatty()):
            return
        last[0], last[1] = now, s.finished
        eta = s.eta_seconds
        if kind == "jsonl":
            record = {
                "total": s.total,
                "done": s.done,
                "failed": s.failed,
                "skipped": s.skipped,
                "per_hour": round(s.rate_per_hour, 1),
                "eta_s": None if eta is None else round(eta),
                "engine": s.engine,
                "workers": s.workers,
                "dashboard": s.dashboard,
                "note": s.note,
            }
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
            return
        if s.note and not getattr(show, "noted", False):  # said whatever the progress
            err.write(f"{s.note}\n")
            show.noted = True  # type: ignore[attr-defined]
        if kind == "none":
            return
        if s.dashboard and not getattr(show, "told", False):
            err.write(f"Ray dashboard: http://{s.dashboard}\n")
            show.told = True  # type: ignore[attr-defined]
        todo = max(1, s.total - s.skipped)
        width = 30
        filled = int(width * s.finished / todo)
        eta_text = "--:--:--" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {s.finished}/{todo} "
            f"({s.done} done, {s.failed} failed"
            + (f", {s.skipped} skipped" if s.skipped else "")
            + f") {s.rate_per_hour:.0f}/h ETA {eta_text}"
        )
        err.write(("\r" if err.isatty() else "") + line + ("" if err.isatty() else "\n"))
        err.flush()

    return show
