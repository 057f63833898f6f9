"""Editing through the study session, as the window and scripts do: one undo history across
a model's segmentation, edits and measurements; the edited segmentation kept with the series
and back after a restart; a kill during a save leaves the previous version; the export's
SEG (read back by highdicom and dcmqi), SR and statistics are those of the edited map."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DEMO_CT, REPO, require_tool


def _session(home: Path):  # type: ignore[no-untyped-def]
    from medview.io.database import StudyDatabase
    from medview.io.scan import scan
    from medview.session import StudySession

    db = StudyDatabase(home / "study.db")
    db.import_paths([str(DEMO_CT)])
    session = StudySession(db)
    session.open(scan([str(DEMO_CT)]).series[0])
    return db, session


def test_edit_undo_restart_and_export(tmp_path: Path, demo_seg) -> None:  # type: ignore[no-untyped-def]
    import highdicom as hd

    from medview.segedit import tools
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    db, session = _session(tmp_path)
    session.accept(demo_seg)  # the model's result: the first step of the history
    lesion = next(s.value for s in demo_seg.segments if "lesion" in s.name)
    before = session.segmentation.counts[lesion]
    session.edit(tools.paint, [(30, 250.0, 200.0), (30, 256.0, 206.0)], 8.0, lesion)
    g = session.volume.geometry
    a, b = (tuple(g.index_to_lps([30.0, y, x]).tolist()) for y, x in ((200, 150), (260, 210)))
    session.add_measurement(Measurement(Kind.RULER, View.AXIAL, (a, b), id="r"))
    note = session.edit(lambda e: e.add_segment("reader note", (20, 200, 20)))
    session.edit(tools.paint, [(20, 256.0, 256.0)], 6.0, note.value)
    edited = session.segmentation.labels.array.copy()
    assert session.segmentation.counts[lesion] > before
    # one history, in the reader's order
    assert session.undo() == "paint"  # the note's stroke
    assert session.undo() == "add segment reader note"
    assert session.undo() == "measurement" and session.measurements.items == []
    assert session.undo() == "paint"  # the lesion's stroke
    assert np.array_equal(session.segmentation.labels.array, demo_seg.labels.array)
    assert session.undo() == "model run" and session.segmentation is None
    for _ in range(5):
        session.redo()
    assert np.array_equal(session.segmentation.labels.array, edited)
    assert [m.id for m in session.measurements.items] == ["r"]
    types = {
        s.name: session.segmentation.algorithm_type_of(s) for s in session.segmentation.segments
    }
    assert types["lung lesion"] == "SEMIAUTOMATIC" and types["reader note"] == "MANUAL"
    assert types["bone"] == "AUTOMATIC"  # untouched; the lung gave voxels to the lesion
    out = session.export(tmp_path / "out")
    db.close()

    # restarted: a new session on the same database gets the edited segmentation back
    from medview.io.database import StudyDatabase
    from medview.io.scan import scan
    from medview.session import StudySession

    db = StudyDatabase(tmp_path / "study.db")
    try:
        again = StudySession(db)
        again.open(scan([str(DEMO_CT)]).series[0])
        assert np.array_equal(again.segmentation.labels.array, edited)
        again_types = {
            s.name: again.segmentation.algorithm_type_of(s) for s in again.segmentation.segments
        }
        assert again_types == types
    finally:
        db.close()

    # the exported SEG: edited voxels, the right algorithm types, valid
    seg = hd.seg.segread(out.path / "seg.dcm")
    by_label = {d.segment_label: d for d in seg.SegmentSequence}
    assert by_label["lung lesion"].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert by_label["reader note"].SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in by_label["reader note"]
    assert by_label["bone"].SegmentAlgorithmType == "AUTOMATIC"
    assert out.validation["seg.dcm"]["errors"] == []
    number = next(d.segment_number for d in seg.SegmentSequence if d.segment_label == "lung lesion")
    volume = seg.get_volume(combine_segments=False, segment_numbers=[number])
    assert int(np.asarray(volume.array).sum()) == int((edited == lesion).sum())
    # the SR and the PDF give the edited lesion's volume
    voxel_ml = float(np.prod(session.volume.geometry.spacing)) / 1000
    want = float((edited == lesion).sum()) * voxel_ml
    text = subprocess.run(
        [require_tool("pdftotext"), "-layout", str(out.path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert any("lung lesion" in line and f"{want:.2f}" in line for line in text.splitlines())
    # and says how each segment was made
    made = {
        name: next(line for line in text.splitlines() if line.strip().startswith(name + "  "))
        for name in ("lung lesion", "reader note", "bone")
    }
    assert "AI model, edited by hand" in made["lung lesion"]
    assert "drawn by hand" in made["reader note"]
    assert "AI model" in made["bone"] and "edited" not in made["bone"]
    # the SR names the model for the model's segments, and none for the drawn one
    import pydicom

    sr = pydicom.dcmread(out.path / "sr.dcm")
    (measurements,) = [
        c
        for c in sr.ContentSequence
        if c.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
    ]
    named = {}
    for group in measurements.ContentSequence:
        items = {c.ConceptNameCodeSequence[0].CodeMeaning: c for c in group.ContentSequence}
        tracking = items["Tracking Identifier"].TextValue
        if not tracking.startswith("segment "):
            continue  # a measurement's group (the ruler)
        segment = tracking.split(": ", 1)[1]
        named[segment] = items["Algorithm Name"].TextValue if "Algorithm Name" in items else None
    assert named["reader note"] is None
    assert named["lung lesion"] == named["bone"] == session.segmentation.provenance.name


def test_dcmqi_reads_the_edited_seg(tmp_path: Path, demo_seg) -> None:  # type: ignore[no-untyped-def]
    import SimpleITK as sitk

    from medview.segedit import tools

    exe = require_tool("segimage2itkimage")
    db, session = _session(tmp_path)
    try:
        session.accept(demo_seg)
        lesion = next(s.value for s in demo_seg.segments if "lesion" in s.name)
        session.edit(tools.paint, [(30, 250.0, 200.0)], 8.0, lesion, axis=None)
        out = session.export(tmp_path / "out")
        edited = np.asarray(session.segmentation.labels.array)
        g = session.volume.geometry
    finally:
        db.close()
    dest = tmp_path / "dcmqi"
    dest.mkdir()
    subprocess.run(
        [
            exe,
            "--inputDICOM",
            str(out.path / "seg.dcm"),
            "--outputDirectory",
            str(dest),
            "--outputType",
            "nifti",
        ],
        check=True,
        capture_output=True,
    )
    meta = json.loads((dest / "meta.json").read_text())
    attributes = {
        s[0]["SegmentLabel"]: (i + 1, s[0]) for i, s in enumerate(meta["segmentAttributes"])
    }
    i, lesion_meta = attributes["lung lesion"]
    assert lesion_meta["SegmentAlgorithmType"] == "SEMIAUTOMATIC"
    img = sitk.ReadImage(str(dest / f"{i}.nii.gz"))
    zyx = np.argwhere(sitk.GetArrayFromImage(img) > 0)
    d = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    ours = np.round(g.lps_to_index(zyx[:, ::-1] @ d.T + np.array(img.GetOrigin()))).astype(int)
    mask = np.zeros(edited.shape, bool)
    mask[tuple(ours.T)] = True
    assert np.array_equal(mask, edited == lesion)


WRITER = """
import sys, numpy as np
sys.path.insert(0, {repo!r})
from medview.io.database import StudyDatabase
db = StudyDatabase({db!r})
rng = np.random.default_rng(int(sys.argv[1]))
print("ready", flush=True)
while True:  # a save of a new version, over and over, until killed
    labels = rng.integers(0, 3, size=(61, 512, 512), dtype=np.uint8)
    version = {{"version": int(labels[0, 0, 0])}}
    db.save_ai_result("k", "segmentation", version, {{"labels": labels}})
