"""The pieces of the segment editor's state: a segment-table row, one undoable step (a changed box
before and after, compressed, with the table and the running figures), the history, and the
bounding box of a change.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medview.core.results import (
    Provenance,
    Segment,
)

Box = tuple[slice, slice, slice]


class EditError(ValueError):
    """An edit that cannot be made (a locked segment, an empty segment, a seed outside the
    image...): the message says why, and nothing was changed."""


@dataclass(frozen=True)
class Entry:
    """A row of the segment table: the segment, how it is shown and whether it may change."""

    segment: Segment
    visible: bool = True
    locked: bool = False
    origin: str = "manual"  # "model", "imported" or "manual"


def _pack(a: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(a).tobytes(), 1)


@dataclass(frozen=True)
class Step:
    """One undoable step: a box of the label map before and after, and the table before and
    after (either may be unchanged)."""

    name: str
    box: Box | None
    shape: tuple[int, int, int]
    before: bytes
    after: bytes
    table_before: tuple[Entry, ...]
    table_after: tuple[Entry, ...]
    provenance_before: Provenance | None
    provenance_after: Provenance | None
    # the running figures (counts, sums, squares per label) before and after: undo and redo
    # restore them instead of recounting the box
    figures_before: tuple[np.ndarray, ...] = ()
    figures_after: tuple[np.ndarray, ...] = ()

    @property
    def nbytes(self) -> int:
        figures = sum(a.nbytes for a in (*self.figures_before, *self.figures_after))
        return len(self.before) + len(self.after) + 64 * (len(self.table_before) + 8) + figures


@dataclass
class History:
    done: list[Step] = field(default_factory=list)
    undone: list[Step] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.done) + sum(s.nbytes for s in self.undone)


def mask_box(mask: np.ndarray, pad: Sequence[int] | int = 0) -> Box | None:
    """The bounding box of a 3-D mask's set voxels, ``pad`` voxels wider per axis (clipped to
    the array); None when nothing is set."""
    pads = [pad] * 3 if isinstance(pad, int) else list(pad)
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if not len(hit):
            return None
        n = mask.shape[axis]
        box.append(slice(max(int(hit[0]) - pads[axis], 0), min(int(hit[-1]) + 1 + pads[axis], n)))
    return (box[0], box[1], box[2])


def changed_box(before: np.ndarray, after: np.ndarray) -> Box | None:
    """The bounding box of the voxels that differ (None: nothing changed)."""
    return mask_box(before != after)
