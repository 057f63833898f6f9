"""Derived objects in a reading: MedView's own SR opens back into the same measurements and
figures, a SEG opened into a session is editable and kept across a restart with the SR's
measurements, and bad objects fail with a message while the study still opens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_ct
from tests.io.derived_helpers import open_object


def _session_on_ct(folder: Path, db_path: Path):  # type: ignore[no-untyped-def]
    from medview.io.database import StudyDatabase
    from medview.session import StudySession

    db = StudyDatabase(db_path)
    db.import_paths([str(folder)])
    study = db.search()[0].study_uid
    series = [s for s in db.study_series(study)]
    session = StudySession(db)
    session.open(series[0])
    return db, session


def _measurements(volume):  # type: ignore[no-untyped-def]
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    g = volume.geometry

    def at(z: float, y: float, x: float) -> tuple[float, float, float]:
        p = g.index_to_lps(np.array([z, y, x]))
        return (float(p[0]), float(p[1]), float(p[2]))

    # positions off the pixel grid, as a mouse gives them (the SR stores them as float32:
    # a corner exactly on a pixel centre could flip that pixel in or out)
    return [
        Measurement(Kind.RULER, View.AXIAL, (at(3, 5.3, 5.2), at(3, 20.4, 25.1))),
        Measurement(Kind.ANGLE, View.AXIAL, (at(4, 5.2, 5.3), at(4, 15.1, 15.4), at(4, 5.3, 25.2))),
        Measurement(Kind.ELLIPSE, View.AXIAL, (at(5, 8.3, 6.2), at(5, 22.6, 28.3))),
        Measurement(Kind.RECTANGLE, View.AXIAL, (at(2, 4.3, 4.4), at(2, 18.2, 20.3))),
        Measurement(
            Kind.ARROW, View.AXIAL, (at(6, 10.2, 10.3), at(6, 14.4, 18.1)), text="look here"
        ),
        Measurement(Kind.RECTANGLE, View.CORONAL, (at(1.2, 16, 4.3), at(6.3, 16, 20.2))),
    ]


def test_medview_sr_opens_to_the_same_measurements(tmp_path: Path) -> None:
    from medview.session.derived import open_derived
    from medview.viewer.annotations import evaluate

    write_ct(tmp_path / "ct", n=8, rows=32, cols=32)
    db, session = _session_on_ct(tmp_path / "ct", tmp_path / "db.sqlite")
    try:
        drawn = _measurements(session.volume)
        for m in drawn:
            session.add_measurement(m)
        result = session.export(tmp_path / "out")
        assert "sr.dcm" in result.files
        (tmp_path / "sr").mkdir()
        (tmp_path / "sr" / "sr.dcm").write_bytes((result.path / "sr.dcm").read_bytes())
        obj, _, volume, opened = open_object(tmp_path / "ct", tmp_path / "sr", kind="SR")
        back = opened.measurements
        assert [m.kind for m in back] == [m.kind for m in drawn]
        assert [m.view for m in back] == [m.view for m in drawn]
        for a, b in zip(drawn, back, strict=True):
            assert np.allclose(a.points, b.points, atol=1e-3)
            assert b.text == a.text and b.source.startswith("SR: ")
            fa, fb = evaluate(a, volume), evaluate(b, volume)
            assert fa.keys() == fb.keys()
            for k in fa:
                assert fb[k] == pytest.approx(fa[k], rel=1e-6, abs=1e-6), k
        # the values the SR reported come back with them (as MedView measured them)
        ruler = back[0]
        assert ruler.reported[0][0] == "Length"
        assert ruler.reported[0][1] == pytest.approx(
            evaluate(drawn[0], volume)["length_mm"], rel=1e-5
        )
        # opened into the session: added as one step, undoable
        before = len(session.measurements.items)
        open_derived(session, obj)
        assert len(session.measurements.items) == before + len(drawn)
        session.undo()
        assert len(session.measurements.items) == before
    finally:
        db.close()


def test_an_opened_seg_is_editable_and_kept_across_a_restart(tmp_path: Path) -> None:
    from medview.core.results import Segment, segmentation_of
    from medview.core.volume import Volume
    from medview.export.dicom_objects import build_seg, read_sources
    from medview.io.database import StudyDatabase
    from medview.session import StudySession
    from medview.session.derived import open_derived
    from tests.io.derived_helpers import save

    write_ct(tmp_path / "ct", n=8, rows=32, cols=32)
    db, session = _session_on_ct(tmp_path / "ct", tmp_path / "db.sqlite")
    volume, series = session.volume, session.series
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:6, 8:20, 10:24] = 1
    labels[3:5, 12:16, 14:18] = 2
    made = segmentation_of(
        volume,
        Volume(labels.copy(), volume.geometry),
        (Segment(1, "organ"), Segment(2, "lesion", (0, 255, 0), finding=True)),
    )
    ds, _ = build_seg(series, read_sources(series), made)
    save(ds, tmp_path / "in" / "seg.dcm")
    db.import_paths([str(tmp_path / "in")])
    (obj,) = db.derived_objects(series.study_uid)
    assert obj.kind == "SEG" and obj.referenced_series == (series.series_uid,)
    notes = open_derived(session, obj)
    assert notes == []
    assert np.array_equal(session.segmentation.labels.array, labels)
    # editable: an edit changes it as a step of the reading, and it is kept
    stroke = np.zeros(volume.shape, bool)
    stroke[7, 0:4, 0:4] = True
    session.edit(lambda e: e.write("brush", stroke, 2))
    labels[7, 0:4, 0:4] = 2
    assert np.array_equal(session.segmentation.labels.array, labels)
    session.keep.wait()
    db.close()
    # restart: a new session on the same database gets it back with the series
    db2 = StudyDatabase(tmp_path / "db.sqlite")
    try:
        again = StudySession(db2)
        again.open(db2.study_series(series.study_uid)[0])
        assert again.segmentation is not None
        assert {s.name for s in again.segmentation.segments} >= {"organ", "lesion"}
        assert np.array_equal(np.asarray(again.segmentation.labels.array), labels)
        assert [o.sop_instance_uid for o in db2.derived_objects(series.study_uid)] == [
            obj.sop_instance_uid
        ]
    finally:
        db2.close()
