"""The 3-D view in the window: layouts and the swap shortcut, a rendered frame of the demo
CT, picking with the mouse, surfaces that follow the segment editor, the key image in the
report, and VTK left unimported until the view is shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt

from tests.conftest import DEMO_CT, REPO
from tests.ui.conftest import wait_for_volume
from tests.viewer.phantoms3d import ball, project


def _frame(qtbot, view3d) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The pixels the 3-D view shows, once drawn."""
    qtbot.waitUntil(lambda: view3d.area.frame is not None, timeout=30000)
    qtbot.wait(50)
    assert view3d.area._pixels is not None
    return view3d.area._pixels


def test_vtk_waits_until_the_3d_view_is_shown() -> None:
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
import tempfile
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from medview.io.database import StudyDatabase
from medview.ui.main_window import MainWindow
app = QApplication([])
tmp = Path(tempfile.mkdtemp())
settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
w = MainWindow(StudyDatabase(tmp / "db.sqlite"), settings)
w.show()
app.processEvents()
before = any(m.startswith(("vtk", "vtkmodules")) for m in sys.modules)
w.tools.set_layout("2x2")
w.import_paths([{str(DEMO_CT)!r}])
import time
t = time.time()
while w.view3d.scene is None and time.time() - t < 60:
    app.processEvents()
    time.sleep(0.02)
