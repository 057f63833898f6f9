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

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

import numpy as np

from medview.core.geometry import Geometry
from medview.core.records import InstanceRecord, SeriesRecord, SliceRef
from medview.io.diffusion import diffusion_labels, stack_encoding

ORIENTATION_TOL = 1e-3  # direction cosine difference treated as "same orientation"
SPACING_REL_TOL = 0.01  # 1 % spread of slice gaps is still "even"
TILT_TOL_DEG = 0.01  # a GantryDetectorTilt in the header beyond this is reported
# slices offset sideways by more than this over the whole stack are reported as tilted: a
# distance, not an angle, so rounding in oblique acquisitions (0.013-0.016 degrees on Siemens
# XA30 MR, 0.04 mm over 144 mm) is not mistaken for a tilt
TILT_TOL_MM = 0.2

T = TypeVar("T")


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:6], dtype=np.float64)
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


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
        series = rec.series_uid or f"no-series:{rec.path}"
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
        out.extend(stacks)
    out.sort(
        key=lambda s: (
            s.study_uid,
            s.series_number if s.series_number is not None else 1 << 30,
            *stack_order(s.key),
        )
    )
    return out


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


def _projection(rec: InstanceRecord, normal: np.ndarray) -> float:
    assert rec.image_position is not None
    return float(np.dot(rec.image_position, normal))


# what may tell the volumes of a 4-D series apart, in the order they are tried
_VOLUME_KEYS: tuple[tuple[str, str], ...] = (
    ("acquisition_number", "acquisition"),
    ("temporal_position", "time point"),
    ("trigger_time", "trigger time"),
    ("echo_number", "echo"),
    ("diffusion", "diffusion"),
    ("magnitude_or_phase", "image type"),
)


def _volume_value(rec: InstanceRecord, attr: str) -> object:
    if attr == "magnitude_or_phase":  # ImageType's third value on MR: M, P, R, I ...
        return rec.image_type[2] if len(rec.image_type) > 2 else None
    if attr == "diffusion":  # b-value and direction, rounded so rounding noise is one value
        e = rec.diffusion
        if e is None:
            return None
        return (round(e[0]), None if e[1] is None else tuple(round(x, 3) for x in e[1]))
    return getattr(rec, attr)


def _split_duplicates(
    group: list[InstanceRecord],
) -> list[tuple[list[InstanceRecord], list[str], str]]:
    """`_split_4d`, with a warning on every volume when the instance numbers skip values."""
    parts = _split_4d(group)
    if len(parts) < 2:
        return parts
    gaps = _numbering_gaps(group)
    return [(rs, notes + gaps, label) for rs, notes, label in parts]


