"""``medview convert``: a segmentation between DICOM SEG, RT Structure Set and NIfTI label
map, on a given series (the series' files are read for its grid and references)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

from medview.core.errors import MedviewError
from medview.core.records import derived_kind
from medview.core.results import Segmentation

FORMATS = ("seg", "rtstruct", "nifti")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a segmentation between DICOM SEG, RTSTRUCT and NIfTI on a series",
        description="Read SOURCE (a DICOM SEG or RT Structure Set, or a NIfTI label map) onto "
        "the series in --series and write it as --to. A NIfTI is placed by its affine "
        "(any axis order); segment names for a NIfTI come from --labels (CSV: value,name).",
    )
    p.add_argument("source", help="SEG or RTSTRUCT file, or .nii/.nii.gz label map")
    p.add_argument("--series", required=True, help="the series' files or folder")
    p.add_argument("--series-key", default=None, help="which series, when there are several")
    p.add_argument("--to", required=True, choices=FORMATS)
    p.add_argument("-o", "--out", required=True, help="output file")
    p.add_argument("--labels", default=None, help="CSV of label value,name for a NIfTI source")
    p.add_argument("--json", action="store_true", help="print the segments as JSON")
    p.set_defaults(func=cmd_convert)


def _read(
    args: argparse.Namespace, series_list: list[Any], extract: str
) -> tuple[Any, Any, Segmentation]:
    from medview.io.loader import load_series
    from medview.io.scan import pick_series

    src = os.fspath(args.source)
    if src.endswith((".nii", ".nii.gz")):
        from medview.io.labelmap import label_names, read_labelmap

        series = pick_series(series_list, args.series_key)
        if series is None:
            raise MedviewError("name the series with --series-key (several, or none matches)")
        volume = load_series(series)
        names = label_names(args.labels) if args.labels else None
        return series, volume, read_labelmap(src, volume, names)
    from medview.io.derived import parse_derived
    from medview.io.header import parse_header
    from medview.session.derived import read_derived, series_for

    record = parse_header(src)
    if derived_kind(record.sop_class_uid) not in ("SEG", "RTSTRUCT"):
        raise MedviewError(
            "the source is neither a SEG, an RTSTRUCT nor a NIfTI label map", path=src
        )
    obj = parse_derived(src, record)
    series = (
        pick_series(series_list, args.series_key)
        if args.series_key
        else series_for(obj, series_list)
    )
    if series is None:
        raise MedviewError(f"no series {args.series_key!r} under --series")
    volume = load_series(series)
    opened = read_derived(obj, series, volume)
    assert opened.segmentation is not None
    return series, volume, opened.segmentation


def _write(to: str, out: str, series: Any, seg: Segmentation) -> None:
    from medview.core.atomic import atomic_path

    if to == "nifti":
        from medview.export.nifti import write_nifti

        write_nifti(seg.labels, out)
        return
    from medview.export.dicom_objects import build_seg, read_sources

    sources = read_sources(series)
    if to == "seg":
        ds, _ = build_seg(series, sources, seg)
    else:
        from medview.export.rtstruct import build_rtstruct

        ds = build_rtstruct(series, sources, seg)
    with atomic_path(out, ".dcm") as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def cmd_convert(args: argparse.Namespace) -> int:
    from medview.io.scan import scan

    if args.to == "nifti" and not str(args.out).endswith((".nii", ".nii.gz")):
        sys.stderr.write("medview convert: --out must end in .nii or .nii.gz for --to nifti\n")
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="medview-") as tmp:
            result = scan([args.series], extract_dir=tmp)
            series, volume, seg = _read(args, result.series, tmp)
            _write(args.to, args.out, series, seg)
    except MedviewError as e:
        sys.stderr.write(f"medview convert: {e}\n")
        return 1
    from medview.core.results import segment_stats

    by_value = {
        s.value: s for s in seg.stats or segment_stats(volume, seg.labels.array, seg.segments)
    }
    segments = [
        {
            "value": s.value,
            "name": s.name,
            "color": list(s.color),
            "code": s.snomed_code,
            "meaning": s.snomed_meaning,
            "algorithm_type": s.algorithm_type,
            "algorithm": s.algorithm_name,
            "voxels": by_value[s.value].voxels if s.value in by_value else 0,
            "volume_ml": round(by_value[s.value].volume_ml, 4) if s.value in by_value else 0.0,
        }
        for s in seg.segments
    ]
    if args.json:
        doc = {
            "output": args.out,
            "format": args.to,
            "series": series.key,
            "segments": segments,
            "notes": list(seg.notes),
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for n in seg.notes:
            sys.stderr.write(f"note: {n}\n")
        sys.stdout.write(f"wrote {args.out}: {len(segments)} segment(s) as {args.to}\n")
    return 0
