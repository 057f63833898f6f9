"""``medview export PATH --series UID [--seg LABELMAP.nii.gz] [--measurements FILE.json]
--out DIR [--deidentify] [--zip]``: the report bundle without a display.

A label map written by ``medview run-model`` carries its segments (names, colours, SNOMED CT
codes) and provenance (model, version, weights, device, run time) in the ``summary.json``
beside it. Any other label map is exported as a manual segmentation.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from medview.cli.progress import printer
from medview.core.colours import PALETTE
from medview.core.errors import MedviewError

log_name = "medview export"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="write the report bundle (PDF, SEG, SR, NIfTI, PNG)")
    p.add_argument("path", metavar="PATH", help="the study: files, a folder, a zip or DICOMDIR")
    p.add_argument("--series", help="series key or Series Instance UID (see `medview info`)")
    p.add_argument("--seg", metavar="LABELMAP.nii.gz", help="a label map on the series' grid")
    p.add_argument("--measurements", metavar="FILE.json", help="measurements (viewer format)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--deidentify", action="store_true", help="PS3.15 basic profile copy")
    p.add_argument("--zip", action="store_true", help="write one .zip instead of a folder")
    p.add_argument(
        "--fractional", action="store_true", help="write a fractional SEG (default: binary)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_export)


def _segmentation(path: str, volume: Any) -> Any:
    """A label map file as a segmentation of ``volume``. Beside a ``medview run-model`` result,
    its ``summary.json`` gives the segments (names, colours, SNOMED CT codes) and provenance;
    any other label map is a manual segmentation with numbered segments."""
    from medview.core.results import Provenance, Segment, segmentation_of
    from medview.core.volume import Volume
    from medview.export.bundle import labels_from_nifti

    arr = labels_from_nifti(path, volume)
    labels = Volume(arr, volume.geometry, volume.frame_of_reference_uid, volume.series_uid)
    summary_path = Path(path).parent / "summary.json"
    described: dict[int, Segment] = {}
    prov = None
    notes: tuple[str, ...] = ()
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
            notes = tuple(str(n) for n in summary.get("notes", ()))
            for lb in summary.get("labels", []):
                c = lb.get("color") or PALETTE[(int(lb["value"]) - 1) % len(PALETTE)]
                described[int(lb["value"])] = Segment(
                    int(lb["value"]),
                    str(lb["name"]),
                    (int(c[0]), int(c[1]), int(c[2])),
                    str(lb.get("snomed_code", "")),
                    str(lb.get("snomed_meaning", "")),
                    bool(lb.get("finding", False)),
                )
            model = summary.get("model", {})
            prov = Provenance(
                model_id=str(model.get("id", "")),
                name=str(model.get("name", "")),
                version=str(model.get("version", "")),
                weights_sha256=str(model.get("weights_sha256", "")),
                device=str(summary.get("device", "")),
                seconds=float(summary.get("seconds", 0.0)),
                date=str(summary.get("date", ""))
                or _dt.datetime.fromtimestamp(summary_path.stat().st_mtime).isoformat(
                    timespec="seconds"
                ),
            )
        except (ValueError, KeyError, TypeError, OSError):
            described, prov = {}, None
    segments = tuple(
        described.get(v) or Segment(v, f"label {v}", PALETTE[(v - 1) % len(PALETTE)])
        for v in sorted(int(x) for x in np.unique(arr) if x)
    )
    return segmentation_of(volume, labels, segments, prov, notes)


def _measurements(path: str) -> list[Any]:
    """The measurements of a JSON file (a list, or {"measurements": [...]}) as typed objects."""
    from medview.viewer.annotations import Measurement

    data = json.loads(Path(path).read_text())
    items = data.get("measurements", []) if isinstance(data, dict) else data
    return [Measurement.from_dict(d) for d in items]


def cmd_export(args: argparse.Namespace) -> int:
    from medview.export.content import ExportOptions
    from medview.io.scan import pick_series, scan
    from medview.session import StudySession

    with tempfile.TemporaryDirectory(prefix="medview-") as tmp:
        found = scan([args.path], extract_dir=tmp).series
        chosen = pick_series(found, args.series)
        if chosen is None:
            sys.stderr.write(f"{log_name}: choose one series with --series (see `medview info`)\n")
            return 2
        try:
            # the same session operations as the window's: open, accept the segmentation,
            # measure, export
            session = StudySession()
            volume = session.open(chosen)
            if args.seg:
                session.accept(_segmentation(args.seg, volume))
            if args.measurements:
                for m in _measurements(args.measurements):
                    session.add_measurement(m)
            options = ExportOptions(
                deidentify=args.deidentify,
                zip=args.zip,
                segmentation_type="FRACTIONAL" if args.fractional else "BINARY",
            )
            study = [s for s in found if s.study_uid == chosen.study_uid]
            result = session.export(
                args.out, options, study_series=study, progress=printer(not args.json)
            )
        except (MedviewError, ValueError, KeyError, OSError) as e:
            sys.stderr.write(f"{log_name}: {e}\n")
            return 1
    errors = sum(len(v["errors"]) for v in result.validation.values())
    if args.json:
        json.dump(
            {
                "path": str(result.path),
                "files": list(result.files),
                "deidentified": result.deidentified,
                "dciodvfy_errors": errors,
                "validated": sorted(result.validation),
                "warnings": list(result.warnings),
                "seconds": round(result.seconds, 2),
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        sys.stderr.write("\n")
        sys.stdout.write(
            f"wrote {result.path}: {len(result.files)} files in {result.seconds:.1f} s"
            + (
                f"; dciodvfy: {errors} error(s) in {len(result.validation)} object(s)"
                if result.validation
                else ""
            )
            + "\n"
        )
        for w in result.warnings:
            sys.stderr.write(f"warning: {w}\n")
    return 0
