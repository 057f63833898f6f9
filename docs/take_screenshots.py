"""Retake the README's screenshots on a real X display with Qt's default (xcb) platform:

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/take_screenshots.py

Opens the demo chest CT as `medview` does, grabs the screen (MPR), draws a ruler and an
ellipse ROI (measurements), runs the shipped chest models (AI), corrects and draws segments
(segment editor), shows the 2x2 layout with the 3-D view (3-D), runs the reading as a pipeline
over the demo studies (batch) and grabs each time. Writes
docs/screenshot-*.png. A throw-away data folder is used; nothing of the user's is touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent


def main() -> int:
    if not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        print("run under an X server with the xcb platform (see the docstring)")
        return 2
    os.environ["MEDVIEW_HOME"] = tempfile.mkdtemp(prefix="medview-shots-")
    sys.path.insert(0, str(REPO))
    from PySide6.QtWidgets import QApplication

    from medview.app import create_window
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    window = create_window([str(REPO / "resources" / "demo" / "lung2")])
    window.resize(1600, 1000)
    window.show()
    app = QApplication.instance()
    assert app is not None

    def settle(until: object, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            app.processEvents()
            if until():  # type: ignore[operator]
                break
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)

    def grab(name: str) -> None:
        shot = app.primaryScreen().grabWindow(0)  # the X screen, as a user sees it
        shot.copy(window.frameGeometry()).save(str(DOCS / name))
        print("wrote", DOCS / name)

    settle(lambda: window.controller.state is not None and not window.runner.running)
    state = window.controller.state
    window.controller.go_to(View.AXIAL, 30)
    settle(lambda: True)
    grab("screenshot-mpr.png")

    g = state.volume.geometry

    def at(z: float, y: float, x: float) -> tuple[float, float, float]:
        return tuple(float(v) for v in g.index_to_lps([z, y, x]))  # type: ignore[return-value]

    window.controller.add_measurement(
        Measurement(Kind.RULER, View.AXIAL, (at(30, 300, 300), at(30, 330, 380)))
    )
    window.controller.add_measurement(
        Measurement(Kind.ELLIPSE, View.AXIAL, (at(30, 180, 120), at(30, 240, 190)))
    )
    window.measure_dock.raise_()
    settle(lambda: True)
    grab("screenshot-measure.png")

    for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
        window.models_panel.select(model)
        window.run_model(window.models_panel.selected(), "cpu")
        settle(lambda: not window.inference.running, timeout=300)
    window.models_dock.raise_()
    window.controller.go_to(View.AXIAL, 30)
    settle(lambda: True)
    grab("screenshot-ai.png")

    # the Segment editor: the model's lesion corrected with a brush stroke, a nodule drawn,
    # what it is chosen from the pick list, the body hidden from the Models legend
    from medview.segedit import tools

    session, dock = window.session, window.segment_dock
    dock.show()
    dock.raise_()
    lesion = next(e.segment.value for e in session.editor.table if "lesion" in e.segment.name)
    session.edit(tools.paint, [(30, 250.0, 200.0), (30, 262.0, 214.0)], 6.0, lesion)
    drawn = dock.add_segment("Nodule")
    assert drawn is not None
    session.edit(tools.paint, [(30, 236.0, 160.0)], 5.0, drawn, axis=None)
    dock.set_kind(drawn, "Cyst")
    body = next(e.segment.value for e in session.editor.table if e.segment.name == "body")
    session.editor.update_entry(body, "visibility", visible=False)
    dock.select(drawn)
    window.controller.go_to(View.AXIAL, 30)
    settle(lambda: True)
    grab("screenshot-segment-editor.png")

    # the 2x2 layout: the bone rendering with the lungs and the lesion as surfaces (the body
    # and the bone segments hidden, as in the 2-D views)
    bone = next(e.segment.value for e in session.editor.table if e.segment.name == "bone")
    session.editor.update_entry(bone, "visibility", visible=False)
    window.tools.set_layout("2x2")
    view3d = window.view3d
    settle(
        lambda: view3d.scene is not None and view3d.scene.surfaces and not window.runner.running,
        timeout=300,
    )
    view3d.scene.rotate(-25.0, 10.0)
    view3d.schedule()
    settle(lambda: True)
    grab("screenshot-3d.png")

    # the reading as a pipeline, run over the demo studies from File > Run on many studies…
    # (in one process here: the screenshot needs no Ray)
    from medview.ui.batch_actions import run_on_many_studies, save_reading_as_pipeline

    with tempfile.TemporaryDirectory(prefix="medview-shot-") as tmp:
        save_reading_as_pipeline(window, f"{tmp}/chest.toml")
        dialog = run_on_many_studies(window)
        dialog.folders.addItem(str(REPO / "resources" / "demo"))
        dialog.out.setText(f"{tmp}/results")
        dialog.engine.setCurrentIndex(2)
        dialog.run_button.click()
        settle(lambda: dialog.process is None, timeout=600)
        shot = app.primaryScreen().grabWindow(0)
        shot.copy(dialog.frameGeometry()).save(str(DOCS / "screenshot-batch.png"))
        dialog.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
