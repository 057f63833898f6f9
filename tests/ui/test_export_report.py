"""File > Export report in the window: the shown series, its AI result, measurements, key
images and kept risk result go into the bundle, written in the background."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom

from tests.conftest import require_tool, write_ct
from tests.ui.conftest import wait_for_volume


def test_export_report_from_the_window(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.core.results import Provenance, Segment, Segmentation, SegmentStats
    from medview.core.volume import Volume
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    write_ct(tmp_path / "ct", n=8, rows=32, cols=32)
    window.import_paths([str(tmp_path / "ct")])
    wait_for_volume(qtbot, window)
    state = window.controller.state
    volume = state.volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:5, 8:20, 8:20] = 1
    result = Segmentation(
        labels=Volume(labels, volume.geometry, volume.frame_of_reference_uid),
        segments=(Segment(1, "nodule", (255, 0, 0)),),
        stats=(SegmentStats(1, "nodule", int(labels.sum()), 0.5, 10.0, 2.0, 5.0, 15.0),),
        provenance=Provenance("ui-test", "UI test model", "0.1", "cd" * 32, "cpu", 1.5),
    )
    window.session.accept(result)
    g = volume.geometry
    a, b = (tuple(g.index_to_lps(np.array(p, float)).tolist()) for p in ((3, 4, 4), (3, 25, 28)))
    window.controller.add_measurement(Measurement(Kind.RULER, View.AXIAL, (a, b)))
    window.controller.go_to(View.AXIAL, 6)
    window.report.add_key_image()
    assert [(k.view, k.index) for k in window.session.key_images] == [
        (window.tools.active_view().value, state.slice_index(window.tools.active_view()))
    ]
    window.session.keep_risk_result(  # as the risk panel keeps one
        "m",
        {
            "model": "m",
            "model_name": "Kept risk",
            "inputs": {"age": 60},
            "origins": {},
            "result": {
                "outcome": "event",
                "probability": 0.27,
                "interval_95": [0.2, 0.35],
                "band": "high",
                "contributions_log_odds": {"age": 0.4},
            },
            "saved": "now",
        },
    )
    task = window.export_report(out_dir=str(tmp_path / "out"))
    assert task is not None
    qtbot.waitUntil(lambda: window.session.last_export is not None, timeout=60000)
    bundle = window.session.last_export.path
    assert {"seg.dcm", "sr.dcm", "report.pdf", "key-images/key-01.png"} <= set(
        window.session.last_export.files
    )
    seg = pydicom.dcmread(bundle / "seg.dcm", stop_before_pixels=True)
    assert (
        seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName
        == "UI test model"
    )
    text = subprocess.run(
        [require_tool("pdftotext"), str(bundle / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for needle in ("UI test model", "cd" * 32, "Kept risk", "27.0 %", "key image 1", "nodule"):
        assert needle in text
    notices = [window.notices.item(i).text() for i in range(window.notices.count())]
    assert any(n.startswith("Report written") and "0 error(s)" in n for n in notices)
