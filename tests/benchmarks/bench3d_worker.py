"""One measurement of the 3-D benchmark in a fresh process (its own OpenGL context, its own
memory): ``python bench3d_worker.py MODE VOLUME.npy SPACING.json [SIZE]``; prints JSON.

Modes: ``medview`` (the window's 3-D view shown on the volume: first frame, frame times
while turning and still, memory above the volume), ``medview-full`` (the same drawing every
voxel), ``vtk`` (VTK's bare pipeline: a render window, the ray-cast mapper VTK picks for
this OpenGL, the same transfer function, shading), ``surfaces`` (10 segments: MedView's
surfaces in a worker with the GUI thread's longest stall, and VTK's bare surface nets).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def volume_of(path: str, spacing_file: str):  # type: ignore[no-untyped-def]
    from medview.core.geometry import Geometry
    from medview.core.volume import Volume

    arr = np.load(path)
    spacing = json.loads(Path(spacing_file).read_text())
    return Volume(arr, Geometry(arr.shape, (0.0, 0.0, 0.0), spacing), modality="CT", units="HU")


def medview(volume, size: int, full: bool) -> dict:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QApplication

    from medview.ui.bridge import TaskRunner
    from medview.ui.controller import ViewerController
    from medview.ui.view3d import View3D

    app = QApplication.instance() or QApplication([])
    controller = ViewerController()
    runner = TaskRunner()
    view = View3D(controller, runner)
    view.detail_box.setChecked(full)
    controller.set_volume(volume, {"modality": "CT"})
    view.resize(size, size + view.area.y())
    before = rss_mb()
    t0 = time.perf_counter()
    view.show()
    while view.area.frame is None:
        app.processEvents()
    first = time.perf_counter() - t0

    def frame_times(moving: bool, n: int) -> list[float]:
        times = []
        for _ in range(n):
            view.scene.rotate(4.0, 1.0)
            view.scene.interactive(moving)
            t = time.perf_counter()
            view._render_now()
            times.append(time.perf_counter() - t)
        return times

    moving, still = frame_times(True, 8), frame_times(False, 4)
    out = {
        "first": first,
        "moving": statistics.median(moving),
        "still": statistics.median(still),
        "rss": rss_mb() - before,
        "mapper": view.scene.mapper_kind,
        "renderer": view.scene.gl_renderer,
        "drawn": list(view.scene.drawn.shape),
    }
    view.shutdown()
    return out


def empty() -> dict:
    """The part of the 3-D view's memory that does not depend on the volume: VTK's libraries
    and an OpenGL context."""
    from medview.viewer.scene3d import Scene3D

    before = rss_mb()
    scene = Scene3D((512, 512))
    scene.render()
    return {"rss": rss_mb() - before}


def bare_vtk(volume, size: int) -> dict:  # type: ignore[no-untyped-def]
    """VTK's own pipeline, as its examples build it."""
    import vtkmodules.vtkRenderingOpenGL2
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import (
        vtkColorTransferFunction,
        vtkRenderer,
        vtkRenderWindow,
        vtkVolume,
        vtkVolumeProperty,
    )
    from vtkmodules.vtkRenderingVolume import (
        vtkFixedPointVolumeRayCastMapper,
        vtkGPUVolumeRayCastMapper,
    )

    from medview.viewer.transfer import PRESETS

    before = rss_mb()
    t0 = time.perf_counter()
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(size, size)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    window.Render()
    software = "llvmpipe" in window.ReportCapabilities()
    image = vtkImageData()
    z, y, x = volume.shape
    image.SetDimensions(x, y, z)
    image.SetSpacing(*volume.geometry.spacing)
    image.GetPointData().SetScalars(numpy_to_vtk(volume.array.reshape(-1), deep=False))
    mapper = vtkFixedPointVolumeRayCastMapper() if software else vtkGPUVolumeRayCastMapper()
    mapper.SetInputData(image)
    colour, opacity = vtkColorTransferFunction(), vtkPiecewiseFunction()
    for v, r, g, b, a in next(p for p in PRESETS if p.name == "CT bone").points:
        colour.AddRGBPoint(v, r, g, b)
        opacity.AddPoint(v, a)
    prop = vtkVolumeProperty()
    prop.SetColor(colour)
    prop.SetScalarOpacity(opacity)
    prop.ShadeOn()
    prop.SetInterpolationTypeToLinear()
    actor = vtkVolume()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    renderer.AddVolume(actor)
    # the framing MedView's A view uses (the same rays to cast): from the front, fitted
    extent = (np.array(volume.shape[::-1]) - 1) * np.asarray(volume.geometry.spacing)
    centre = extent / 2
    cam = renderer.GetActiveCamera()
    cam.ParallelProjectionOn()
    cam.SetFocalPoint(*centre)
    cam.SetPosition(centre[0], centre[1] - 4 * float(np.linalg.norm(extent)), centre[2])
    cam.SetViewUp(0.0, 0.0, 1.0)
    cam.SetParallelScale(max(extent[2], extent[0]) / 2 * 1.05)
    renderer.ResetCameraClippingRange()
    window.Render()
    first = time.perf_counter() - t0
    frames = []
    for _ in range(6):
        renderer.GetActiveCamera().Azimuth(4.0)
        t = time.perf_counter()
        window.Render()
        frames.append(time.perf_counter() - t)
    return {
        "first": first,
        "still": statistics.median(frames),
        "rss": rss_mb() - before,
        "mapper": "cpu" if software else "gpu",
    }


