"""An editable segmentation: a label map on the source grid, its segment table, live
per-segment figures, and one undo history for model runs, edits and table changes.

Each step keeps only what it changed: the bounding box of the changed voxels with the previous
and the new values of that box, zlib-compressed (a brush dab: a few hundred bytes; a model run
over a 300 x 512 x 512 CT: a few MB), never a copy of the whole label map. The figures (voxels,
mL, mean and SD of the image per segment) are updated from the changed box alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from medview.core.results import (
    Provenance,
    Segment,
    Segmentation,
    SegmentStats,
    label_counts,
)
from medview.core.volume import Volume
from medview.segedit.history import (
    EMPTY,
    Box,
    EditError,
    Entry,
    History,
    Pending,
    StaleError,
    Step,
    any_of,
    changed_box,
    figures_of,
    mask_box,
    pack,
    unpack,
)

MANUAL, SEMIAUTOMATIC, AUTOMATIC = "MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"


class SegmentationEditor:
    """The working segmentation of one volume. ``listener`` is called after every change
    (edit, undo, redo, table change) with the step's name."""

    def __init__(self, volume: Volume, dtype: type = np.uint8) -> None:
        self.volume = volume
        self.labels: np.ndarray = np.zeros(volume.shape, dtype=dtype)
        self.table: tuple[Entry, ...] = ()
        self.provenance: Provenance | None = None
        self.notes: tuple[str, ...] = ()
        self.history = History()
        self.listeners: list[Callable[[str], None]] = []
        self._group_start: int | None = None  # a stroke being drawn (`begin_group`)
        self.version = 0  # counts the changes (`prepare` then `push`)
        self._hidden: set[int] = set()  # segments hidden by the reader (kept through undo)
        self._image = None if volume.is_color else np.asarray(volume.array)
        self._voxel_ml = float(np.prod(volume.geometry.spacing)) / 1000.0
        n = int(np.iinfo(dtype).max) + 1
        self._counts = np.zeros(n, dtype=np.int64)
        self._sums = np.zeros(n, dtype=np.float64)
        self._squares = np.zeros(n, dtype=np.float64)
        # the background's voxels are counted; its image sums are never shown, so they are
        # not kept (they would cost a pass over the whole image)
        self._counts[0] = self.labels.size

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def of(
        cls, volume: Volume, seg: Segmentation | None, origin: str = "model"
    ) -> SegmentationEditor:
        """An editor holding ``seg`` (a model's or an imported one) as its starting point,
        with no undo history; None: an empty segmentation."""
        editor = cls(volume)
        if seg is not None:
            editor._load(seg, origin)
        return editor

    def _load(self, seg: Segmentation, origin: str) -> None:
        labels = np.asarray(seg.labels.array)
        if labels.shape != self.volume.shape:
            raise EditError("the segmentation is not on this series' grid")
        if labels.max(initial=0) > np.iinfo(self.labels.dtype).max:
            raise EditError("the segmentation has more labels than the editor holds")
        self.labels[...] = labels
        self.table = tuple(Entry(s, origin=origin) for s in seg.segments)
        self.provenance, self.notes = seg.provenance, seg.notes
        # the figures from its statistics when they are whole, else counted
        figures = figures_of(seg, len(self._counts), self.labels.size, self._image is not None)
        if figures is None:
            self._recount()
        else:
            self._set_figures(figures)

    def _recount(self) -> None:
        """Count the figures of the whole map: slice by slice, over the labelled voxels only
        (the background's sums are not kept), so no image-sized float64 copy is made."""
        self._counts[:] = 0
        self._sums[:] = 0
        self._squares[:] = 0
        c = label_counts(self.labels)
        self._counts[: len(c)] = c
        if self._image is None:
            return
        n = len(self._sums)
        for labels, image in zip(self.labels, self._image, strict=True):
            inside = labels != 0
            if not inside.any():
                continue
            values, weights = labels[inside], image[inside].astype(np.float64)
            self._sums += np.bincount(values, weights=weights, minlength=n)[:n]
            self._squares += np.bincount(values, weights=weights * weights, minlength=n)[:n]

    # -- reading --------------------------------------------------------------------------------
    def entry(self, value: int) -> Entry | None:
        return next((e for e in self.table if e.segment.value == value), None)

    def locked_values(self) -> list[int]:
        return [e.segment.value for e in self.table if e.locked]

    def hidden_values(self) -> set[int]:
        """The segments not shown (the overlay leaves them out)."""
        return {e.segment.value for e in self.table if not e.visible}

    def next_value(self) -> int:
        used = {e.segment.value for e in self.table}
        return next(v for v in range(1, np.iinfo(self.labels.dtype).max + 1) if v not in used)

    def stats(self) -> tuple[SegmentStats, ...]:
        """Voxels, mL, mean and SD per present segment, from the running sums (min and max
        are left out: they cannot be kept up to date from the changed boxes alone)."""
        out = []
        for e in sorted(self.table, key=lambda e: e.segment.value):
            v = e.segment.value
            c = int(self._counts[v])
            if not c:
                continue
            mean = sd = float("nan")
            if self._image is not None:
                mean = float(self._sums[v] / c)
                sd = float(np.sqrt(max(self._squares[v] / c - mean * mean, 0.0)))
            out.append(SegmentStats(v, e.segment.name, c, c * self._voxel_ml, mean, sd))
        return tuple(out)

    def count(self, value: int) -> int:
        return int(self._counts[value])

    def segmentation(self, copy: bool = True) -> Segmentation:
        """The working segmentation as a result object (a copy of the label map unless
        ``copy`` is False: then it shares the editor's array and changes with it)."""
        array = self.labels.copy() if copy else self.labels.view()
        labels = Volume(array, self.volume.geometry, self.volume.frame_of_reference_uid)
        return Segmentation(
            labels,
            tuple(e.segment for e in self.table),
            self.stats(),
            self.provenance,
            self.notes,
        )

    # -- changing -------------------------------------------------------------------------------
    def _notify(self, name: str) -> None:
        self.version += 1  # every change is notified: a prepared step sees it
        for listener in list(self.listeners):
            listener(name)

    def _figures(self) -> tuple[np.ndarray, ...]:
        return (self._counts.copy(), self._sums.copy(), self._squares.copy())

    def _set_figures(self, figures: tuple[np.ndarray, ...]) -> None:
        self._counts[:], self._sums[:], self._squares[:] = figures

    def _write(self, box: Box, values: np.ndarray, figures: bool = True) -> None:
        """Write ``values`` into ``box``, updating the figures from the changed voxels only
        (``figures`` False: the caller sets them)."""
        if figures:
            self._set_figures(self._counted(box, self.labels[box], values))
        self.labels[box] = values

    def _counted(self, box: Box, old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, ...]:
        """The figures once ``old`` in ``box`` becomes ``new`` (from the changed voxels)."""
        counts, sums, squares = self._figures()
        changed = old != new
        was, now = old[changed], new[changed]
        n = len(counts)
        counts += np.bincount(now, minlength=n)[:n] - np.bincount(was, minlength=n)[:n]
        if self._image is not None:
            image = self._image[box][changed].astype(np.float64)
            for labels, sign in ((was, -1), (now, 1)):
                sums += sign * np.bincount(labels, weights=image, minlength=n)[:n]
                squares += sign * np.bincount(labels, weights=image * image, minlength=n)[:n]
        return counts, sums, squares

    def commit(
        self, name: str, box: Box | None, values: np.ndarray | None, **kw: Any
    ) -> Step | None:
        """Make one undoable step: ``values`` into ``box`` of the label map and/or a new
        ``table`` (keywords: those of `prepare`). Returns the step, or None when nothing
        changed. AI segments whose voxels change become SEMIAUTOMATIC (``mark_edited``)."""
        if self._group_start is not None:
            name = self.GROUPED
        pending = self.prepare(name, box, values, **kw)
        return None if pending is None else self.push(pending)

    def prepare(
        self,
        name: str,
        box: Box | None,
        values: np.ndarray | None,
        table: tuple[Entry, ...] | None = None,
        provenance: Provenance | str | None = "same",
        mark_edited: bool = True,
        figures: tuple[np.ndarray, ...] | None = None,
    ) -> Pending | None:
        """The costly part of `commit` (what changed, packed for undo, the figures after),
        changing nothing: it may run in a worker, and `push` makes the step on the editor's
        thread if the editor has not changed meanwhile. None: nothing would change."""
        version = self.version
        before = after = EMPTY
        step_box = None
        new_part: np.ndarray | None = None
        figures_before = self._figures()
        figures_after = figures_before
        shape: tuple[int, int, int] = (0, 0, 0)
        table_before = self.table
        if box is not None and values is not None:
            old = self.labels[box]
            inner = changed_box(old, values)
            if inner is not None:
                step_box = tuple(
                    slice(o.start + i.start, o.start + i.stop)
                    for o, i in zip(box, inner, strict=True)
                )
                old_part, new_part = old[inner].copy(), np.ascontiguousarray(values[inner])
                shape = old_part.shape
                before, after = pack(old_part), pack(new_part)
                if figures is None:
                    figures = self._counted(step_box, old_part, new_part)  # type: ignore[arg-type]
                figures_after = tuple(f.copy() for f in figures)
                if mark_edited:  # the labels whose voxels changed (bincount: no sort)
                    changed = old_part != new_part
                    touched = set(np.flatnonzero(np.bincount(old_part[changed])).tolist())
                    touched |= set(np.flatnonzero(np.bincount(new_part[changed])).tolist())
                    table = self._edited(touched, table if table is not None else self.table)
        new_table = table if table is not None else self.table
        new_prov = self.provenance if provenance == "same" else provenance
        if step_box is None and new_table == table_before and new_prov == self.provenance:
            return None
        step = Step(
            name,
            step_box,  # type: ignore[arg-type]
            shape,
            before,
            after,
            table_before,
            new_table,
            self.provenance,
            new_prov,  # type: ignore[arg-type]
            figures_before,
            figures_after,
        )
        return Pending(step, new_part, version)

    def push(self, pending: Pending) -> Step:
        """Make a prepared step: its values written, the figures, table and provenance set,
        the step added to the history. Raises `StaleError` when the editor changed after
        `prepare` (then prepare again)."""
        if pending.version != self.version:
            raise StaleError("the segmentation changed while the step was prepared")
        step = pending.step
        if step.box is not None and pending.values is not None:
            self._write(step.box, pending.values, figures=False)
        self._set_figures(step.figures_after)
        self.table, self.provenance = step.table_after, step.provenance_after
        for e in self.table:  # how a new step's segments are shown is the latest word
            (self._hidden.discard if e.visible else self._hidden.add)(e.segment.value)
        if pending.notes is not None:
            self.notes = pending.notes
        self.history.done.append(step)
        self.history.undone.clear()
        self._notify(step.name)
        return step

    def _edited(self, values: set[int], table: tuple[Entry, ...]) -> tuple[Entry, ...]:
        """``table`` with the AI segments among ``values`` marked as edited by hand
        (SEMIAUTOMATIC); drawn segments stay MANUAL."""
        if self.provenance is None:  # nothing here came from a model
            return table
        out = []
        for e in table:
            s = e.segment
            if s.value in values and e.origin != "manual" and s.algorithm_type == "":
                e = replace(e, segment=replace(s, algorithm_type=SEMIAUTOMATIC))
            out.append(e)
        return tuple(out)

    def _apply(self, step: Step, forward: bool) -> None:
        if step.box is not None:
            values = unpack(step.after if forward else step.before, step.shape, self.labels.dtype)
            self._write(step.box, values, figures=not step.figures_before)
        if step.figures_before:
            self._set_figures(step.figures_after if forward else step.figures_before)
        # showing and hiding are not steps: a segment is shown as the reader last set it
        self.table = tuple(
            e
            if (e.segment.value in self._hidden) != e.visible
            else replace(e, visible=not e.visible)
            for e in (step.table_after if forward else step.table_before)
        )
        self.provenance = step.provenance_after if forward else step.provenance_before

    def undo(self) -> str | None:
        """Undo the last step; its name, or None when there is nothing to undo."""
        if not self.history.done:
            return None
        step = self.history.done.pop()
        self._apply(step, forward=False)
        self.history.undone.append(step)
        self._notify(f"undo {step.name}")
        return step.name

    def redo(self) -> str | None:
        if not self.history.undone:
            return None
        step = self.history.undone.pop()
        self._apply(step, forward=True)
        self.history.done.append(step)
        self._notify(f"redo {step.name}")
        return step.name

    # -- strokes --------------------------------------------------------------------------------
    GROUPED = "dab"  # the name of a step inside an open group (a stroke being drawn)

    def begin_group(self) -> None:
        """Start a stroke: the steps until `end_group` (each dab, shown at once) become one
        step of the history."""
        self._group_start = len(self.history.done)

    def end_group(self, name: str) -> Step | None:
        """Close the stroke: its steps merged into one (the union of their boxes, with the
        values before the first and after the last)."""
        start, self._group_start = self._group_start, None
        if start is None or len(self.history.done) <= start:
            return None
        steps = self.history.done[start:]
        del self.history.done[start:]
        boxes = [s.box for s in steps if s.box is not None]
        if not boxes:
            return None
        union: Box = tuple(
            slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3)
        )  # type: ignore[assignment]
        after = self.labels[union].copy()
        before = after.copy()
        for s in reversed(steps):  # unwind the dabs on a copy of the union box
            if s.box is None:
                continue
            at = tuple(
                slice(b.start - u.start, b.stop - u.start)
                for b, u in zip(s.box, union, strict=True)
            )
            before[at] = unpack(s.before, s.shape, self.labels.dtype)
        step = Step(
            name,
            union,
            after.shape,
            pack(before),
            pack(after),
            steps[0].table_before,
            steps[-1].table_after,
            steps[0].provenance_before,
            steps[-1].provenance_after,
        )
        self.history.done.append(step)
        self._notify(name)
        return step

    # -- whole results and the table ------------------------------------------------------------
    def replace_with(
        self, seg: Segmentation, name: str = "model run", origin: str = "model"
    ) -> Step | None:
        """A model's result (or an imported segmentation) becomes the working segmentation,
        as one undoable step."""
        pending = self.prepare_replace(seg, name, origin)
        return None if pending is None else self.push(pending)

    def prepare_replace(
        self, seg: Segmentation, name: str = "model run", origin: str = "model"
    ) -> Pending | None:
        """`replace_with`'s step, prepared (in a worker: `prepare`) for `push`."""
        labels = np.asarray(seg.labels.array)
        if labels.shape != self.volume.shape:
            raise EditError("the segmentation is not on this series' grid")
        full: Box = tuple(slice(0, n) for n in self.labels.shape)  # type: ignore[assignment]
        values = labels.astype(self.labels.dtype, copy=False)
        table = tuple(Entry(s, origin=origin) for s in seg.segments)
        pending = self.prepare(
            name,
            full,
            values,
            table,
            seg.provenance,
            mark_edited=False,
            figures=figures_of(seg, len(self._counts), self.labels.size, self._image is not None),
        )
        return None if pending is None else replace(pending, notes=seg.notes)

    def set_table(self, table: tuple[Entry, ...], name: str) -> Step | None:
        return self.commit(name, None, None, table=table)

    def add_segment(self, name: str, color: tuple[int, int, int], **codes: object) -> Segment:
        """A new, empty, hand-drawn segment (``codes``: snomed_code, snomed_meaning,
        finding)."""
        segment = Segment(self.next_value(), name, color, algorithm_type=MANUAL, **codes)  # type: ignore[arg-type]
        self.set_table((*self.table, Entry(segment)), f"add segment {name}")
        return segment

    def update_entry(self, value: int, step: str = "change segment", **changes: object) -> None:
        """Change a row: segment fields (name, color, snomed_code, ...) or visible/locked."""
        entry = self.entry(value)
        if entry is None:
            raise EditError(f"there is no segment {value}")
        seg_fields = {k: v for k, v in changes.items() if k in Segment.__dataclass_fields__}
        row_fields = {k: v for k, v in changes.items() if k in Entry.__dataclass_fields__}
        new = replace(entry, segment=replace(entry.segment, **seg_fields), **row_fields)  # type: ignore[arg-type]
        table = tuple(new if e.segment.value == value else e for e in self.table)
        if set(changes) <= {"visible"}:  # what is shown is not an edit: no undo step
            self.table = table
            (self._hidden.discard if new.visible else self._hidden.add)(value)
            self._notify("visibility")
            return
        self.set_table(table, step)

    def remove_segment(self, value: int) -> None:
        """Remove a segment and its voxels (one step)."""
        entry = self.entry(value)
        if entry is None:
            raise EditError(f"there is no segment {value}")
        if entry.locked:
            raise EditError(f"segment '{entry.segment.name}' is locked")
        table = tuple(e for e in self.table if e.segment.value != value)
        box, values = self.bounded(self.labels == value, 0, respect_locks=False, overwrite=True)
        self.commit(
            f"remove segment {entry.segment.name}", box, values, table=table, mark_edited=False
        )

    # -- writing a mask -------------------------------------------------------------------------
    def bounded(
        self,
        mask: np.ndarray,
        value: int,
        *,
        origin: tuple[int, int, int] = (0, 0, 0),
        respect_locks: bool = True,
        overwrite: bool = True,
        only: int | None = None,
    ) -> tuple[Box | None, np.ndarray | None]:
        """The box and its new values for writing ``value`` where ``mask`` (placed at
        ``origin``) is set: locked segments are never changed (``respect_locks``), other
        segments only with ``overwrite``; ``only``: change only voxels of that value (an
        eraser clears the active segment)."""
        inner = mask_box(mask)
        if inner is None:
            return None, None
        box: Box = tuple(slice(o + i.start, o + i.stop) for o, i in zip(origin, inner, strict=True))  # type: ignore[assignment]
        sub = mask[inner]
        current = self.labels[box]
        target = sub.copy()
        if respect_locks:
            locked = self.locked_values()
            if locked:
                target &= ~any_of(current, locked)
        if only is not None:
            target &= current == only
        if not overwrite and value:
            target &= (current == 0) | (current == value)
        values = current.copy()
        values[target] = value
        return box, values

    def write(self, name: str, mask: np.ndarray, value: int, **kw: object) -> Step | None:
        """Write ``value`` where ``mask`` is set (see `bounded`), as one step."""
        if value:
            entry = self.entry(value)
            if entry is None:
                raise EditError(f"there is no segment {value}")
            if entry.locked:
                raise EditError(f"segment '{entry.segment.name}' is locked: unlock it to edit it")
        box, values = self.bounded(mask, value, **kw)  # type: ignore[arg-type]
        if box is None:
            return None
        return self.commit(name, box, values)
