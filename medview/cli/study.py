"""``medview info`` (the patient/study/series tree) and ``medview load`` (a series as NIfTI)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from typing import Any, TextIO

from medview import __version__
from medview.core.errors import MedviewError
from medview.core.records import DerivedRecord, SeriesRecord
from medview.io.assemble import series_geometry
from medview.io.derived import missing_instances, referenced_series_of
from medview.io.scan import ScanResult, pick_series, scan
from medview.io.volumes4d import four_d_groups, stack_facts, what_varies


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
    _attach_derived(result, series, patients, studies, by_study)
    return {
        "version": __version__,
        "patients": list(patients.values()),
        "series_count": len(series),
        "derived_count": len(result.derived),
        "skipped": [{"path": k.path, "reason": k.reason, "error": k.error} for k in result.skipped],
    }


def _derived_dict(obj: DerivedRecord, missing: int | None) -> dict[str, Any]:
    d = {
        "kind": obj.kind,
        "title": obj.title,
        "label": obj.label,
        "date": obj.date,
        "creator": obj.creator,
        "algorithm": obj.algorithm,
        "items": obj.items,
        "sop_instance_uid": obj.sop_instance_uid,
        "path": obj.path,
        "referenced_series": list(obj.referenced_series),
    }
    if missing is not None:
        d["missing_instances"] = missing
    return d


def _attach_derived(
    result: ScanResult,
    series: list[SeriesRecord],
    patients: dict[str, dict[str, Any]],
    studies: dict[str, dict[str, Any]],
    by_study: dict[str, list[dict[str, Any]]],
) -> None:
    """SEG, RTSTRUCT and SR objects listed under the series they annotate; those whose
    series is not here, under their study with the reason."""
    rows = {s["key"]: s for rows in by_study.values() for s in rows}
    for obj in result.derived:
        targets = referenced_series_of(obj, series)
        if targets:
            t = targets[0]
            rows[t.key].setdefault("derived", []).append(
                _derived_dict(obj, len(missing_instances(obj, t)))
            )
            continue
        if obj.study_uid not in studies:
            pkey = obj.patient_id or obj.patient_name or "(no patient id)"
            p = patients.setdefault(
                pkey,
                {
                    "patient_id": obj.patient_id,
                    "patient_name": obj.patient_name,
                    "birth_date": "",
                    "sex": "",
                    "studies": [],
                },
            )
            studies[obj.study_uid] = {
                "study_uid": obj.study_uid,
                "date": obj.study_date,
                "description": obj.study_description,
                "accession": "",
                "series": by_study[obj.study_uid],
            }
            p["studies"].append(studies[obj.study_uid])
        studies[obj.study_uid].setdefault("unattached", []).append(_derived_dict(obj, None))


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
                for g in group:
                    for d in g.get("derived", ()):
                        missing = d.get("missing_instances") or 0
                        out.write(
                            f"      {d['kind']:<8} {d['title']}"
                            + (f"  ({missing} referenced image(s) not here)" if missing else "")
                            + "\n"
                        )
            for d in st.get("unattached", ()):
                refs = ", ".join(d["referenced_series"]) or "none named"
                out.write(
                    f"    {d['kind']:<8} {d['title']}  (the series it annotates is not here: "
                    f"{refs})\n"
                )
    for k in tree["skipped"]:
        out.write(f"skipped {k['path']}: {k['reason']}\n")
    uids = {s["series_uid"] for p in tree["patients"] for st in p["studies"] for s in st["series"]}
    stacks = tree["series_count"]
    out.write(
        f"{len(uids)} series"
        + (f" ({stacks} stacks or volumes)" if stacks != len(uids) else "")
        + (f", {tree['derived_count']} SEG/RTSTRUCT/SR object(s)" if tree["derived_count"] else "")
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
    return 0 if tree["series_count"] or tree["derived_count"] else 1


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
        chosen = pick_series(series, wanted)
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
