"""The editable segmentation on the real demo CT: each tool against the same operation done
with numpy or scipy directly, one undo history (bit-for-bit, small, fast), live figures
equal to a full recount, algorithm types, and edits refused with a reason and no change."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medview.core.results import segment_stats
from medview.segedit import tools
from medview.segedit.editor import EditError, SegmentationEditor


def _editor(demo_ct, demo_seg=None):  # type: ignore[no-untyped-def]
    return SegmentationEditor.of(demo_ct, demo_seg)


def _physical(volume) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(volume.geometry.spacing, dtype=float)[::-1]


def test_brush_stroke_equals_numpy_discs_and_spheres(demo_ct) -> None:  # type: ignore[no-untyped-def]
    ed = _editor(demo_ct)
    seg = ed.add_segment("nodule", (255, 0, 0))
    centres = [(30, 250.0, 200.0), (30, 256.0, 210.0), (30, 262.0, 220.0)]
    tools.paint(ed, centres, 6.0, seg.value, axis=0)
    sp = _physical(demo_ct)
    z, y, x = np.ogrid[: demo_ct.shape[0], : demo_ct.shape[1], : demo_ct.shape[2]]
    want = np.zeros(demo_ct.shape, bool)
    for cz, cy, cx in centres:
        want |= (z == cz) & (((y - cy) * sp[1]) ** 2 + ((x - cx) * sp[2]) ** 2 <= 36.0)
    assert np.array_equal(ed.labels == seg.value, want)
    # a 3-D sphere, limited to soft tissue
    tools.paint(ed, [(40, 300.0, 300.0)], 8.0, seg.value, axis=None, intensity=(-400, 400))
    ball = ((z - 40) * sp[0]) ** 2 + ((y - 300) * sp[1]) ** 2 + ((x - 300) * sp[2]) ** 2 <= 64.0
    image = np.asarray(demo_ct.array)
    want |= ball & (image >= -400) & (image <= 400)
    assert np.array_equal(ed.labels == seg.value, want)
    assert (ball & (image > 400)).sum() > 0 or (ball & (image < -400)).sum() > 0  # it limited
    # the eraser clears this segment only
    other = ed.add_segment("other", (0, 255, 0))
    tools.paint(ed, [(30, 262.0, 226.0)], 4.0, other.value, axis=0, overwrite=False)
    assert (ed.labels == other.value).sum() > 0
    before_other = ed.labels == other.value
    tools.paint(ed, [(30, 262.0, 220.0)], 10.0, seg.value, axis=0, erase=True)
    assert np.array_equal(ed.labels == other.value, before_other)


def test_threshold_islands_margin_equal_numpy_and_scipy(demo_ct) -> None:  # type: ignore[no-untyped-def]
    from scipy import ndimage

    ed = _editor(demo_ct)
    lung = ed.add_segment("lung", (0, 0, 255))
    image = np.asarray(demo_ct.array)
    tools.threshold(ed, lung.value, -1000, -400)
    want = (image >= -1000) & (image <= -400)
    assert np.array_equal(ed.labels == lung.value, want)
    # keep largest island: scipy's 26-connected components
    tools.keep_largest_island(ed, lung.value)
    cc, n = ndimage.label(want, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(cc.ravel())
    sizes[0] = 0
    want = cc == int(np.argmax(sizes))
    assert n > 1 and np.array_equal(ed.labels == lung.value, want)
    # margins in mm against scipy's exact Euclidean distance with the voxel spacing
    sp = _physical(demo_ct)
    tools.margin(ed, lung.value, -3.0)
    inside_dist = ndimage.distance_transform_edt(want, sampling=sp)
    shrunk = want & (inside_dist > 3.0)
    assert np.array_equal(ed.labels == lung.value, shrunk)
    before = ed.labels == lung.value
    tools.margin(ed, lung.value, 2.0)
    outside_dist = ndimage.distance_transform_edt(~before, sampling=sp)
    grown = before | (outside_dist <= 2.0)
    assert np.array_equal(ed.labels == lung.value, grown)
    # remove islands under 1 mL, then split what is left
    ed2 = _editor(demo_ct)
    bone = ed2.add_segment("bone", (255, 255, 0))
    tools.threshold(ed2, bone.value, 300, 3000)
    mask = ed2.labels == bone.value
    cc, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    voxel_ml = float(np.prod(demo_ct.geometry.spacing)) / 1000
    sizes = np.bincount(cc.ravel()) * voxel_ml
    tools.remove_small_islands(ed2, bone.value, 1.0)
    keep = np.isin(cc, np.flatnonzero(sizes >= 1.0)) & mask
    assert np.array_equal(ed2.labels == bone.value, keep)
    tools.split_islands(ed2, bone.value)
    pieces = int((np.bincount(cc.ravel())[1:] * voxel_ml >= 1.0).sum())
    assert len(ed2.table) == pieces
    assert all(e.segment.algorithm_type == "MANUAL" for e in ed2.table[1:])


def test_live_figures_equal_a_full_recount(demo_ct, demo_seg) -> None:  # type: ignore[no-untyped-def]
    ed = SegmentationEditor(demo_ct)
    ed.replace_with(demo_seg)  # figures taken from the engine's statistics, not recounted
    lesion = next(e.segment for e in ed.table if "lesion" in e.segment.name)
    tools.paint(ed, [(30, 250.0, 200.0)], 10.0, lesion.value, axis=None)
    tools.margin(ed, lesion.value, 1.0)
    t = time.perf_counter()
    live = ed.stats()
    took = time.perf_counter() - t
    full = segment_stats(demo_ct, ed.labels, tuple(e.segment for e in ed.table))
    assert [(s.value, s.voxels) for s in live] == [(s.value, s.voxels) for s in full]
    for a, b in zip(live, full, strict=True):
        assert a.volume_ml == pytest.approx(b.volume_ml)
        assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-9)
        assert a.sd == pytest.approx(b.sd, rel=1e-6, abs=1e-6)
    assert took < 0.05


def test_algorithm_types_follow_the_edits(demo_ct, demo_seg) -> None:  # type: ignore[no-untyped-def]
    ed = _editor(demo_ct, demo_seg)
    types = {
        e.segment.name: ed.segmentation(copy=False).algorithm_type_of(e.segment) for e in ed.table
    }
    assert set(types.values()) == {"AUTOMATIC"}
    lesion = next(e.segment for e in ed.table if "lesion" in e.segment.name)
    tools.paint(ed, [(30, 250.0, 200.0)], 5.0, lesion.value, axis=0)
    drawn = ed.add_segment("my note", (10, 200, 10))
    tools.paint(ed, [(20, 100.0, 100.0)], 5.0, drawn.value, axis=0, overwrite=False)
    seg = ed.segmentation()
    by_name = {s.name: seg.algorithm_type_of(s) for s in seg.segments}
    assert by_name[lesion.name] == "SEMIAUTOMATIC" and by_name["my note"] == "MANUAL"
    # painting the lesion over the body changed the body too: it was edited as well
    assert by_name["body"] == "SEMIAUTOMATIC"
    assert by_name["bone"] == "AUTOMATIC"
    ed.undo()
    ed.undo()
    ed.undo()
    assert {seg.algorithm_type_of(s) for s in ed.segmentation().segments} == {"AUTOMATIC"}


def test_bad_input_is_refused_and_changes_nothing(demo_ct, demo_seg) -> None:  # type: ignore[no-untyped-def]
    ed = _editor(demo_ct, demo_seg)
    before = ed.labels.copy()
    lung = next(e.segment for e in ed.table if e.segment.name == "lung")
    ed.update_entry(lung.value, locked=True)
    with pytest.raises(EditError, match="locked"):
        tools.paint(ed, [(30, 250.0, 200.0)], 5.0, lung.value)
    # painting another segment over a locked one leaves the locked voxels alone
    body = next(e.segment for e in ed.table if e.segment.name == "body")
    z, y, x = map(int, np.argwhere(ed.labels == lung.value)[0])
    tools.paint(ed, [(z, float(y), float(x))], 8.0, body.value)
    assert np.array_equal(ed.labels == lung.value, before == lung.value)
    empty = ed.add_segment("empty", (1, 2, 3))
    with pytest.raises(EditError, match="empty"):
        tools.keep_largest_island(ed, empty.value)
    with pytest.raises(EditError, match="outside the image"):
        tools.paint(ed, [(500, 10.0, 10.0)], 5.0, body.value)
    with pytest.raises(EditError, match="two or more"):
        tools.grow_from_seeds(ed, [body.value])
    assert np.array_equal(ed.labels[ed.labels != body.value], before[ed.labels != body.value])


def test_undo_history_is_small_exact_and_fast(demo_ct, demo_seg) -> None:  # type: ignore[no-untyped-def]
    """200 brush strokes and 3 model runs on a 300 x 512 x 512 CT (the demo CT's slices five
    times over, with the shipped model's real label map): under 100 MB of history; undoing
    everything gives back the starting map bit for bit; one undo under 50 ms."""

    from medview.core.results import Segmentation
    from medview.core.volume import Volume

    reps = 300 // demo_ct.shape[0] + 1
    array = np.concatenate([np.asarray(demo_ct.array)] * reps)[:300]
    g = demo_ct.geometry
    from medview.core.geometry import Geometry

    geometry = Geometry((300, 512, 512), g.origin, g.spacing, g.direction)
    big = Volume(array, geometry, demo_ct.frame_of_reference_uid, modality="CT")
    labels = np.concatenate([np.asarray(demo_seg.labels.array)] * reps)[:300]
    lesion_value = next(s.value for s in demo_seg.segments if "lesion" in s.name)
    # three real-looking runs: the model's map, the same without the lesion, and shifted
    runs = [labels, np.where(labels == lesion_value, 1, labels), np.roll(labels, 4, axis=2)]

    def result(a: np.ndarray) -> Segmentation:
        return Segmentation(
            Volume(a.astype(np.uint8), geometry, demo_ct.frame_of_reference_uid), demo_seg.segments
        )

    ed = SegmentationEditor.of(big, None)
    start = ed.labels.copy()
    rng = np.random.default_rng(0)
    ed.replace_with(result(runs[0]))
    lesion = next(e.segment.value for e in ed.table if "lesion" in e.segment.name)
    undo_times = []
    for i in range(200):
        if i in (70, 140):
            ed.replace_with(result(runs[1 if i == 70 else 2]))
        z = int(rng.integers(0, 300))
        y, x = rng.uniform(150, 350, 2)
        stroke = [(z, y + k * 3.0, x + k * 2.0) for k in range(8)]
        tools.paint(ed, stroke, 5.0, lesion, axis=0)
    assert len(ed.history.done) == 203
    assert ed.history.nbytes < 100 * 1024**2
    names = []
    for _ in range(203):
        t = time.perf_counter()
        names.append(ed.undo())
        undo_times.append(time.perf_counter() - t)
    assert np.array_equal(ed.labels, start) and ed.table == ()
    # the model runs' boxes are the whole map
    model_undos = [t for t, n in zip(undo_times, names, strict=True) if n == "model run"]
    brush_undos = [t for t, n in zip(undo_times, names, strict=True) if n != "model run"]
    assert len(model_undos) == 3
    assert float(np.median(brush_undos)) < 0.05 and max(brush_undos) < 0.05
    assert float(np.median(model_undos)) < 0.05, model_undos
    print(
        f"history {ed.history.nbytes / 1024**2:.1f} MB; undo median "
        f"{1000 * np.median(undo_times):.1f} ms, slowest {1000 * max(undo_times):.0f} ms, "
        f"model runs {', '.join(f'{1000 * t:.0f}' for t in model_undos)} ms"
    )
    for _ in range(203):
        ed.redo()
    ed.undo()
    ed.redo()
    final = ed.labels.copy()
    assert (final == lesion).sum() > (runs[2] == lesion).sum()


def test_fill_between_slices_equals_scipy_shape_interpolation(demo_ct) -> None:  # type: ignore[no-untyped-def]
    """Discs of 6 and 12 mm drawn on axial slices 20 and 26: the slices between get the zero
    level of the blended signed distances, computed here with scipy."""
    from scipy import ndimage

    ed = _editor(demo_ct)
    seg = ed.add_segment("lesion", (255, 0, 0))
    with pytest.raises(EditError, match="two or more slices"):
        tools.paint(ed, [(20, 250.0, 250.0)], 6.0, seg.value)
        tools.fill_between_slices(ed, seg.value)
    tools.paint(ed, [(26, 256.0, 244.0)], 12.0, seg.value)
    drawn = ed.labels == seg.value
    tools.fill_between_slices(ed, seg.value)
    sp = _physical(demo_ct)[1:]

    def sdf(m: np.ndarray) -> np.ndarray:
        return ndimage.distance_transform_edt(~m, sampling=sp) - ndimage.distance_transform_edt(
            m, sampling=sp
        )

    d0, d1 = sdf(drawn[20]), sdf(drawn[26])
    for k in range(21, 26):
        t = (k - 20) / 6
        blend = (1 - t) * d0 + t * d1
        want = blend < 0
        got = ed.labels[k] == seg.value
        differ = got != want
        assert np.all(np.abs(blend[differ]) < 1e-6)  # only exact ties may differ
        assert want.sum() > drawn[20].sum()  # it grows towards the larger disc
    assert np.array_equal(ed.labels[:20] == seg.value, np.zeros_like(drawn[:20]))
    ed.undo()
    assert np.array_equal(ed.labels == seg.value, drawn)
    with pytest.raises(EditError, match="next to each other"):
        tools.paint(ed, [(27, 256.0, 244.0)], 12.0, seg.value)
        tools.fill_between_slices(ed, seg.value)
        tools.fill_between_slices(ed, seg.value)


def test_scissors_and_smoothing_equal_numpy_and_scipy(demo_ct) -> None:  # type: ignore[no-untyped-def]
    from scipy import ndimage

    ed = _editor(demo_ct)
    lung = ed.add_segment("lung", (0, 0, 255))
    tools.threshold(ed, lung.value, -1000, -400)
    before = ed.labels == lung.value
    # a square drawn on an axial slice cuts through every slice
    square = [(30, 200.0, 150.0), (30, 200.0, 350.0), (30, 300.0, 350.0), (30, 300.0, 150.0)]
    tools.scissors(ed, lung.value, square, axis=0)
    rows, cols = np.mgrid[:512, :512]
    inside = (rows >= 200) & (rows < 300) & (cols < 350) & (cols >= 150)
    want = before & ~inside[np.newaxis]
    assert np.array_equal(ed.labels == lung.value, want)
    ed.undo()
    tools.scissors(ed, lung.value, square, axis=0, keep_inside=True)
    assert np.array_equal(ed.labels == lung.value, before & inside[np.newaxis])
    with pytest.raises(EditError, match="three points"):
        tools.scissors(ed, lung.value, square[:2])
    # smoothing: closing then opening with a ball; the same filters by SimpleITK directly
    # on the whole mask give the same voxels, and scipy's own morphology close to them
    import SimpleITK as sitk

    ed2 = _editor(demo_ct)
    seg = ed2.add_segment("s", (1, 2, 3))
    tools.threshold(ed2, seg.value, -1000, -400)
    mask = ed2.labels == seg.value
    tools.smooth(ed2, seg.value, 2.0)
    sp = _physical(demo_ct)
    radius = [int(np.round(2.0 / s)) for s in sp[::-1]]
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing(tuple(float(v) for v in demo_ct.geometry.spacing))
    closed = sitk.BinaryMorphologicalClosing(image, radius, sitk.sitkBall)
    want = (
        sitk.GetArrayFromImage(sitk.BinaryMorphologicalOpening(closed, radius, sitk.sitkBall)) > 0
    )
    assert np.array_equal(ed2.labels == seg.value, want)
    r = radius[::-1]
    zz, yy, xx = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1, -r[2] : r[2] + 1]
    ball = (zz / max(r[0], 0.5)) ** 2 + (yy / r[1]) ** 2 + (xx / r[2]) ** 2 <= 1
    near = ndimage.binary_opening(ndimage.binary_closing(mask, structure=ball), structure=ball)
    assert np.mean(want == near) > 0.95  # scipy treats the image border otherwise


def test_runs_pack_any_box_exactly() -> None:
    from medview.segedit.history import pack, unpack

    rng = np.random.default_rng(3)
    cases = [
        np.zeros((0, 4, 4), np.uint8),
        np.zeros((3, 5, 7), np.uint8),
        rng.integers(0, 256, (4, 33, 17), dtype=np.uint8),  # no two equal neighbours, mostly
        np.repeat(rng.integers(0, 3, (5, 1, 1), dtype=np.uint8), 40, axis=2).repeat(9, axis=1),
    ]
    big = np.zeros((40, 64, 64), np.uint8)
    big[10:30, 5:60, 20:40] = 7
    cases.append(big[5:35, ::2, 10:50])  # a strided view of a box, as the editor packs
    for a in cases:
        assert np.array_equal(unpack(pack(a), a.shape, a.dtype), a)


def test_a_prepared_step_is_pushed_only_onto_the_editor_it_was_made_for(demo_ct, demo_seg) -> None:  # type: ignore[no-untyped-def]
    """A model's step prepared in a worker: pushed when nothing changed meanwhile; refused
    (StaleError) after an edit; the session then makes it again, so the result is the same."""
    from medview.segedit.editor import StaleError
    from medview.session import StudySession

    ed = _editor(demo_ct)
    pending = ed.prepare_replace(demo_seg)
    assert not ed.labels.any() and ed.table == () and not ed.history.done  # nothing changed
    ed.push(pending)
    assert np.array_equal(ed.labels, np.asarray(demo_seg.labels.array))
    assert [e.segment for e in ed.table] == list(demo_seg.segments)
    ed.undo()
    assert not ed.labels.any()

    stale = ed.prepare_replace(demo_seg)
    note = ed.add_segment("reader note", (1, 2, 3))
    tools.paint(ed, [(20, 100.0, 100.0)], 5.0, note.value)
    with pytest.raises(StaleError):
        ed.push(stale)

    session = StudySession()
    session.show(session.read(demo_seg_series(demo_ct), demo_ct))
    prepared = session.prepare(demo_seg)  # in the worker: a fresh editor, not yet the session's
    assert session.editor is None
    session.segment_editor().add_segment("drawn first", (9, 9, 9))  # the reader went on
    session.accept(demo_seg, prepared=prepared)  # made again on the changed segmentation
    assert np.array_equal(session.segmentation.labels.array, np.asarray(demo_seg.labels.array))
    assert session.undo() == "model run"
    assert [e.segment.name for e in session.editor.table] == ["drawn first"]
    session.undo()
    prepared = session.prepare(demo_seg)
    session.accept(demo_seg, prepared=prepared)  # unchanged meanwhile: pushed as prepared
    assert session.editor.history.done[-1] is prepared.pending.step


def demo_seg_series(volume):  # type: ignore[no-untyped-def]
    from medview.io.scan import scan
    from tests.conftest import DEMO_CT

    return scan([str(DEMO_CT)]).series[0]


def test_hiding_a_segment_is_not_undone(demo_ct, demo_seg) -> None:  # type: ignore[no-untyped-def]
    """Showing and hiding are no steps: undo and redo of edits leave a segment as the reader
    last showed it, also one that an undo took away and a redo brought back."""
    ed = SegmentationEditor(demo_ct)
    ed.replace_with(demo_seg)
    a, b = (e.segment.value for e in ed.table[:2])
    ed.update_entry(a, "visibility", visible=False)
    tools.paint(ed, [(30, 250.0, 200.0)], 5.0, b)
    assert len(ed.history.done) == 2  # the model run and the stroke: hiding is no step
    ed.undo()
    assert not ed.entry(a).visible and ed.entry(b).visible
    ed.undo()
    assert ed.table == ()
    ed.redo()
    assert not ed.entry(a).visible and ed.entry(b).visible
    ed.update_entry(a, "visibility", visible=True)
    ed.redo()
    assert ed.entry(a).visible


def test_a_new_segment_gets_a_colour_unlike_the_others() -> None:
    from medview.segedit.codes import PALETTE, new_colour

    used = {(232, 160, 120), (80, 160, 240), (0, 130, 200)}  # a body, a lung, a blue
    colour = new_colour(used)
    assert colour in PALETTE and colour not in used
    assert all(sum((a - b) ** 2 for a, b in zip(colour, u, strict=True)) > 100**2 for u in used)
    assert new_colour(set(PALETTE)) in PALETTE  # all taken: still one