def _split_4d(
    group: list[InstanceRecord],
) -> list[tuple[list[InstanceRecord], list[str], str]]:
    """Split a geometric group whose positions repeat into the volumes of a 4-D series:
    by the first attribute that takes one value per volume with each position once in it
    (acquisition, time point, trigger time, echo, diffusion encoding, magnitude/phase) and
    gives volumes of equal size; else by instance-number order when every position repeats
    equally often; else, with volumes short of a few slices (`_nearly_full`, each said), by
    such an attribute or by runs in instance-number order. Each part comes with its warnings
    and its volume label. What cannot be split safely stays whole: its repeated positions are
    dropped with a warning (never mis-stacked)."""
    assert group[0].image_orientation is not None
    normal = slice_normal(group[0].image_orientation)
    where = {id(r): round(_projection(r, normal), 3) for r in group}
    by_pos: dict[float, list[InstanceRecord]] = defaultdict(list)
    for r in group:
        by_pos[where[id(r)]].append(r)
    if all(len(rs) == 1 for rs in by_pos.values()):
        return [(group, [], "")]
    uneven: list[tuple[list[InstanceRecord], list[str], str]] | None = None
    for attr, name in _VOLUME_KEYS:
        values = [_volume_value(r, attr) for r in group]
        if any(v is None for v in values):
            continue
        by_value: dict[object, list[InstanceRecord]] = defaultdict(list)
        for r, v in zip(group, values, strict=True):
            by_value[v].append(r)
        if len(by_value) < 2 or any(
            len({where[id(r)] for r in rs}) != len(rs) for rs in by_value.values()
        ):
            continue
        if attr in ("diffusion", "magnitude_or_phase"):  # in acquisition order
            ordered = sorted(
                by_value.items(), key=lambda kv: min(r.instance_number or 0 for r in kv[1])
            )
        else:
            ordered = sorted(by_value.items(), key=lambda kv: str(kv[0]).zfill(12))
        n = len(ordered)
        if attr == "acquisition_number":
            parts = [
                (
                    rs,
                    [f"acquisition {v} of {n} sharing slice positions: split into its own stack"],
                    f"volume {i + 1} of {n} (acquisition {v})",
                )
                for i, (v, rs) in enumerate(ordered)
            ]
        else:
            parts = [
                (rs, [], f"volume {i + 1} of {n} ({name} {_shown(v)})")
                for i, (v, rs) in enumerate(ordered)
            ]
        if len({len(rs) for _, rs in ordered}) == 1:
            return parts
        if uneven is None and _nearly_full([len(rs) for _, rs in ordered], len(by_pos)):
            uneven = parts  # volumes of unequal size: only if nothing splits evenly
    counts = {len(rs) for rs in by_pos.values()}
    if len(counts) == 1:
        n = counts.pop()
        volumes: list[list[InstanceRecord]] = [[] for _ in range(n)]
        for rs in by_pos.values():
            ranked = sorted(rs, key=lambda r: (r.instance_number or 0, r.path))
            for k, r in enumerate(ranked):
                volumes[k].append(r)
        return [
            (v, [], f"volume {k + 1} of {n} (in instance-number order)")
            for k, v in enumerate(volumes)
        ]
    if uneven is None:
        uneven = _acquisition_runs(group, where, by_pos)
    if uneven is not None:
        full = max(len(rs) for rs, _, _ in uneven)
        return [
            (
                rs,
                notes
                + (
                    [
                        f"this volume has {len(rs)} of the series' {full} slice positions: "
                        f"{full - len(rs)} slice(s) missing"
                    ]
                    if len(rs) < full
                    else []
                ),
                label,
            )
            for rs, notes, label in uneven
        ]
    return [
        (
            group,
            [
                "positions repeat unevenly and nothing in the headers tells the volumes "
                "apart: the series could not be split into volumes safely"
            ],
            "",
        )
    ]


# a volume short of slices still counts as one when it holds this share of the positions
NEARLY_FULL = 0.8


def _nearly_full(sizes: list[int], positions: int) -> bool:
    """Whether volumes of these sizes are a 4-D series with slices missing (one complete, the
    others nearly), not stray repeats split into fragments."""
    return max(sizes) == positions and min(sizes) >= NEARLY_FULL * positions


def _acquisition_runs(
    group: list[InstanceRecord],
    where: dict[int, float],
    by_pos: dict[float, list[InstanceRecord]],
) -> list[tuple[list[InstanceRecord], list[str], str]] | None:
    """Volumes as runs in instance-number order, a new one starting where a position
    repeats: how GE numbers a 4-D run (volume after volume), which still splits it when a
    slice is missing. Accepted only when it gives as many volumes as a position has images
    and they are `_nearly_full` (else None)."""
    if any(r.instance_number is None for r in group):
        return None
    runs: list[list[InstanceRecord]] = [[]]
    used: set[float] = set()
    for r in sorted(group, key=lambda r: (r.instance_number or 0, r.path)):
        if where[id(r)] in used:
            runs.append([])
            used = set()
        runs[-1].append(r)
        used.add(where[id(r)])
    most = max(len(rs) for rs in by_pos.values())
    if len(runs) != most or not _nearly_full([len(run) for run in runs], len(by_pos)):
        return None
    n = len(runs)
    return [
        (run, [], f"volume {k + 1} of {n} (in instance-number order)") for k, run in enumerate(runs)
    ]


def _numbering_gaps(group: list[InstanceRecord]) -> list[str]:
    """A warning when the instance numbers of a 4-D series skip values (a volume or slices
    absent from what was imported)."""
    numbers = sorted({r.instance_number for r in group if r.instance_number is not None})
    if len(numbers) < 2 or len(numbers) != len(group):
        return []
    missing = numbers[-1] - numbers[0] + 1 - len(numbers)
    if missing <= 0:
        return []
    return [
        f"instance numbers {numbers[0]} to {numbers[-1]} skip {missing} value(s): images of "
        "this series (a volume or slices) may be missing"
    ]


