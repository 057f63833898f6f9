"""Series assembly: group indexed instances into stackable series, sort slices along the slice
normal, split what must not be stacked together, and attach human-readable warnings.

Rules (never silently mis-stack):

* one stack per (orientation, image size, samples per pixel, localizer or not) within a Series
  Instance UID; extra stacks get keys ``UID#2``, ``UID#3``... and a warning saying why;
* enhanced multi-frame instances with per-frame positions are volumes of their own;
* positions that repeat make a 4-D series: split into one stack per volume by the attribute
  that tells the volumes apart (acquisition, time point, trigger time, echo, magnitude/phase),
  else by instance-number order when every position repeats equally often; every volume stays
  reachable with its label; only what cannot be split safely drops duplicates, with a warning;
* uneven spacing, missing slices and gantry tilt load with a warning.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from medview.core.geometry import Geometry
from medview.core.records import InstanceRecord, SeriesRecord, SliceRef
from medview.io.diffusion import diffusion_labels, stack_encoding
from medview.io.volumes4d import (
    _frame_volumes,
    _label_file_volumes,
    _split_duplicates,
    slice_normal,
)

ORIENTATION_TOL = 1e-3  # direction cosine difference treated as "same orientation"
SPACING_REL_TOL = 0.01  # 1 % spread of slice gaps is still "even"
TILT_TOL_DEG = 0.01  # a GantryDetectorTilt in the header beyond this is reported
# slices offset sideways by more than this over the whole stack are reported as tilted: a
# distance, not an angle, so rounding in oblique acquisitions (0.013-0.016 degrees on Siemens
# XA30 MR, 0.04 mm over 144 mm) is not mistaken for a tilt
TILT_TOL_MM = 0.2


def _is_localizer(rec: InstanceRecord) -> bool:
    return any(t.upper() == "LOCALIZER" for t in rec.image_type)


def _group_key(rec: InstanceRecord) -> tuple[object, ...]:
    ori = tuple(round(v / ORIENTATION_TOL) for v in rec.image_orientation or ())
    return (ori, rec.rows, rec.columns, rec.samples_per_pixel, _is_localizer(rec))


def _describe_split(key: tuple[object, ...], first_key: tuple[object, ...]) -> str:
    reasons = []
    if key[4]:
        reasons.append("localizer images")
    if key[1:3] != first_key[1:3]:
        reasons.append(f"image size {key[2]}x{key[1]}")
    if key[0] != first_key[0]:
        reasons.append("a different orientation")
    if key[3] != first_key[3]:
        reasons.append("different samples per pixel")
    return "split from the series: " + (", ".join(reasons) or "different image layout")


def assemble_series(records: Iterable[InstanceRecord]) -> list[SeriesRecord]:
    """Group instance records into `SeriesRecord` stacks, sorted by study then series number."""
    by_series: dict[str, list[InstanceRecord]] = defaultdict(list)
    seen: dict[tuple[str, str], list[InstanceRecord]] = defaultdict(list)
    copies: dict[str, int] = defaultdict(int)
    for rec in records:
        if not rec.has_pixels:
            continue
        series = rec.series_uid or _no_series_key(rec)
        # the same instance reached twice (a copy, DICOMDIR + folder walk) counts once; files
        # that share a UID but hold different bytes are different images and stay
        ident = (rec.series_uid, rec.sop_instance_uid or rec.path)
        if any(_same_file(rec, other) for other in seen[ident]):
            copies[series] += 1
            continue
        seen[ident].append(rec)
        by_series[series].append(rec)
    out: list[SeriesRecord] = []
    for uid, recs in by_series.items():
        stacks = _assemble_one(uid, recs)
        if copies.get(uid):  # never silently: the series says how many copies it skipped
            note = (
                f"{copies[uid]} file(s) repeating SOP Instance UIDs already imported (copies) "
                "were counted once"
            )
            stacks = [replace(s, warnings=(*s.warnings, note)) for s in stacks]
        if uid.startswith(NO_SERIES) and "|" in uid:
            note = (
                "no Series Instance UID in the files: grouped by folder, frame of reference "
                "and series description"
            )
            stacks = [replace(s, warnings=(*s.warnings, note)) for s in stacks]
        out.extend(stacks)
    out.sort(
        key=lambda s: (
            s.study_uid,
            s.series_number if s.series_number is not None else 1 << 30,
            *stack_order(s.key),
        )
    )
    return out


NO_SERIES = "no-series:"


def _no_series_key(rec: InstanceRecord) -> str:
    """A stand-in series key for an image without a Series Instance UID (de-identification
    that blanked the UIDs): images of one folder, frame of reference, modality and series
    description and number stack together; without a frame of reference each stays alone."""
    if not rec.frame_of_reference_uid:
        return f"{NO_SERIES}{rec.path}"
    folder = os.path.dirname(rec.path)
    number = "" if rec.series_number is None else str(rec.series_number)
    parts = (folder, rec.frame_of_reference_uid, rec.modality, number, rec.series_description)
    return NO_SERIES + "|".join(parts)


def stack_order(key: str) -> tuple[str, int]:
    """Sort key of a stack key in natural order: ``UID#2`` before ``UID#10``."""
    uid, _, n = key.partition("#")
    return uid, int(n) if n.isdigit() else 1


