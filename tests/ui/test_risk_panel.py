"""The risk panel in the window: values from the study, overrides, highlighted problems,
the result with its interval and contributions, CSV import, the card, kept results."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import edit, write_ct
from tests.ui.conftest import wait_for_volume

CHD = "framingham-chd-10y"


def _open_study(qtbot, window, tmp_path: Path, **header) -> None:  # type: ignore[no-untyped-def]
    for path in write_ct(tmp_path / "ct", n=6, rows=32, cols=32):
        edit(path, **header)
    window.import_paths([str(tmp_path / "ct")])
    wait_for_volume(qtbot, window)
    qtbot.waitUntil(lambda: window.risk_panel.study_uid is not None, timeout=10000)


def _type(qtbot, panel, name: str, text: str) -> None:  # type: ignore[no-untyped-def]
    editor = panel._rows[name].editor
    editor.clear()
    qtbot.keyClicks(editor, text)


def test_study_values_fill_in_and_can_be_overridden(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _open_study(
        qtbot,
        window,
        tmp_path,
        PatientAge="063Y",
        PatientSex="M",
        PatientWeight=80,
        PatientSize=1.75,
    )
    panel = window.risk_panel
    panel.select(CHD)
    assert panel.text("age") == "63" and panel.origin("age") == "from study: DICOM PatientAge"
    assert panel.text("male") == "1" and panel.origin("male").startswith("from study")
    assert panel.text("BMI") == "26.12"
    assert panel.result is not None  # sex and age are enough; the rest is missing
    wide = panel.result.high - panel.result.low
    _type(qtbot, panel, "age", "50")
    assert panel.origin("age") == "overridden (study: 63)"
    for name, text in (("sysBP", "150"), ("totChol", "240"), ("glucose", "90")):
        _type(qtbot, panel, name, text)
    assert panel.result is not None and panel.result.high - panel.result.low < wide
    assert panel.probability.text().endswith("%") and panel.band.text().strip()
    assert panel.chart.rows() and "not for diagnosis" in panel.research.text()
    assert panel.research.isVisible()


def test_bad_values_are_highlighted_and_give_no_prediction(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _open_study(qtbot, window, tmp_path, PatientAge="055Y", PatientSex="F")
    panel = window.risk_panel
    panel.select(CHD)
    _type(qtbot, panel, "totChol", "5.2")
    row = panel._rows["totChol"]
    assert "mmol/L" in row.message.text() and row.message.isVisible()
    assert "#ffd6d6" in row.editor.styleSheet()
    assert panel.result is None and panel.probability.text() == "—"
    assert "No prediction" in panel.detail.text() and not panel.chart.rows()
    _type(qtbot, panel, "totChol", "201")
    assert panel.result is not None and not row.message.isVisible()
    _type(qtbot, panel, "age", "25")  # outside the training range: flagged, still predicted
    assert panel.result is not None and "extrapolates" in panel._rows["age"].message.text()
    assert panel.text("age") == "25"


def test_centimetre_size_is_explained_not_used(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _open_study(qtbot, window, tmp_path, PatientSex="M", PatientWeight=80, PatientSize=175)
    panel = window.risk_panel
    panel.select(CHD)
    assert panel.text("BMI") == "" and "centimetres" in panel.notes.text()


def test_csv_row_card_and_kept_result(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _open_study(qtbot, window, tmp_path, PatientAge="061Y", PatientSex="M")
    panel = window.risk_panel
    panel.select(CHD)
    csv = tmp_path / "row.csv"
    csv.write_text("age,sysBP,totChol,diabetes,smoking\n66,170,280,1,yes\n50,120,200,0,no\n")
    note = panel.import_csv(str(csv))
    assert "row 1 of 2" in note and "smoking" in note
    assert panel.text("sysBP") == "170" and panel.origin("sysBP") == "from CSV"
    assert panel.text("diabetes") == "1"
    assert panel.result is not None
    probability = panel.result.probability
    dialog = panel.show_card()
    assert (
        dialog is not None
        and "Research use only"
        in dialog.findChild(
            __import__("PySide6.QtWidgets", fromlist=["QTextBrowser"]).QTextBrowser
        ).toPlainText()
    )
    dialog.close()
    panel.flush()
    qtbot.waitUntil(lambda: not window.keeper.running, timeout=10000)  # kept in a worker
    study = window.current_series.study_uid
    kept = window.db.risk_results(study)[CHD]
    assert kept["inputs"]["sysBP"] == "170" and kept["origins"]["sysBP"] == "from CSV"
    assert kept["result"]["probability"] == round(probability, 6)
    # the study opened again restores what was kept
    panel.set_study(study, None, window.db.risk_results(study))
    assert panel.text("sysBP") == "170" and panel.result is not None
    assert panel.result.probability == probability


def test_values_from_a_measurement_and_a_segment(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMenu

    from medview.risk.study import SegmentStat
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    _open_study(qtbot, window, tmp_path, PatientAge="061Y", PatientSex="M")
    state = window.controller.state
    z = float(state.volume.geometry.index_to_lps((2, 0, 0))[2])
    ruler = Measurement(Kind.RULER, View.AXIAL, ((0.0, 0.0, z), (30.0, 40.0, z)))
    window.controller.add_measurement(ruler)
    window.measure_list.setCurrentRow(0)
    window.risk_dock.segments = [SegmentStat("lesion", 12.5, 35.0)]
    panel = window.risk_panel
    panel.select(CHD)
    menu = QMenu()
    panel._fill_menu("heartRate", menu)
    actions = {a.text(): a for a in menu.actions()}
    length = next(a for t, a in actions.items() if "length_mm" in t)
    length.trigger()
    assert panel.text("heartRate") == "50"  # a 30-40-50 ruler, in mm
    assert panel.origin("heartRate") == "from study: measurement length_mm"
    next(a for t, a in actions.items() if "lesion: volume" in t).trigger()
    assert panel.text("heartRate") == "12.5" and "segment lesion volume" in panel.origin(
        "heartRate"
    )
    menu.deleteLater()


def test_nothing_entered_is_not_a_prediction(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _open_study(qtbot, window, tmp_path, PatientSex=None)  # a header with no age, sex or size
    panel = window.risk_panel
    panel.select("breast-mass-malignancy")
    assert panel.result is None and panel.probability.text() == "—"
    assert "every feature is missing" in panel.detail.text()
    panel.flush()
    assert window.db.risk_results(window.current_series.study_uid) == {}


def _open_demo(qtbot, window, folder) -> None:  # type: ignore[no-untyped-def]
    window.import_paths([str(folder)])
    wait_for_volume(qtbot, window)
    qtbot.waitUntil(lambda: window.risk_panel.study_uid is not None, timeout=10000)


def test_default_model_follows_the_study_and_the_readers_choice(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import DEMO_CT, DEMO_MR
    from tests.ui.conftest import open_window

    window = open_window(qtbot, tmp_path)
    _open_demo(qtbot, window, DEMO_CT)  # a chest CT: the coronary risk model
    assert window.risk_panel.model is not None and window.risk_panel.model.id == CHD
    window.risk_panel.study_uid  # noqa: B018
    window.risk_dock.study_changed(None)
    _open_demo(qtbot, window, DEMO_MR)  # a brain MR: no model is made for it
    qtbot.waitUntil(lambda: window.risk_panel.model is None, timeout=10000)
    assert window.risk_panel.model_box.currentData() is None
    window.risk_panel.select("breast-mass-malignancy")  # the reader's choice for MR heads
    window.close()
    window.db.close()
    again = open_window(qtbot, tmp_path)  # restarted: the choice is remembered
    try:
        _open_demo(qtbot, again, DEMO_MR)
        qtbot.waitUntil(lambda: again.risk_panel.model is not None, timeout=10000)
        assert again.risk_panel.model.id == "breast-mass-malignancy"
    finally:
        again.close()
        again.db.close()


def test_fill_from_study_reports_and_no_band_without_inputs(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _open_study(qtbot, window, tmp_path, PatientAge="061Y", PatientSex="M")
    panel = window.risk_panel
    panel.select(CHD)
    panel.fill_from_study()
    note = panel.notes.text()
    assert "Filled from the study:" in note and "Age" in note and "Sex" in note
    assert "entered by hand or from a CSV row" in note
    # 2 of 15 inputs: a probability, but no band the card does not vouch for
    assert panel.result is not None and panel.result.band == "insufficient inputs"
    assert "insufficient inputs" in panel.band.text() and "the card allows 3" in panel.band.text()
    assert not panel.band.text().strip().startswith(("low", "intermediate", "high"))
    assert "–" in panel.probability.text()  # the interval, not a point figure
    # enough inputs: the band comes back; the form kept its room
    before = panel.form_area.height()
    csv = tmp_path / "row.csv"
    csv.write_text(
        "age,sex,education,currentSmoker,cigsPerDay,BPMeds,prevalentStroke,prevalentHyp,"
        "diabetes,totChol,sysBP,diaBP,BMI,heartRate,glucose\n"
        "61,1,2,1,20,0,0,1,0,250,150,90,27,80,90\n"
    )
    panel.import_csv(str(csv))
    assert panel.result is not None and panel.result.band in ("low", "intermediate", "high")
    assert panel.form_area.height() >= before - 2
    assert panel.form_area.height() >= 8 * 30
