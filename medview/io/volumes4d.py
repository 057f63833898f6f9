"""The volumes of a 4-D series: splitting one position's slices into volumes (by acquisition,
temporal position, trigger time, echo, diffusion encoding or image type), naming each volume,
and grouping the stacks of a series into 4-D series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from medview.core.records import InstanceRecord, SeriesRecord

T = TypeVar("T")


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:6], dtype=np.float64)
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


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