def _same_file(a: InstanceRecord, b: InstanceRecord) -> bool:
    """Whether two records of one SOP Instance UID are the same file or byte-identical copies
    (compared only when UIDs collide, which is rare)."""
    if a.path == b.path:
        return True
    if a.file_size != b.file_size:
        return False
    try:
        with open(a.path, "rb") as fa, open(b.path, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return True  # unreadable now: counted once, as before


def _assemble_one(uid: str, recs: list[InstanceRecord]) -> list[SeriesRecord]:
    stacks: list[tuple[list[InstanceRecord], str, list[str]]] = []  # recs, kind, warnings
    labels: dict[int, str] = {}  # stack index -> its volume label (4-D series)
    singles: list[InstanceRecord] = []
    frame_sets: dict[int, list[int]] = {}  # stack index -> its frames (one volume of a 4-D file)
    # multi-frame files (enhanced, mosaics) in acquisition order: one file per volume of a run
    recs = sorted(
        recs,
        key=lambda r: (
            r.frames == 1,
            r.acquisition_number or 0,
            r.temporal_position or 0,
            r.instance_number or 0,
            r.path,
        ),
    )
    for rec in recs:
        if rec.frames > 1:
            if rec.frame_positions and rec.image_orientation:
                for frames, label in _frame_volumes(rec):
                    if frames is not None:
                        frame_sets[len(stacks)] = frames
                    stacks.append(([rec], "volume", []))
                    labels[len(stacks) - 1] = label
            else:
                stacks.append(
                    (
                        [rec],
                        "frames",
                        [
                            "multi-frame image without per-frame "
                            "positions: frames shown in stored order"
                        ],
                    )
                )
        else:
            singles.append(rec)

    _label_file_volumes(stacks, labels)
    groups: dict[tuple[object, ...], list[InstanceRecord]] = defaultdict(list)
    for rec in singles:
        groups[_group_key(rec)].append(rec)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][4], -len(kv[1])))
    first_key = ordered[0][0] if ordered else None
    for key, group in ordered:
        notes = [] if key == first_key or first_key is None else [_describe_split(key, first_key)]
        geometric = all(r.image_position and r.image_orientation for r in group)
        if not geometric:
            if len(group) == 1:
                stacks.append((group, "image", notes))
            else:
                # projection images (CR/DX/MG/US) have no patient geometry: one stack each
                for r in sorted(group, key=lambda r: (r.instance_number or 0, r.path)):
                    stacks.append(([r], "image", list(notes)))
            continue
        if len(group) == 1:
            stacks.append((group, "image", notes))
            continue
        for part, part_notes, label in _split_duplicates(group):
            stacks.append((part, "volume", notes + part_notes))
            labels[len(stacks) - 1] = label

    out: list[SeriesRecord] = []
    for i, (part, kind, notes) in enumerate(stacks):
        stack_key = uid if i == 0 else f"{uid}#{i + 1}"
        slices, slice_notes = _order_slices(part, kind, frame_sets.get(i))
        first = part[0]
        warnings = [*notes, *slice_notes, *_flag_notes(part)]
        out.append(
            SeriesRecord(
                key=stack_key,
                series_uid=first.series_uid,
                study_uid=first.study_uid,
                patient_id=first.patient_id,
                modality=first.modality,
                description=first.series_description,
                series_number=first.series_number,
                instances=tuple(part),
                slices=tuple(slices),
                kind="volume" if kind == "volume" and len(slices) > 1 else kind,
                warnings=tuple(dict.fromkeys(warnings)),
                volume_label=labels.get(i, ""),
            )
        )
    return _label_diffusion(out)


def _label_diffusion(stacks: list[SeriesRecord]) -> list[SeriesRecord]:
    """The volumes of a diffusion series labelled with their encoding ("volume 8 of 31 (b=1000,
    dir 7/30)"); a volume whose images disagree on it says so (never silently mixed)."""
    volumes = [i for i, s in enumerate(stacks) if s.volume_label]
    if len(volumes) < 2:
        return stacks
    found = [stack_encoding(stacks[i]) for i in volumes]
    names = diffusion_labels([e for e, _ in found])
    if names is None:
        return stacks
    out = list(stacks)
    n = len(volumes)
    for k, (i, name, (_, same)) in enumerate(zip(volumes, names, found, strict=True)):
        notes = stacks[i].warnings
        if not same:
            notes = (
                *notes,
                "the images of this volume carry different diffusion encodings: the volumes "
                "of this series may be mixed",
            )
        out[i] = replace(stacks[i], volume_label=f"volume {k + 1} of {n} ({name})", warnings=notes)
    return out


