"""One-click report bundle: PDF, DICOM SEG and SR, NIfTI label map, PNG key images and,
on request, a de-identified copy of the study, written off the GUI thread with progress and
cancel.

Everything is written into a hidden staging folder beside the target, which is renamed into
place (or zipped atomically) only when complete: an export killed midway leaves no file
under its final name, and the next export removes stale staging folders. Source files are only
ever read. No path is built from a DICOM value: names come from the clock and randomness.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview import __version__
from medview.core.atomic import atomic_path
from medview.core.errors import ExportError
from medview.core.notices import RESEARCH_USE
from medview.core.paths import sha256_file
from medview.core.records import SeriesRecord
from medview.core.results import segment_stats
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.core.volume import Volume
from medview.export.content import ExportContent, ExportOptions, KeyImage
from medview.export.deid import Deidentifier, token_now
from medview.export.dicom_objects import (
    build_seg,
    build_sr,
    drop_empty_sequences,
    harmonise_orientation,
    read_sources,
    source_order,
)

log = logging.getLogger(__name__)

STAGING_PREFIX = ".medview-export-"
STALE_SECONDS = 3600


@dataclass(frozen=True)
class BundleResult:
    path: Path  # the bundle folder, or the .zip
    files: tuple[str, ...]  # relative paths inside the bundle
    validation: dict[str, dict[str, Any]]  # DICOM file -> dciodvfy errors/warnings
    warnings: tuple[str, ...]
    seconds: float
    deidentified: bool


def _clean_stale(out: Path) -> None:
    now = time.time()
    for p in out.glob(STAGING_PREFIX + "*"):
        try:
            if now - p.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        except OSError:
            pass


def _save(ds: Dataset, path: Path) -> None:
    with atomic_path(path, ".dcm") as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def dciodvfy(path: Path) -> dict[str, Any] | None:
    """dciodvfy's verdict on one file (errors and warnings), None when it is not installed."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        return None
    r = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    lines = (r.stdout + r.stderr).splitlines()
    return {
        "errors": [ln for ln in lines if ln.startswith("Error")],
        "warnings": [ln for ln in lines if ln.startswith("Warning")],
    }


def _short(m: dict[str, Any], figures: dict[str, float], units: str) -> str:
    kind = m["kind"]
    if kind == "ruler":
        return f"{figures['length_mm']:.1f} mm"
    if kind == "angle":
        return f"{figures['angle_deg']:.1f} deg"
    if kind == "arrow":
        return str(m.get("text") or "arrow")
    u = f" {units}" if units else ""
    return (
        f"{figures['area_mm2']:.1f} mm2, mean {figures['mean']:.1f}{u}, SD {figures['sd']:.1f}, "
        f"min {figures['min']:.0f}, max {figures['max']:.0f}"
    )


def _on_image(m: dict[str, Any], figures: dict[str, float], units: str) -> str:
    """The short label drawn beside a measurement on a key image (the table has the rest)."""
    if m["kind"] in ("ellipse", "rectangle"):
        return f"mean {figures['mean']:.0f}{' ' + units if units else ''}"
    return _short(m, figures, units)


