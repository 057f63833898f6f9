"""Measurements on a generated series with known geometry and pixel values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medview.io.database import StudyDatabase
from medview.io.loader import load_series
from medview.io.scan import scan
from medview.viewer.annotations import (
    Kind,
    Measurement,
    MeasurementList,
    describe,
    evaluate,
    slice_of,
)
from medview.viewer.mpr import View
from medview.viewer.state import ViewerState
from tests.conftest import write_ct


@pytest.fixture
def state(tmp_path: Path) -> ViewerState:
    values = np.full((10, 40, 50), 40, np.int16)
    values[4, 10:20, 20:30] = 100  # a 10 x 10 pixel block of 100 HU on slice 4
    values[4, 12, 22] = 160
    write_ct(
        tmp_path / "s",
        n=10,
        rows=40,
        cols=50,
        values=values,
        spacing=(0.5, 0.8, 2.0),
        origin=(-10, -20, 30),
    )
    return ViewerState(load_series(scan([tmp_path / "s"]).series[0]))


def _lps(state: ViewerState, view: View, k: float, r: float, c: float) -> tuple[float, ...]:
    zyx = state.mapping(view).from_screen(np.array([k, r, c]))
    return tuple(state.volume.geometry.index_to_lps(zyx))


def test_ruler_length_uses_spacing(state: ViewerState) -> None:
    m = Measurement(
        Kind.RULER,
        View.AXIAL,
        (_lps(state, View.AXIAL, 4, 0, 0), _lps(state, View.AXIAL, 4, 30, 40)),
    )
    # 30 rows x 0.8 mm, 40 columns x 0.5 mm
    assert evaluate(m, state.volume)["length_mm"] == pytest.approx(np.hypot(24, 20))
    # along the slice axis in a coronal view: 5 slices x 2 mm
    m2 = Measurement(
        Kind.RULER,
        View.CORONAL,
        (_lps(state, View.CORONAL, 10, 2, 5), _lps(state, View.CORONAL, 10, 7, 5)),
    )
    assert evaluate(m2, state.volume)["length_mm"] == pytest.approx(10.0)
    assert describe(m, state.volume).startswith("ruler: 31.2 mm")


def test_rectangle_and_ellipse_stats(state: ViewerState) -> None:
    m = Measurement(
        Kind.RECTANGLE,
        View.AXIAL,
        (_lps(state, View.AXIAL, 4, 10, 20), _lps(state, View.AXIAL, 4, 19, 29)),
    )
    v = evaluate(m, state.volume)
    assert v["pixels"] == 100 and v["max"] == 160 and v["min"] == 100
    assert v["mean"] == pytest.approx(100.6)
    assert v["area_mm2"] == pytest.approx(9 * 0.8 * 9 * 0.5)
    assert slice_of(m, state.volume) == 4
    e = Measurement(
        Kind.ELLIPSE,
        View.AXIAL,
        (_lps(state, View.AXIAL, 4, 10, 20), _lps(state, View.AXIAL, 4, 19, 29)),
    )
    ve = evaluate(e, state.volume)
    assert 50 < ve["pixels"] < 100 and ve["min"] >= 100
    assert ve["area_mm2"] == pytest.approx(np.pi * 4.5 * 0.8 * 4.5 * 0.5)


def test_angle(state: ViewerState) -> None:
    m = Measurement(
        Kind.ANGLE,
        View.AXIAL,
        (
            _lps(state, View.AXIAL, 4, 0, 10),
            _lps(state, View.AXIAL, 4, 0, 0),
            _lps(state, View.AXIAL, 4, 10, 0),
        ),
    )
    assert evaluate(m, state.volume)["angle_deg"] == pytest.approx(90)


def test_undo_redo_and_persistence(state: ViewerState, tmp_path: Path) -> None:
    ms = MeasurementList()
    a = Measurement(Kind.RULER, View.AXIAL, ((0, 0, 0), (1, 0, 0)))
    b = Measurement(Kind.ARROW, View.AXIAL, ((0, 0, 0), (0, 1, 0)), text="nodule")
    ms.add(a)
    ms.add(b)
    ms.move_point(a.id, 1, (3, 4, 0))
    assert ms.get(a.id).points[1] == (3, 4, 0)
    assert ms.undo() and ms.get(a.id).points[1] == (1, 0, 0)
    assert ms.redo() and ms.get(a.id).points[1] == (3, 4, 0)
    ms.remove(b.id)
    assert [m.id for m in ms.items] == [a.id]
    assert ms.undo() and len(ms.items) == 2
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.save_measurements("series-1", [m.to_dict() for m in ms.items])
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        back = [Measurement.from_dict(d) for d in db.load_measurements("series-1")]
        assert back == ms.items
        assert db.load_measurements("other") == []