def _flag_notes(part: list[InstanceRecord]) -> list[str]:
    notes: list[str] = []
    for r in part:
        notes.extend(r.flags)
    tilt = max((abs(r.gantry_tilt) for r in part), default=0.0)
    if tilt > TILT_TOL_DEG:
        notes.append(f"gantry tilt {tilt:.1f}° in the header")
    return notes


def _order_slices(
    part: list[InstanceRecord], kind: str, frames: list[int] | None = None
) -> tuple[list[SliceRef], list[str]]:
    if kind != "volume":
        first = part[0]
        if first.frames == 1 and first.image_position is not None:
            # a lone 2-D slice keeps where it is in the patient
            return [SliceRef(0, 0, first.image_position)], []
        return [SliceRef(0, f, None) for f in range(first.frames)], []
    if len(part) == 1 and part[0].frame_positions:
        rec = part[0]
        assert rec.image_orientation is not None and rec.frame_positions is not None
        normal = slice_normal(rec.image_orientation)
        wanted = range(len(rec.frame_positions)) if frames is None else frames
        refs = [SliceRef(0, f, rec.frame_positions[f]) for f in wanted]
    else:
        assert part[0].image_orientation is not None
        normal = slice_normal(part[0].image_orientation)
        refs = [SliceRef(i, 0, r.image_position) for i, r in enumerate(part)]
    proj = {id(s): float(np.dot(s.position, normal)) for s in refs if s.position}
    refs.sort(key=lambda s: (proj[id(s)], part[s.instance].instance_number or 0, s.frame))
    notes: list[str] = []
    kept: list[SliceRef] = []
    dropped = 0
    for s in refs:
        if kept and abs(proj[id(s)] - proj[id(kept[-1])]) < 1e-3:
            dropped += 1
            continue
        kept.append(s)
    if dropped:
        notes.append(
            f"duplicate slice positions: {dropped} image(s) at an already used "
            "position were left out"
        )
    notes.extend(spacing_warnings([np.asarray(s.position) for s in kept], normal))
    return kept, notes


def spacing_warnings(positions: list[np.ndarray], normal: np.ndarray) -> list[str]:
    """Warnings for uneven spacing, missing slices and tilt, from sorted slice positions."""
    if len(positions) < 2:
        return []
    pos = np.asarray(positions)
    steps = np.diff(pos, axis=0)
    gaps = steps @ normal
    notes = []
    med = float(np.median(gaps))
    if med > 0:
        missing = int(np.sum(np.round(gaps / med) - 1, where=gaps > 1.5 * med))
        if missing > 0:
            notes.append(
                f"missing slices: about {missing} slice(s) absent from the stack "
                f"(gaps up to {gaps.max():.2f} mm, usual {med:.2f} mm)"
            )
        elif (gaps.max() - gaps.min()) > max(SPACING_REL_TOL * med, 1e-3):
            notes.append(
                f"uneven slice spacing: {gaps.min():.3f} to {gaps.max():.3f} mm; "
                "distances along the slice axis are approximate"
            )
    # sideways offset of each slice from the line through the first along the normal
    along = (pos - pos[0]) @ normal
    sideways = np.linalg.norm((pos - pos[0]) - np.outer(along, normal), axis=1)
    worst = int(np.argmax(sideways))
    if sideways[worst] > TILT_TOL_MM:
        tilt = float(np.degrees(np.arctan2(sideways[worst], abs(along[worst]))))
        notes.append(
            f"gantry tilt: slices are offset at {tilt:.2g}° to the slice normal "
            f"({sideways[worst]:.1f} mm over the stack); the volume is shown sheared as acquired"
        )
    return notes


def series_geometry(series: SeriesRecord) -> Geometry:
    """Grid of an assembled series, in LPS mm (see `medview.core.geometry`)."""
    first = series.first
    rows, cols = first.rows, first.columns
    n = len(series.slices)
    if first.pixel_spacing:
        sy, sx = first.pixel_spacing
    else:
        sy = sx = 1.0
    if first.image_orientation:
        row = np.asarray(first.image_orientation[:3])
        col = np.asarray(first.image_orientation[3:6])
        row /= np.linalg.norm(row) or 1.0
        col /= np.linalg.norm(col) or 1.0
        normal = slice_normal(first.image_orientation)
        direction = np.column_stack([row, col, normal])
    else:
        normal = np.array([0.0, 0.0, 1.0])
        direction = np.eye(3)
    origin = np.asarray(series.slices[0].position or (0.0, 0.0, 0.0), dtype=np.float64)
    if n > 1 and series.slices[-1].position is not None and series.kind == "volume":
        # like ITK's ImageSeriesReader: extent between the outer slices over (n - 1)
        span = float(np.dot(np.subtract(series.slices[-1].position, origin), normal))
        sz = span / (n - 1) if span > 0 else 1.0
    else:
        sz = first.slice_thickness if first.slice_thickness and first.slice_thickness > 0 else 1.0
    return Geometry(
        shape=(n, rows, cols), origin=origin, spacing=np.array([sx, sy, sz]), direction=direction
    )
