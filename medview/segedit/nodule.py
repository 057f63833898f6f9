"""The nodule click tool's edit: a click model's nodule written into the segmentation as one
undoable step, as a new segment or replacing the voxels of the nodule it refines."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.core.results import Segment
from medview.segedit.editor import SEMIAUTOMATIC, SegmentationEditor
from medview.segedit.history import EditError, Entry, any_of
from medview.segedit.tools import _segment_box


def _union(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, slice, slice]:
    u = tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))
    return u[0], u[1], u[2]


def take_nodule(editor: SegmentationEditor, result: Any, value: int | None = None) -> int:
    """Write ``result``'s nodule (a `medview.inference.clickrun.ClickResult`): into segment
    ``value`` (its old voxels replaced: a refinement), or a new segment named after the
    model's label. Locked segments keep their voxels; other segments give way to the nodule.
    Returns the segment's value."""
    manifest = result.manifest if result.segmenter is None else result.segmenter
    table = None
    if value is None or editor.entry(value) is None:
        label = manifest.labels[0]
        n = 1 + sum(1 for e in editor.table if e.segment.name.startswith(label.name))
        segment = Segment(
            editor.next_value(),
            f"{label.name} {n}",
            label.color,
            label.snomed_code,
            label.snomed_meaning,
            True,
            SEMIAUTOMATIC,
            manifest.name,
            manifest.version,
        )
        table = (*editor.table, Entry(segment))
        value = segment.value
        box = result.segment.block
    else:
        entry = editor.entry(value)
        assert entry is not None
        if entry.locked:
            raise EditError(f"segment '{entry.segment.name}' is locked: unlock it to refine it")
        old = _segment_box(editor, value) if editor.count(value) else None
        box = result.segment.block if old is None else _union(result.segment.block, old)
    current = editor.labels[box]
    values = current.copy()
    values[current == value] = 0
    new = np.zeros(current.shape, dtype=bool)
    inner = tuple(
        slice(s.start - b.start, s.stop - b.start)
        for s, b in zip(result.segment.block, box, strict=True)
    )
    new[inner] = result.segment.mask
    locked = editor.locked_values()
    if locked:
        new &= ~any_of(current, locked)
    values[new] = value
    name = "nodule (AI click)" if table is not None else "refine nodule (AI click)"
    editor.commit(name, box, values, table=table, mark_edited=False)
    return value
