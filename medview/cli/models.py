"""``medview models`` (list, import, import-hdbet) and ``medview run-model``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from typing import Any

from medview.core.errors import MedviewError
from medview.core.records import SeriesRecord
from medview.io.scan import pick_series, scan

log = logging.getLogger("medview")


def cmd_models(args: argparse.Namespace) -> int:
    from medview.inference.registry import list_packages, user_models_dir

    if args.models_command == "import-hdbet":
        from medview.inference.hdbet import import_hdbet

        try:
            m = import_hdbet(user_models_dir(), folds=args.folds)
        except MedviewError as e:
            sys.stderr.write(f"medview models import-hdbet: {e.message}\n")
            return 1
        sys.stdout.write(f"imported {m.id} ({m.name} {m.version}) into {m.folder}\n")
        return 0
    if args.models_command == "import":
        from medview.inference.bundle import import_bundle

        try:
            m = import_bundle(args.path, user_models_dir())
        except MedviewError as e:
            sys.stderr.write(f"medview models import: refused: {e.message}\n")
            return 1
        sys.stdout.write(f"imported {m.id} ({m.task}, {m.name} {m.version}) into {m.folder}\n")
        return 0
    entries = list_packages()
    rows = [
        {
            "folder": str(e.folder),
            "id": e.manifest.id if e.manifest else None,
            "name": e.manifest.name if e.manifest else None,
            "version": e.manifest.version if e.manifest else None,
            "task": e.manifest.task if e.manifest else None,
            "modality": e.manifest.modality if e.manifest else None,
            "refused": e.error,
        }
        for e in entries
    ]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in rows:
            if r["refused"]:
                sys.stdout.write(f"REFUSED {r['folder']}: {r['refused']}\n")
            else:
                sys.stdout.write(
                    f"{r['id']:<28} {r['task']:<15} {r['modality'] or '-':<4} "
                    f"{r['name']} {r['version']}\n"
                )
        sys.stdout.write(f"{len(rows)} model package(s)\n")
    return 0


def cmd_run_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medview.core.results import Segmentation
    from medview.export.nifti import write_nifti
    from medview.export.summary import segmentation_summary
    from medview.inference.domain import OutsideDomainError
    from medview.inference.registry import find_model
    from medview.session import StudySession

    try:
        manifest = find_model(args.model_id)
    except MedviewError as e:
        sys.stderr.write(f"medview run-model: {e.message}\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="medview-") as tmp:
        series = scan([args.path], extract_dir=tmp).series
        chosen = pick_series(series, args.series)
        if chosen is None:
            sys.stderr.write(
                "medview run-model: choose one series with --series (see `medview info`)\n"
            )
            return 2
        try:
            # the same session operations as the window's: open the series, run the model
            session = StudySession()
            volume = session.open(chosen)
            if manifest.takes_click:
                from medview.cli.click import run_click_model

                return run_click_model(args, manifest, chosen, volume, session)
            if args.click:
                sys.stderr.write(f"medview run-model: {manifest.id} takes no --click\n")
                return 2
            options = {} if manifest.task == "classification" else {"uncertainty": args.uncertainty}
            result = session.run_model(
                manifest, anyway=args.run_anyway, device=args.device, **options
            )
            if not isinstance(result, Segmentation):
                return _write_classification(result, args, chosen)
        except OutsideDomainError as e:
            sys.stderr.write(
                f"medview run-model: {e.message}\n(--run-anyway runs it and marks the result "
                "as outside the model's domain)\n"
            )
            return 1
        except MedviewError as e:
            sys.stderr.write(f"medview run-model: {e}\n")
            if e.__cause__ is not None:  # the CLI has no log file: the cause, in one line
                sys.stderr.write(f"  cause: {type(e.__cause__).__name__}: {e.__cause__}\n")
            return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_nifti(result.labels, out / "labels.nii.gz")
    if result.uncertainty is not None:
        write_nifti(result.uncertainty, out / "uncertainty.nii.gz")
    prov = result.provenance
    assert prov is not None  # the engine always fills it
    summary = segmentation_summary(result, chosen, volume)
    _write_summary(out, summary)
    sys.stdout.write(
        f"{prov.name}: {len(result.stats)} label(s) in "
        f"{prov.seconds:.1f} s on {prov.device}; wrote {out}\n"
        f"{result.research_use}\n"
    )
    for note in result.notes:
        sys.stderr.write(f"warning: {note}\n")
    return 0


def _write_summary(out: Any, summary: dict[str, Any]) -> None:
    from medview.export.summary import write_summary

    write_summary(out, summary)


def _write_classification(result: Any, args: argparse.Namespace, chosen: SeriesRecord) -> int:
    from pathlib import Path

    from medview.export.nifti import write_nifti
    from medview.export.summary import classification_summary

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if result.heatmap is not None:
        write_nifti(result.heatmap, out / "heatmap.nii.gz")
    summary = classification_summary(result, chosen)
    _write_summary(out, summary)
    sys.stdout.write(
        f"{result.provenance.name}: {result.finding} {result.finding_probability:.3f} "
        f"({result.aggregation}); wrote {out}\n{result.research_use}\n"
    )
    for note in result.notes:
        sys.stderr.write(f"warning: {note}\n")
    return 0
