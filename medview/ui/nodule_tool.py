"""The Segment Editor's nodule click tool: a click on a lung nodule in any slice view segments
it with the click model (in a worker thread), and the nodule lands as a segment of its own, one
undoable step. A click near that nodule refines it: outside it adds the part clicked (a
positive click), inside it removes the part clicked (a negative click). "Malignancy" estimates
the selected nodule segment's malignancy, as it is now (corrected or not), and shows the
probability with its interval and the Grad-CAM map as the AI result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject

from medview.core.errors import MedviewError
from medview.core.notices import RESEARCH_USE
from medview.segedit.nodule import take_nodule

if TYPE_CHECKING:
    from medview.ui.segment_editor import SegmentEditorDock

# a click within this distance of the current nodule refines it; farther away starts a new one
REFINE_MM = 8.0


def click_model(task: str) -> Any:
    """The first installed package for ``task`` (click-segmentation or click-classification)."""
    from medview.inference.registry import ordered_for

    for e in ordered_for(None):
        if e.manifest is not None and e.manifest.task == task:
            return e.manifest
    return None


def describe(result: Any) -> str:
    m = result.measures
    return (
        f"{m.long_axis_mm:.1f} x {m.short_axis_mm:.1f} mm (longest axial diameter and short "
        f"axis), {m.volume_ml * 1000:.0f} mm³, mean {m.mean_hu:.0f} HU"
    )


class NoduleClick(QObject):
    """The painter the slice views call while the tool is on."""

    def __init__(self, dock: SegmentEditorDock) -> None:
        super().__init__(dock)
        self.dock = dock
        self.value: int | None = None  # the nodule segment being refined
        self.positives: list[tuple[float, float, float]] = []
        self.negatives: list[tuple[float, float, float]] = []

    def radius_mm(self) -> float:
        return 0.0

    def _refining(self, zyx: np.ndarray) -> bool | None:
        """None: a new nodule; else whether the click is inside the current one."""
        editor = self.dock.session.editor
        if self.value is None or editor is None or editor.entry(self.value) is None:
            return None
        if not editor.count(self.value):
            return None
        i = np.round(zyx).astype(int)
        inside = bool(editor.labels[tuple(i)] == self.value)
        spacing = np.asarray(editor.volume.geometry.spacing)[::-1]
        r = np.ceil(REFINE_MM / spacing).astype(int)
        lo, hi = np.maximum(i - r, 0), i + r + 1
        near = editor.labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] == self.value
        return inside if near.any() else None

    def press(self, zyx: np.ndarray, axis: int) -> None:
        d = self.dock
        volume = d.session.volume
        manifest = click_model("click-segmentation")
        if volume is None:
            return
        if manifest is None:
            d.say("No nodule click model is installed.")
            return
        point = tuple(float(v) for v in volume.geometry.index_to_lps(zyx))
        inside = self._refining(zyx)
        if inside is None:
            self.value, self.positives, self.negatives = None, [point], []  # type: ignore[list-item]
        elif inside:
            self.negatives.append(point)  # type: ignore[arg-type]
        else:
            self.positives.append(point)  # type: ignore[arg-type]
        positives, negatives, value = list(self.positives), list(self.negatives), self.value
        session = d.session

        def work(*, cancel: Any, progress: Any) -> Any:
            return session.run_click(manifest, positives, negatives)

        def done(result: Any) -> None:
            if session.volume is not volume:
                return  # another series is shown now
            new = d.attempt(lambda: session.edit(take_nodule, result, value))
            if new is None:
                return
            self.value = new
            d.select(new)
            what = "refined" if value is not None else "segmented"
            notes = "".join(f" ⚠ {n}" for n in result.notes)
            d.say(f"Nodule {what}: {describe(result)}. AI: {RESEARCH_USE}{notes}")

        def failed(message: str) -> None:
            if value is None:
                self.positives = []
            elif inside:
                self.negatives.pop()
            else:
                self.positives.pop()
            d.say(message)

        d.say("Segmenting the nodule…")
        d.runner.submit("Nodule", work, on_done=done, on_error=failed, slot="nodule-click")

    def move(self, zyx: np.ndarray) -> None:
        pass

    def release(self) -> None:
        pass


def malignancy(dock: SegmentEditorDock) -> None:
    """The selected nodule segment's malignancy, in a worker; shown as the AI result."""
    from medview.inference.click import ClickSegment
    from medview.segedit.tools import _segment_box

    session, value = dock.session, dock.selected_value()
    editor, volume = session.editor, session.volume
    manifest = click_model("click-classification")
    if manifest is None:
        dock.say("No nodule malignancy model is installed.")
        return
    if value is None or editor is None or volume is None or not editor.count(value):
        dock.say("Select a nodule segment (segment one with the Nodule tool first).")
        return
    box = _segment_box(editor, value)
    mask = editor.labels[box] == value
    seg = ClickSegment(box, mask, int(mask.sum()))  # type: ignore[arg-type]

    def work(*, cancel: Any, progress: Any) -> Any:
        from medview.inference.clickrun import classify_nodule

        return classify_nodule(manifest, volume, seg)

    def done(result: Any) -> None:
        if session.volume is not volume:
            return
        try:
            session.accept(result)
        except (MedviewError, ValueError) as e:
            dock.say(str(e))
            return
        p = result.finding_probability
        lo, hi = result.interval
        dock.say(
            f"Malignant by radiologists' consensus: {p:.0%} (95 % interval {lo:.0%}-{hi:.0%}). "
            f"AI: {RESEARCH_USE}"
        )

    dock.say("Estimating malignancy…")
    dock.runner.submit(
        "Nodule malignancy", work, on_done=done, on_error=dock.say, slot="nodule-malignancy"
    )