def ten_segments(volume) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Ten segments of the CT as a segmentation would have them: the body, the right and
    left lung, the bones (thin, branching: the heaviest surface), and six nodules of 5 to
    30 mm in the lungs."""
    from scipy import ndimage

    a = volume.array
    labels = np.zeros(a.shape, np.uint8)
    parts, _ = ndimage.label(a > -500)
    sizes = np.bincount(parts.ravel())
    sizes[0] = 0
    body = parts == int(np.argmax(sizes))
    labels[body] = 1
    air, _ = ndimage.label((a < -400) & ~body)
    border = np.unique(
        np.concatenate(
            [air[:, 0].ravel(), air[:, -1].ravel(), air[:, :, 0].ravel(), air[:, :, -1].ravel()]
        )
    )
    sizes = np.bincount(air.ravel())
    sizes[border] = 0
    lungs = np.argsort(sizes)[::-1][:2]
    centres = [ndimage.center_of_mass(air == k)[2] for k in lungs]
    for value, k in zip(
        (2, 3), sorted(lungs, key=lambda k: centres[list(lungs).index(k)]), strict=True
    ):
        labels[air == k] = value
    labels[(a > 200) & body] = 4
    rng = np.random.default_rng(7)
    zz, yy, xx = np.ogrid[: a.shape[0], : a.shape[1], : a.shape[2]]
    sz, sy, sx = volume.geometry.spacing[::-1]
    inside = np.argwhere(labels[:, ::8, ::8] == 2) * [1, 8, 8]
    for value in range(5, 11):
        c = inside[rng.integers(len(inside))]
        r = rng.uniform(2.5, 15.0)
        d2 = ((zz - c[0]) * sz) ** 2 + ((yy - c[1]) * sy) ** 2 + ((xx - c[2]) * sx) ** 2
        labels[d2 < r * r] = value
    return labels


def surfaces(volume) -> dict:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D

    from medview.ui.bridge import TaskRunner
    from medview.viewer.surfaces import segment_surfaces

    labels = ten_segments(volume)
    z, y, x = volume.shape
    app = QApplication.instance() or QApplication([])
    runner = TaskRunner()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    done: list[object] = []
    times = []
    for _ in range(3):
        done.clear()
        t0 = time.perf_counter()
        last[0] = t0
        timer.start()
        runner.submit(
            "surfaces",
            lambda *, cancel, progress: segment_surfaces(
                labels, volume.geometry, range(1, 11), cancel=cancel, progress=progress
            ),
            on_done=done.append,
        )
        while not done:
            app.processEvents()
            time.sleep(0.001)
        times.append(time.perf_counter() - t0)
        timer.stop()
    made = done[0]
    assert isinstance(made, list)
    triangles = sum(len(s.triangles) for s in made)
    runner.shutdown()

    peer = []
    for _ in range(3):
        t0 = time.perf_counter()
        image = vtkImageData()
        image.SetDimensions(x, y, z)
        image.SetSpacing(*volume.geometry.spacing)
        image.GetPointData().SetScalars(numpy_to_vtk(labels.reshape(-1), deep=False))
        nets = vtkSurfaceNets3D()
        nets.SetInputData(image)
        nets.GenerateLabels(10, 1, 10)
        nets.Update()
        peer.append(time.perf_counter() - t0)
    return {
        "medview": statistics.median(times),
        "stall_ms": max(gaps) * 1000,
        "triangles": triangles,
        "peer": statistics.median(peer),
        "peer_triangles": nets.GetOutput().GetNumberOfPolys(),
    }


def main() -> None:
    mode, path, spacing = sys.argv[1:4]
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 512
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from medview.viewer.volume3d import choose_opengl_window

    choose_opengl_window()  # the bare pipeline too: EGL without a display, not X first
    volume = volume_of(path, spacing)
    if mode == "empty":
        out = empty()
    elif mode == "medview":
        out = medview(volume, size, False)
    elif mode == "medview-full":
        out = medview(volume, size, True)
    elif mode == "vtk":
        out = bare_vtk(volume, size)
    else:
        out = surfaces(volume)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
