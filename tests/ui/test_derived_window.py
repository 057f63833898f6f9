"""The window: a SEG and an RT structure set beside the demo CT are listed under it in the
study browser (not as image series); double-clicking one shows it on the CT as an editable
segmentation; what was opened comes back after a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import DEMO_CT
from tests.io.derived_helpers import save
from tests.ui.conftest import open_window, wait_for_volume


def _objects(folder: Path) -> np.ndarray:
    from medview.core.results import Segment, segmentation_of
    from medview.core.volume import Volume
    from medview.export.dicom_objects import build_seg, read_sources
    from medview.export.rtstruct import build_rtstruct
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([str(DEMO_CT)], workers=1).series[0]
    volume = load_series(series)
    labels = (np.asarray(volume.array) > 300).astype(np.uint8)  # bone
    labels[20:30, 200:260, 200:260] = 2
    seg = segmentation_of(
        volume,
        Volume(labels, volume.geometry),
        (Segment(1, "bone"), Segment(2, "block", (0, 200, 0))),
    )
    sources = read_sources(series)
    save(build_seg(series, sources, seg)[0], folder / "seg.dcm")
    save(build_rtstruct(series, sources, seg, label="RT plan"), folder / "rtstruct.dcm")
    return labels


def test_browser_lists_objects_under_their_series_and_opens_them(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    labels = _objects(tmp_path / "objects")
    home = tmp_path / "home"
    home.mkdir()
    w = open_window(qtbot, home)
    try:
        w.import_paths([str(DEMO_CT), str(tmp_path / "objects")])
        wait_for_volume(qtbot, w)
        qtbot.waitUntil(lambda: len(w.browser.derived_items()) == 2, timeout=20000)
        assert len(w.browser.series_items()) == 1  # the SEG and RTSTRUCT are not image series
        by_kind = {i.text(1): i for i in w.browser.derived_items()}
        assert set(by_kind) == {"SEG", "RTSTRUCT"}
        for item in by_kind.values():
            assert item.parent() is w.browser.series_items()[0]  # under the CT
            assert not item.icon(0).isNull()
        w.browser._activated(by_kind["RTSTRUCT"])
        qtbot.waitUntil(
            lambda: not w.runner.running and w.session.segmentation is not None, timeout=30000
        )
        got = np.asarray(w.session.segmentation.labels.array)
        for v in (1, 2):
            a, b = got == v, labels == v
            assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.98
        w.browser._activated(by_kind["SEG"])
        qtbot.waitUntil(
            lambda: (
                not w.runner.running
                and any(
                    "Opened Segmentation" in w.notices.item(i).text()
                    for i in range(w.notices.count())
                )
            ),
            timeout=30000,
        )
        assert np.array_equal(np.asarray(w.session.segmentation.labels.array), labels)
        assert {s.name for s in w.session.segmentation.segments} == {"bone", "block"}
        # said to be opened from the SEG, not presented as a model MedView ran
        from medview.ui.ai_results import opened_line

        assert opened_line(w.session.segmentation).startswith("Opened from a DICOM SEG: ")
        qtbot.waitUntil(lambda: not w.runner.running, timeout=20000)
    finally:
        w.close()
        w.db.close()
    again = open_window(qtbot, home)  # restart
    try:
        again.open_stack(None, study_uid=again.db.search()[0].study_uid)
        wait_for_volume(qtbot, again)
        qtbot.waitUntil(lambda: again.session.segmentation is not None, timeout=20000)
        assert np.array_equal(np.asarray(again.session.segmentation.labels.array), labels)
        qtbot.waitUntil(lambda: len(again.browser.derived_items()) == 2, timeout=20000)
    finally:
        again.close()
        again.db.close()