def four_d_groups(
    items: Sequence[T], facts: Callable[[T], tuple[str, object, str]]
) -> list[list[T]]:
    """Consecutive volumes of one 4-D series (one Series Instance UID, a volume label each,
    one grid) as one group; every other item a group of its own. ``facts`` gives an item's
    (series UID, shape, volume label): items may be stacks, the browser's rows or the CLI's
    series entries."""
    groups: list[list[T]] = []
    last: tuple[str, object, str] | None = None
    for item in items:
        uid, shape, label = facts(item)
        if last is not None and label and last[2] and (uid, shape) == last[:2]:
            groups[-1].append(item)
        else:
            groups.append([item])
        last = (uid, shape, label)
    return groups


def stack_facts(s: SeriesRecord) -> tuple[str, object, str]:
    """A stack's (series UID, shape, volume label), as `four_d_groups` groups them."""
    return s.series_uid, s.shape, s.volume_label


def what_varies(labels: Sequence[str]) -> str:
    """What tells the volumes of a 4-D series apart, from their labels: "diffusion (b=0, 1000;
    30 directions)", "time point", "echo", "acquisition", ..."""
    inner = [label[label.find("(") + 1 : label.rfind(")")] for label in labels if "(" in label]
    if not inner:
        return "volume order"
    if all(i.startswith("b=") for i in inner):
        bvals = sorted({float(i.split(",")[0][2:]) for i in inner})
        dirs = {i.split("/")[-1] for i in inner if "dir " in i}
        n = max((int(d) for d in dirs if d.isdigit()), default=0)
        shown = ", ".join(f"{b:g}" for b in bvals)
        return f"diffusion (b={shown}; {n} direction{'s' if n != 1 else ''})"
    plain = {
        "in instance-number order": "acquisition order (instance numbers)",
        "one file each": "file (one per volume)",
        "frames in stored order": "frame order in the file",
    }
    if inner[0] in plain:
        return plain[inner[0]]
    words = inner[0].split(" ")
    while len(words) > 1 and not words[-1].isalpha():
        words.pop()  # "time point 3" -> "time point"
    return " ".join(words)


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _label_file_volumes(
    stacks: list[tuple[list[InstanceRecord], str, list[str]]], labels: dict[int, str]
) -> None:
    """Multi-frame files of one series (and Series Number) at the same positions (one mosaic
    or enhanced file per volume of an fMRI or field-map run) are the volumes of a 4-D series:
    label them in acquisition order."""
    same: dict[tuple[object, ...], list[int]] = defaultdict(list)
    for i, (part, kind, _) in enumerate(stacks):
        rec = part[0]
        if kind == "volume" and rec.frame_positions and not labels.get(i):
            where = tuple(np.round(rec.frame_positions, 2).ravel())
            # files with their own Series Number are series of their own (as dcm2niix)
            same[(rec.series_number, rec.rows, rec.columns, where)].append(i)
    for members in same.values():
        if len(members) > 1:
            for k, i in enumerate(members):
                labels[i] = f"volume {k + 1} of {len(members)} (one file each)"


def _frame_volumes(rec: InstanceRecord) -> list[tuple[list[int] | None, str]]:
    """The volumes of an enhanced multi-frame file whose frames repeat positions (echoes,
    time points, magnitude and phase): the k-th frame at each position, in stored order, is
    volume k when every position holds the same number of frames. (None, "") for a file of
    one volume, or one that cannot be split safely (its repeats are then dropped with a
    warning)."""
    assert rec.frame_positions is not None and rec.image_orientation is not None
    normal = slice_normal(rec.image_orientation)
    by_pos: dict[float, list[int]] = defaultdict(list)
    for f, p in enumerate(rec.frame_positions):
        by_pos[round(float(np.dot(p, normal)), 3)].append(f)
    counts = {len(fs) for fs in by_pos.values()}
    if len(counts) != 1 or (n := counts.pop()) == 1:
        return [(None, "")]
    volumes: list[list[int]] = [[] for _ in range(n)]
    for fs in by_pos.values():
        for k, f in enumerate(fs):
            volumes[k].append(f)
    return [(v, f"volume {k + 1} of {n} (frames in stored order)") for k, v in enumerate(volumes)]


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