def measurement_figures(
    volume: Volume, measurements: Sequence[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """Each measurement with the figures the viewer shows for it."""
    from medview.viewer.annotations import Measurement, evaluate

    out = []
    for d in measurements:
        m = Measurement.from_dict(d)
        out.append((m.to_dict(), evaluate(m, volume)))
    return out


def _header(ds: Dataset, volume: Volume, created: str) -> list[tuple[str, str]]:
    def get(key: str) -> str:
        return str(ds.get(key, "") or "")

    def date(v: str) -> str:
        return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isdigit() else v

    return [
        ("Patient", get("PatientName").replace("^", " ").strip() or "-"),
        ("Patient ID", get("PatientID") or "-"),
        (
            "Birth date / sex",
            f"{date(get('PatientBirthDate')) or '-'} / {get('PatientSex') or '-'}",
        ),
        ("Study", f"{date(get('StudyDate')) or '-'}  {get('StudyDescription')}".strip()),
        ("Accession", get("AccessionNumber") or "-"),
        (
            "Series",
            f"{get('Modality')} #{get('SeriesNumber')} {get('SeriesDescription')}  "
            f"{'x'.join(map(str, volume.shape))} voxels, "
            f"{' x '.join(f'{v:.3g}' for v in volume.geometry.spacing)} mm",
        ),
        ("Report created", created),
    ]


def export_bundle(
    series: SeriesRecord,
    volume: Volume,
    content: ExportContent,
    out_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    study_series: Sequence[SeriesRecord] = (),
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> BundleResult:
    """Write the report bundle of ``series`` (shown as ``volume``) into ``out_dir``.

    ``study_series`` are the series copied when de-identifying (default: ``series`` alone).
    Raises `ExportError` (nothing is left behind) or `CancelledError`.
    """
    t0 = time.perf_counter()
    options = options or ExportOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    token = token_now()
    stage = out / f"{STAGING_PREFIX}{token}"
    stage.mkdir()
    try:
        result = _export(series, volume, content, stage, options, study_series, cancel, progress)
        name = f"MedView-{'deid-' if options.deidentify else ''}{token}"
        progress(1, 1, "finishing")
        if options.zip:
            final = out / f"{name}.zip"
            with (
                atomic_path(final, ".zip") as tmp,
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z,
            ):
                for rel in result[0]:
                    z.write(stage / rel, f"{name}/{rel}")
            shutil.rmtree(stage)
        else:
            final = out / name
            os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    files, validation, warnings = result
    log.info("report bundle written: %d files in %.1f s", len(files), time.perf_counter() - t0)
    return BundleResult(
        final,
        tuple(files),
        validation,
        tuple(warnings),
        time.perf_counter() - t0,
        options.deidentify,
    )


def _export(
    series: SeriesRecord,
    volume: Volume,
    content: ExportContent,
    stage: Path,
    options: ExportOptions,
    study_series: Sequence[SeriesRecord],
    cancel: CancelToken,
    progress: Progress,
) -> tuple[list[str], dict[str, dict[str, Any]], list[str]]:
    from medview.export.keyimages import default_key_images, heatmap_key_image, render_key_image
    from medview.export.nifti import write_nifti
    from medview.export.pdf import ReportData, write_pdf
    from medview.export.report_objects import report_text
    from medview.report.fields import Reading

    files: list[str] = []
    warnings: list[str] = list(volume.warnings)
    created = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    label_map = content.segmentation
    if label_map is not None and not label_map.labels.geometry.almost_equal(volume.geometry):
        raise ExportError("the label map is not on the series' grid; it cannot be exported")
    to_copy = list(study_series) or [series]
    if not any(s.key == series.key for s in to_copy):
        to_copy.append(series)
    n_copy = sum(len(g) for g in _files_by_series(to_copy)) if options.deidentify else 0
    total = n_copy + 9
    step = 0

    def tick(message: str) -> None:
        nonlocal step
        cancel.raise_if_cancelled()
        step += 1
        progress(step, total, message)

    # 1. the sources (de-identified copies when asked)
    if options.deidentify:
        deid = Deidentifier()
        sources = _copy_deidentified(series, to_copy, stage, deid, files, warnings, tick)
    else:
        sources = read_sources(series)
    sources, note = harmonise_orientation(sources)
    drop_empty_sequences(sources)
    if note:
        warnings.append(note)
    tick("source headers read")

    # 2. DICOM SEG and the label map
    seg = None
    numbers: dict[int, int] = {}
    stats = []
    if label_map is not None:  # the statistics made with the result; computed here only
        # for a label map that came without them
        made = label_map.stats or segment_stats(volume, label_map.labels.array, label_map.segments)
        stats = [s for s in made if s.voxels]
    if label_map is not None and label_map.present():
        seg, numbers = build_seg(series, sources, label_map, options.segmentation_type)
        _save(seg, stage / "seg.dcm")
        files.append("seg.dcm")
        write_nifti(label_map.labels, stage / "labels.nii.gz")
        files.append("labels.nii.gz")
        from medview.export.rtstruct import build_rtstruct

        _save(build_rtstruct(series, sources, label_map, cancel=cancel), stage / "rtstruct.dcm")
        files.append("rtstruct.dcm")
    tick("segmentation written")

    # 3. DICOM SR
    figures = measurement_figures(volume, content.measurements)
    sr = None
    if figures or seg is not None:
        sr = build_sr(sources, volume, figures, seg, numbers, stats, label_map)
        _save(sr, stage / "sr.dcm")
        files.append("sr.dcm")
    tick("structured report written")

    # the reader's report as it reads now, and the lesion table
    reading = Reading(
        volume, content.measurements, label_map, content.classifications, content.risk
    )
    told = report_text(content.report, reading, options.deidentify, options.narrative_confirmed)

    # 4. key images
    keys = list(content.key_images) or default_key_images(label_map, volume, content.measurements)
    if not keys:
        keys = [KeyImage("axial", volume.shape[0] // 2, "middle slice")]
    labelled = [
        (m, f"{i + 1}: {_on_image(m, f, volume.units)}") for i, (m, f) in enumerate(figures)
    ]
    rendered = []
    (stage / "key-images").mkdir()
    for i, key in enumerate(keys):
        img = render_key_image(volume, key, options.window, label_map, labelled)
        rel = f"key-images/key-{i + 1:02d}.png"
        with atomic_path(stage / rel, ".png") as tmp:
            img.save(tmp, "PNG")
        files.append(rel)
        rendered.append((img, key.title))
        cancel.raise_if_cancelled()
    tick("key images rendered")

    thumbs = []
    for c in content.classifications:
        thumb = None
        if c.heatmap is not None:
            key = heatmap_key_image(c.heatmap, c.target_class)
            thumb = render_key_image(volume, key, options.window, heatmap=c.heatmap, longest=700)
        thumbs.append((c, thumb))
    tick("heat maps rendered")

    # 5. validation of every DICOM object we made
    validation: dict[str, dict[str, Any]] = {}
    if options.validate:
        checked = [f for f in files if f.endswith(".dcm")]
        if options.deidentify:  # all copies would take long: the first of each series
            firsts: dict[str, str] = {}
            for f in checked:
                firsts.setdefault(f.rsplit("/", 1)[0] if "/" in f else f, f)
            checked = list(firsts.values())
        for rel in checked:
            verdict = dciodvfy(stage / rel)
            if verdict is None:
                break
            validation[rel] = verdict
            if verdict["errors"]:
                warnings.append(f"{rel}: dciodvfy reports {len(verdict['errors'])} error(s)")
    tick("validated")

    # 6. the PDF
    data = ReportData(
        header=_header(sources[0], volume, created),
        key_images=rendered,
        measurements=[
            (
                str(i + 1),
                f"{m['kind']}, {m['view']}",
                _short(m, f, volume.units)
                + (f" ({m['text']})" if m.get("text") and m["kind"] != "arrow" else ""),
            )
            for i, (m, f) in enumerate(figures)
        ],
        units=volume.units,
        segments=stats,
        segmentation=label_map.provenance if label_map is not None else None,
        segmentation_notes=list(label_map.notes) if label_map is not None else [],
        made_by=(
            {sg.value: label_map.algorithm_type_of(sg) for sg in label_map.segments}
            if label_map is not None
            else {}
        ),
        segment_models={
            sg.value: f"{sg.algorithm_name} {sg.algorithm_version}".strip()
            for sg in (label_map.segments if label_map is not None else ())
            if sg.algorithm_name
        },
        classifications=thumbs,
        risk=list(content.risk.values()),
        warnings=warnings,
        files=[*sorted(files), "report.pdf", *told.files(), "bundle.json"],
        created=created,
        **told.pdf_parts(),
    )
    write_pdf(stage / "report.pdf", data)
    files.append("report.pdf")
    tick("PDF written")
    if told.included:
        slices = [r.slice_number - 1 for r in told.lesions]
        slices += [k.index for k in keys if k.view in ("axial", "native")]
        for rel, ds in told.objects(stage / "report.pdf", sources, sr, slices):
            _save(ds, stage / rel)
            files.append(rel)
            verdict = dciodvfy(stage / rel) if options.validate else None
            if verdict is not None:
                validation[rel] = verdict
                if verdict["errors"]:
                    warnings.append(f"{rel}: dciodvfy reports {len(verdict['errors'])} error(s)")
    tick("report objects written")

    # 7. the bundle manifest (no patient data)
    manifest = {
        "format": "medview-report-bundle/1",
        "medview": __version__,
        "created": created,
        "research_use": RESEARCH_USE,
        "deidentified": options.deidentify,
        "files": {rel: sha256_file(stage / rel) for rel in files},
        "validation": {"dciodvfy": validation} if validation else {},
        "warnings": warnings,
    }
    with atomic_path(stage / "bundle.json", ".json") as tmp, open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=2)
    files.append("bundle.json")
    tick("done")
    return files, validation, warnings


def _files_by_series(to_copy: Sequence[SeriesRecord]) -> list[list[str]]:
    """The files of ``to_copy``, each once, grouped by Series Instance UID in volume order:
    the stacks of a 4-D series (several volumes of one file, or of one UID) are one series."""
    groups: dict[str, dict[str, None]] = {}
    for s in to_copy:
        group = groups.setdefault(s.series_uid or s.key, {})
        for idx in source_order(s):
            group.setdefault(s.instances[idx].path, None)
    return [list(g) for g in groups.values()]


def _copy_deidentified(
    series: SeriesRecord,
    to_copy: Sequence[SeriesRecord],
    stage: Path,
    deid: Deidentifier,
    files: list[str],
    warnings: list[str],
    tick: Any,
) -> list[Dataset]:
    """Copy every file of ``to_copy`` de-identified, once, one folder per series; return the
    chosen series' copies (headers only) in `read_sources` order."""
    wanted = {r.path for r in series.instances}
    sources: dict[str, Dataset] = {}
    for n, paths in enumerate(_files_by_series(to_copy)):
        folder = stage / "dicom" / f"series-{n + 1:03d}"
        folder.mkdir(parents=True)
        for i, path in enumerate(paths):
            try:
                ds = pydicom.dcmread(path)
            except (OSError, pydicom.errors.InvalidDicomError) as e:
                raise ExportError(f"cannot read a source instance again: {e}") from e
            why = deid.refuses(ds)
            if why is not None:
                warnings.append(f"series {n + 1}: an instance was not copied: it {why}")
                tick("skipped")
                continue
            deid.apply(ds)
            rel = f"dicom/series-{n + 1:03d}/IM{i + 1:05d}.dcm"
            _save(ds, stage / rel)
            files.append(rel)
            if path in wanted:
                if "PixelData" in ds:
                    del ds.PixelData
                sources[path] = ds
            tick("de-identifying")
    order = [series.instances[i].path for i in source_order(series)]
    if any(p not in sources for p in order):
        raise ExportError(
            "the series has instances that cannot be de-identified (burned-in annotation); "
            "its results cannot be exported de-identified"
        )
    return [sources[p] for p in order]


def labels_from_nifti(path: str | os.PathLike[str], volume: Volume) -> np.ndarray:
    """A label map file resampled onto nothing: it must already be on ``volume``'s grid
    (same size, spacing, origin and direction); returns the (z, y, x) integer array."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(os.fspath(path))
    except RuntimeError as e:
        raise ExportError(f"cannot read the label map: {e}", path=os.fspath(path)) from e
    arr = sitk.GetArrayFromImage(img)
    g = volume.geometry
    same = (
        arr.shape == volume.shape
        and np.allclose(img.GetSpacing(), g.spacing, atol=1e-3)
        and np.allclose(img.GetOrigin(), g.origin, atol=1e-2)
        and np.allclose(np.array(img.GetDirection()).reshape(3, 3), g.direction, atol=1e-4)
    )
    if not same:
        raise ExportError(
            f"the label map's grid ({'x'.join(map(str, arr.shape))}, spacing "
            f"{[round(v, 4) for v in img.GetSpacing()]}) is not the series' grid "
            f"({'x'.join(map(str, volume.shape))}, spacing "
            f"{[round(float(v), 4) for v in g.spacing]}); it was made on another image",
            path=os.fspath(path),
        )
    if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
        raise ExportError("the label map holds non-integer values", path=os.fspath(path))
    if arr.min() < 0:
        raise ExportError("the label map holds negative labels", path=os.fspath(path))
    return arr.astype(np.uint16 if arr.max() > 255 else np.uint8)