print(before, "vtkmodules" in sys.modules, w.view3d.scene is not None)
w.close()
"""
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-3:] == ["False", "True", "True"], r.stdout + r.stderr


def test_layouts_swap_and_a_rendered_frame(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from medview.viewer.mpr import View

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    view3d = window.view3d
    assert not view3d.isVisible()  # the default layout is the three MPR views
    window.tools.set_layout("2x2")
    assert [v.view for v in window.viewer.visible_views()] == [
        View.AXIAL,
        View.CORONAL,
        View.SAGITTAL,
    ]
    assert view3d.isVisible()
    rgb = _frame(qtbot, view3d)
    assert (rgb.max(axis=-1) > 8).mean() > 0.1 and rgb.std() > 15  # not blank
    assert view3d.preset.currentText() == "CT bone"
    assert "ray casting" in view3d.caption()

    # "V" swaps the active 2-D view and the 3-D view; again, back
    window.tools.set_layout("1x3")
    window.controller.set_active(window.viewer.views[View.CORONAL])
    where = window.viewer.grid.getItemPosition(
        window.viewer.grid.indexOf(window.viewer.views[View.CORONAL])
    )
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert view3d.isVisible() and not window.viewer.views[View.CORONAL].isVisible()
    assert window.viewer.grid.getItemPosition(window.viewer.grid.indexOf(view3d)) == where
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert not view3d.isVisible() and window.viewer.views[View.CORONAL].isVisible()
    window.tools.set_layout("3d")
    assert view3d.isVisible() and window.viewer.visible_views() == []


def test_click_on_the_rendering_moves_the_crosshair(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """A ball phantom shown in the 3-D layout: a click on its rendered centre puts the
    crosshair on its front surface (within a voxel), and the MPR views follow."""
    from medview.core.geometry import Geometry
    from medview.core.volume import Volume
    from medview.viewer.mpr import View

    g = Geometry((80, 90, 100), (-50.0, -40.0, -60.0), (1.0, 1.0, 1.0))
    centre = np.array([-5.0, 2.0, -20.0])
    arr = ball(g, centre, 18.0)
    window.tools.set_layout("3d")
    window.controller.set_volume(Volume(arr, g, modality="CT"), {"modality": "CT"})
    view3d = window.view3d
    _frame(qtbot, view3d)
    scene = view3d.scene
    cam = scene.renderer.GetActiveCamera()
    w, h = scene.window.GetSize()
    x, y, _ = project(scene, centre)
    x, y = x * view3d.area.width() / w, y * view3d.area.height() / h
    # a right-drag adjusts the transfer function; a left-drag turns the camera (neither
    # moves the crosshair)
    before_tf, before_cam = scene.tf, np.array(cam.GetPosition())
    crosshair = window.controller.state.crosshair.copy()
    area = view3d.area
    qtbot.mousePress(area, Qt.MouseButton.RightButton, pos=QPoint(50, 50))
    qtbot.mouseMove(area, QPoint(90, 20))
    qtbot.mouseRelease(area, Qt.MouseButton.RightButton, pos=QPoint(90, 20))
    assert scene.tf.shift > before_tf.shift and scene.tf.scale > before_tf.scale
    scene.set_transfer(before_tf)
    qtbot.mousePress(area, Qt.MouseButton.LeftButton, pos=QPoint(50, 50))
    qtbot.mouseMove(area, QPoint(120, 60))
    qtbot.mouseRelease(area, Qt.MouseButton.LeftButton, pos=QPoint(120, 60))
    assert np.linalg.norm(np.array(cam.GetPosition()) - before_cam) > 1.0
    assert np.array_equal(window.controller.state.crosshair, crosshair)
    view3d.look_from("A")
    qtbot.mouseClick(view3d.area, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    front = centre - 18.0 * np.array(cam.GetDirectionOfProjection())
    state = window.controller.state
    got = g.index_to_lps(state.crosshair)
    assert np.linalg.norm(got - front) <= 1.5, (got, front)  # a voxel, and the click's pixel
    want_slice = g.lps_to_index(front)[0]
    assert abs(state.slice_index(View.AXIAL) - want_slice) <= 1


def test_surfaces_follow_the_segment_editor_and_the_key_image_reaches_the_report(
    qtbot, window, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.segedit import tools
    from medview.viewer.surfaces import enclosed_volume

    window.import_paths([str(DEMO_CT)])
    wait_for_volume(qtbot, window)
    window.tools.set_layout("2x2")
    view3d = window.view3d
    _frame(qtbot, view3d)
    session = window.session
    value = window.segment_dock.add_segment("Nodule")
    session.edit(tools.paint, [(30, 250.0, 250.0), (31, 250.0, 250.0)], 8.0, value, axis=None)
    qtbot.waitUntil(lambda: value in view3d.scene.surfaces, timeout=30000)
    voxel = float(np.prod(session.volume.geometry.spacing))

    def enclosed() -> float:
        poly = view3d.scene.surfaces[value].GetMapper().GetInput()
        from vtkmodules.util.numpy_support import vtk_to_numpy

        pts = vtk_to_numpy(poly.GetPoints().GetData())
        tris = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)
        return enclosed_volume(pts, tris)

    def mask_mm3() -> float:
        return float((session.segmentation.labels.array == value).sum()) * voxel

    assert abs(enclosed() / mask_mm3() - 1) < 0.03
    first = enclosed()
    session.edit(tools.paint, [(30, 300.0, 300.0)], 10.0, value, axis=None)  # an edit lands
    qtbot.waitUntil(lambda: abs(enclosed() - first) > 100, timeout=30000)
    assert abs(enclosed() / mask_mm3() - 1) < 0.03
    # the surface's colour is the overlay's, and it hides with the segment
    overlay = window.controller.state.overlay
    colour = view3d.scene.surfaces[value].GetProperty().GetColor()
    assert np.allclose(colour, np.array(overlay.colors[value]) / 255)
    actor = view3d.scene.surfaces[value]
    session.editor.update_entry(value, "visibility", visible=False)
    qtbot.waitUntil(lambda: not view3d.scene.surfaces[value].GetVisibility(), timeout=5000)
    session.editor.update_entry(value, "visibility", visible=True)
    qtbot.waitUntil(lambda: view3d.scene.surfaces[value].GetVisibility(), timeout=5000)
    qtbot.wait(600)  # hiding is not an edit: the surfaces are not made again
    assert view3d.scene.surfaces[value] is actor

    # "Key image" puts the rendering into the report
    view3d.key_button.click()
    key = session.key_images[-1]
    assert key.view == "3d" and key.picture.startswith(b"\x89PNG")
    out = tmp_path / "out"
    out.mkdir()
    task = window.export_report(out_dir=str(out))
    assert task is not None
    qtbot.waitUntil(lambda: task.id not in [t.id for t in window.runner.running], timeout=120000)
    bundle = next(out.iterdir())
    from PIL import Image

    img = Image.open(bundle / "key-images" / "key-01.png")
    assert np.asarray(img).std() > 15
    text = subprocess.run(
        ["pdftotext", str(bundle / "report.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert "3-D rendering" in text