"""


def test_a_kill_during_a_save_leaves_a_whole_version(tmp_path: Path) -> None:
    """SIGKILL at random moments while a large segmentation is being saved again and again:
    the kept one always loads whole (the previous version or the new one, never a torn one)."""
    from medview.io.database import StudyDatabase

    path = tmp_path / "study.db"
    with StudyDatabase(path) as db:
        first = np.zeros((61, 512, 512), np.uint8)
        first[10:20, 100:200, 100:200] = 2
        db.save_ai_result("k", "segmentation", {"version": -1}, {"labels": first})
    script = WRITER.format(repo=str(REPO), db=str(path))
    rng = np.random.default_rng(0)
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(attempt)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.2, 2.5)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with StudyDatabase(path) as db:
            kept = db.ai_results("k")["segmentation"]
        data, arrays = kept
        labels = arrays["labels"]
        assert labels.shape == (61, 512, 512)
        if data["version"] == -1:
            assert np.array_equal(labels, first)
        else:
            assert labels.max() <= 2 and int(labels[0, 0, 0]) == data["version"]


def test_bad_edits_through_the_session_change_nothing(tmp_path: Path, demo_seg) -> None:  # type: ignore[no-untyped-def]
    from medview.segedit import tools
    from medview.segedit.editor import EditError

    db, session = _session(tmp_path)
    try:
        session.accept(demo_seg)
        history = list(session._undo)
        lung = next(s.value for s in demo_seg.segments if s.name == "lung")
        session.segment_editor().update_entry(lung, locked=True)
        labels = session.segmentation.labels.array.copy()
        with pytest.raises(EditError, match="locked"):
            session.edit(tools.paint, [(30, 250.0, 200.0)], 5.0, lung)
        with pytest.raises(EditError, match="outside"):
            session.edit(tools.paint, [(30, 250.0, 2000.0)], 5.0, lung + 1)
        assert np.array_equal(session.segmentation.labels.array, labels)
        assert session._undo == [*history, "segmentation"]  # the lock is a step; no edit
        assert session.undo() == "change segment"
        assert session.segment_editor().entry(lung).locked is False
    finally:
        db.close()


def test_a_series_read_again_at_once_waits_for_the_writes_before_it(
    tmp_path: Path, demo_seg
) -> None:  # type: ignore[no-untyped-def]
    """The window keeps in a worker: a series opened again before its edit is written must
    still come back with the edit (a read in another worker waits for the queued write)."""
    from concurrent.futures import ThreadPoolExecutor

    from medview.io.database import StudyDatabase
    from medview.io.scan import scan
    from medview.segedit import tools
    from medview.session import StudySession

    db = StudyDatabase(tmp_path / "study.db")
    db.import_paths([str(DEMO_CT)])
    writer = ThreadPoolExecutor(max_workers=1)
    started: list[float] = []

    def slow_keep(what: str, job) -> None:  # type: ignore[no-untyped-def]
        def late() -> None:
            started.append(time.perf_counter())
            time.sleep(1.0)  # a write that takes a while (a big segmentation on a slow disk)
            job()

        writer.submit(late)

    session = StudySession(db, keep=slow_keep)
    session.autosave = False
    series = scan([str(DEMO_CT)]).series[0]
    session.open(series)
    session.accept(demo_seg)
    lesion = next(s.value for s in demo_seg.segments if "lesion" in s.name)
    session.edit(tools.paint, [(30, 250.0, 200.0)], 8.0, lesion)
    edited = session.segmentation.labels.array.copy()
    session.keep_segmentation()
    reader = ThreadPoolExecutor(max_workers=1)
    t0 = time.perf_counter()
    opened = reader.submit(session.read, series).result(timeout=120)
    waited = time.perf_counter() - t0
    writer.shutdown(wait=True)
    reader.shutdown()
    assert started and waited >= 0.9  # it did wait for the write
    ((_, result, _),) = [k for k in opened.kept if k[0] == "segmentation"]
    assert result is not None and np.array_equal(result.labels.array, edited)
    session.show(opened)
    assert np.array_equal(session.segmentation.labels.array, edited)
    db.close()
