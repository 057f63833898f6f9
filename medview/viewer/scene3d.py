"""The 3-D view's scene: the series volume-rendered in patient space (LPS), segment surfaces,
the crosshair as a 3-D cursor with the MPR planes, an orientation cube; VTK, Qt-free.

The scene renders offscreen and hands back pixels (`Scene3D.render`): the Qt widget paints
them and turns the mouse into camera moves, so one code path serves a desktop (X, a GPU),
a headless machine (EGL or OSMesa) and the tests. VTK is imported only when a scene is made.

Mappers: VTK's GPU ray caster when OpenGL is a hardware one; its CPU fixed-point ray caster
when the renderer is a software one (Mesa llvmpipe: measured 2.1 s per frame for the GPU
mapper against 0.09 s for the CPU one on a 300 x 512 x 512 CT at 512²), and whenever the GPU
mapper says it cannot render. While the camera moves the rays sample every other pixel
(`interactive`); a still view is drawn at full quality.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from medview.core.volume import Volume
from medview.viewer.surfaces import Surface
from medview.viewer.transfer import TransferFunction
from medview.viewer.volume3d import (
    choose_opengl_window,
    gl_renderer,
    image_data,
    orientation_cube,
    plane_names,
    prop_matrix,
    reduced,
)

log = logging.getLogger(__name__)

SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "software rasterizer", "microsoft basic render")
# camera directions of the view buttons: (direction the camera looks, view-up), in LPS
VIEWS = {
    "A": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),  # from the front: patient's left on the right
    "P": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "L": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # from the patient's left: anterior on the left
    "R": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "S": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),  # from above: anterior at the top
    "I": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),  # from the feet: as an axial slice
}
# the CPU ray caster draws a volume above this many voxels from a copy reduced by block means
# (its gradients take 3 bytes per voxel and most of the first frame: a 300 x 512 x 512 CT
# took 3.3 s and 260 MB more in full, here); the GPU one always draws the whole volume
CPU_VOXELS = 24_000_000
PLANE_COLOURS = {  # as the 2-D views' crosshair lines
    "axial": (0.9, 0.31, 0.31),
    "coronal": (0.35, 0.78, 0.35),
    "sagittal": (0.9, 0.78, 0.24),
}


class Scene3D:
    """One series' 3-D scene in an offscreen render window of ``size`` pixels."""

    def __init__(self, size: tuple[int, int] = (512, 512), mapper: str = "") -> None:
        choose_opengl_window()
        import vtkmodules.vtkRenderingFreeType
        import vtkmodules.vtkRenderingOpenGL2
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

        self.window = vtkRenderWindow()
        self.window.SetOffScreenRendering(1)
        self.window.SetMultiSamples(0)
        self.window.SetSize(*size)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.renderer.SetLayer(0)
        self.window.SetNumberOfLayers(2)
        self.window.AddRenderer(self.renderer)
        self.renderer.GetActiveCamera().ParallelProjectionOn()
        self.window.Render()  # makes the context: the renderer's name is known from here on
        self.gl_renderer = gl_renderer(self.window)
        self.software = any(s in self.gl_renderer.lower() for s in SOFTWARE_GL)
        self.wanted_mapper = mapper or os.environ.get("MEDVIEW_3D_MAPPER") or "auto"
        self.mapper_kind = ""
        self.volume: Volume | None = None
        self.drawn: Volume | None = None  # the volume the rays traverse (maybe reduced)
        self.full_detail = False  # the CPU caster draws the whole volume, however large
        self.prop: Any = None
        self.tf: TransferFunction | None = None
        self.surfaces: dict[int, Any] = {}  # value -> actor
        self.cursor: list[Any] = []
        self.planes: list[Any] = []
        self.show_planes = True
        self.clip: tuple[tuple[float, float], ...] | None = None  # (lo, hi) per x, y, z index
        self._marker = orientation_cube(self.window)

    # -- the volume -----------------------------------------------------------------------------
    def set_volume(self, volume: Volume, tf: TransferFunction) -> None:
        from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
        from vtkmodules.vtkRenderingCore import (
            vtkColorTransferFunction,
            vtkVolume,
            vtkVolumeProperty,
        )

        if self.prop is not None:
            self.renderer.RemoveVolume(self.prop)
        for actor in self.cursor + self.planes:  # they belong to the volume shown before
            self.renderer.RemoveActor(actor)
        self.cursor, self.planes = [], []
        self.volume = volume
        mapper = self._mapper()
        self.drawn = self._detail(volume)
        mapper.SetInputData(image_data(self.drawn))
        prop = vtkVolumeProperty()
        prop.SetInterpolationTypeToLinear()
        prop.SetColor(vtkColorTransferFunction())
        prop.SetScalarOpacity(vtkPiecewiseFunction())
        self.prop = vtkVolume()
        self.prop.SetMapper(mapper)
        self.prop.SetProperty(prop)
        self.prop.SetUserMatrix(prop_matrix(self.drawn))
        self.prop.SetPickable(True)
        self.renderer.AddVolume(self.prop)
        self.set_transfer(tf)
        self.clip = None
        self.set_clip(None)
        self.reset_camera("A")

    def _detail(self, volume: Volume) -> Volume:
        if self.mapper_kind == "cpu" and not self.full_detail:
            return reduced(volume, CPU_VOXELS)
        return volume

    def _mapper(self) -> Any:
        from vtkmodules.vtkRenderingVolume import (
            vtkFixedPointVolumeRayCastMapper,
            vtkGPUVolumeRayCastMapper,
        )

        kind = self.wanted_mapper
        mapper: Any
        if kind == "auto":
            kind = "cpu" if self.software else "gpu"
        if kind == "gpu":
            mapper = vtkGPUVolumeRayCastMapper()
            mapper.SetAutoAdjustSampleDistances(False)
            self.mapper_kind = "gpu"
        else:
            mapper = vtkFixedPointVolumeRayCastMapper()
            mapper.SetAutoAdjustSampleDistances(False)
            mapper.SetLockSampleDistanceToInputSpacing(False)
            self.mapper_kind = "cpu"
        return mapper

    def fall_back_to_cpu(self) -> bool:
        """Swap a GPU mapper that cannot render for the CPU one; True when swapped."""
        if self.prop is None or self.mapper_kind != "gpu":
            return False
        if self.prop.GetMapper().IsRenderSupported(self.window, self.prop.GetProperty()):
            return False
        log.warning("the GPU ray caster cannot render here (%s); CPU ray casting", self.gl_renderer)
        self.wanted_mapper = "cpu"
        assert self.volume is not None
        mapper = self._mapper()
        self.drawn = self._detail(self.volume)
        mapper.SetInputData(image_data(self.drawn))
        self.prop.SetMapper(mapper)
        self.set_clip(self.clip)
        self.interactive(False)
        return True

    def set_transfer(self, tf: TransferFunction) -> None:
        """Colours, opacities, blend mode and shading of ``tf``."""
        assert self.prop is not None
        self.tf = tf
        prop = self.prop.GetProperty()
        colour, opacity = prop.GetRGBTransferFunction(), prop.GetScalarOpacity()
        colour.RemoveAllPoints()
        opacity.RemoveAllPoints()
        for v, r, g, b, a in tf.placed():
            colour.AddRGBPoint(v, r, g, b)
            opacity.AddPoint(v, a)
        mip = tf.preset.blend == "mip"
        mapper = self.prop.GetMapper()
        if mip:
            mapper.SetBlendModeToMaximumIntensity()
        else:
            mapper.SetBlendModeToComposite()
        if tf.preset.shade and not mip:
            prop.ShadeOn()
            prop.SetAmbient(0.25)
            prop.SetDiffuse(0.75)
            prop.SetSpecular(0.15)
        else:
            prop.ShadeOff()
        self.interactive(False)

    def interactive(self, moving: bool) -> None:
        """Coarser rays while the camera moves; full quality when still."""
        if self.prop is None or self.drawn is None:
            return
        mapper = self.prop.GetMapper()
        step = float(min(self.drawn.geometry.spacing))
        mapper.SetSampleDistance(step * (2.0 if moving else 1.0))
        mapper.SetImageSampleDistance(2.0 if moving else 1.0)

    def set_clip(self, box: Sequence[tuple[float, float]] | None) -> None:
        """Show only the voxels inside ``box``: (first, last) index per x, y, z axis of the
        series' grid, or None for the whole volume."""
        if self.prop is None or self.volume is None or self.drawn is None:
            return
        mapper = self.prop.GetMapper()
        self.clip = tuple((float(a), float(b)) for a, b in box) if box is not None else None
        if self.clip is None:
            mapper.CroppingOff()
            return
        # index of the series' grid -> millimetres along the drawn image's axes (the drawn
        # copy starts half a block later when it is reduced)
        g, d = self.volume.geometry, self.drawn.geometry
        shift = g.direction.T @ (g.origin - d.origin)
        planes = [
            v * float(g.spacing[i]) + float(shift[i])
            for i, pair in enumerate(self.clip)
            for v in pair
        ]
        mapper.CroppingOn()
        mapper.SetCroppingRegionPlanes(*planes)
        mapper.SetCroppingRegionFlagsToSubVolume()

    # -- surfaces ------------------------------------------------------------------------------
    def set_surfaces(
        self,
        surfaces: Sequence[Surface],
        colours: dict[int, tuple[int, int, int]],
        opacity: float = 1.0,
        hidden: set[int] | None = None,
    ) -> None:
        """Replace the segment surfaces (made in a worker) by ``surfaces``."""
        from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

        for actor in self.surfaces.values():
            self.renderer.RemoveActor(actor)
        self.surfaces = {}
        for s in surfaces:
            poly = s.poly  # made in the worker
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            self.renderer.AddActor(actor)
            self.surfaces[s.value] = actor
        self.style_surfaces(colours, opacity, hidden or set())

    def style_surfaces(
        self, colours: dict[int, tuple[int, int, int]], opacity: float, hidden: set[int]
    ) -> None:
        """Colour, opacity and visibility shared with the 2-D overlay."""
        for value, actor in self.surfaces.items():
            r, g, b = colours.get(value, (255, 255, 255))
            p = actor.GetProperty()
            p.SetColor(r / 255, g / 255, b / 255)
            p.SetOpacity(float(np.clip(opacity, 0.05, 1.0)))
            p.SetSpecular(0.2)
            actor.SetVisibility(value not in hidden)

    # -- the cursor and the MPR planes ----------------------------------------------------------
    def set_cursor(self, zyx: np.ndarray) -> None:
        """The crosshair (continuous array index) as three lines through the volume along its
        axes, and the outlines of the three MPR planes through it."""
        from vtkmodules.vtkFiltersSources import vtkLineSource
        from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

        if self.volume is None:
            return
        for actor in self.cursor + self.planes:
            self.renderer.RemoveActor(actor)
        self.cursor, self.planes = [], []
        g = self.volume.geometry
        top = np.array(g.shape, dtype=np.float64) - 1
        zyx = np.clip(np.asarray(zyx, dtype=np.float64), 0, top)

        def line(a: np.ndarray, b: np.ndarray, rgb: tuple[float, float, float]) -> Any:
            src = vtkLineSource()
            src.SetPoint1(*g.index_to_lps(a))
            src.SetPoint2(*g.index_to_lps(b))
            mapper = vtkPolyDataMapper()
            mapper.SetInputConnection(src.GetOutputPort())
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetColor(*rgb)
            actor.GetProperty().SetLineWidth(1.5)
            actor.GetProperty().LightingOff()
            actor.PickableOff()
            self.renderer.AddActor(actor)
            return actor

        for axis in range(3):
            a, b = zyx.copy(), zyx.copy()
            a[axis], b[axis] = 0.0, top[axis]
            self.cursor.append(line(a, b, (1.0, 1.0, 1.0)))
            self.cursor[-1].GetProperty().SetOpacity(0.6)
        if not self.show_planes:
            return
        # the plane at a fixed index of each array axis: z -> axial for an axial acquisition;
        # named by the patient axis it is nearest to
        names = plane_names(g.direction)
        for axis in range(3):
            u, v = [i for i in range(3) if i != axis]
            corners = []
            for cu, cv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = zyx.copy()
                p[u], p[v] = cu * top[u], cv * top[v]
                corners.append(p)
            rgb = PLANE_COLOURS[names[axis]]
            for i in range(4):
                self.planes.append(line(corners[i], corners[(i + 1) % 4], rgb))

    # -- the camera -----------------------------------------------------------------------------
    def reset_camera(self, view: str = "A") -> None:
        """Look at the whole volume from one side: A, P, L, R, S or I, fitted to the view."""
        cam = self.renderer.GetActiveCamera()
        direction, up = (np.array(v) for v in VIEWS[view])
        centre = self.centre()
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre - direction * 4 * self.radius()))
        cam.SetViewUp(*up)
        right = np.cross(direction, up)
        corners = self.corners() - centre
        half_w = float(np.abs(corners @ right).max())
        half_h = float(np.abs(corners @ up).max())
        w, h = self.window.GetSize()
        cam.SetParallelScale(max(half_h, half_w * h / max(w, 1)) * 1.05 or 1.0)
        self.renderer.ResetCameraClippingRange(self.bounds())

    def corners(self) -> np.ndarray:
        """The LPS corners of the volume's grid (the voxel centres at its ends)."""
        assert self.volume is not None
        g = self.volume.geometry
        top = np.array(g.shape, dtype=np.float64) - 1
        idx = np.array([[z, y, x] for z in (0, top[0]) for y in (0, top[1]) for x in (0, top[2])])
        return g.index_to_lps(idx)

    def centre(self) -> np.ndarray:
        if self.volume is None:
            return np.zeros(3)
        g = self.volume.geometry
        return g.index_to_lps((np.array(g.shape, dtype=np.float64) - 1) / 2)

    def radius(self) -> float:
        """Half the longest extent of the volume seen from any side (its bounding sphere)."""
        if self.volume is None:
            return 100.0
        g = self.volume.geometry
        extent = (np.array(g.shape[::-1], dtype=np.float64) - 1) * g.spacing
        return float(np.linalg.norm(extent) / 2) or 1.0

    def bounds(self) -> list[float]:
        c, r = self.centre(), self.radius()
        return [c[0] - r, c[0] + r, c[1] - r, c[1] + r, c[2] - r, c[2] + r]

    def rotate(self, dx: float, dy: float) -> None:
        """Turn the camera about the focal point (degrees across and up)."""
        cam = self.renderer.GetActiveCamera()
        cam.Azimuth(-dx)
        cam.Elevation(dy)
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()

    def zoom(self, factor: float) -> None:
        cam = self.renderer.GetActiveCamera()
        cam.SetParallelScale(cam.GetParallelScale() / factor)

    def pan(self, dx_px: float, dy_px: float) -> None:
        cam = self.renderer.GetActiveCamera()
        h = self.window.GetSize()[1]
        mm = 2 * cam.GetParallelScale() / max(h, 1)
        up = np.array(cam.GetViewUp())
        right = np.cross(np.array(cam.GetDirectionOfProjection()), up)
        shift = (-dx_px * right + dy_px * up) * mm
        cam.SetFocalPoint(*(np.array(cam.GetFocalPoint()) + shift))
        cam.SetPosition(*(np.array(cam.GetPosition()) + shift))

    # -- drawing and picking --------------------------------------------------------------------
    def resize(self, width: int, height: int) -> None:
        self.window.SetSize(max(16, width), max(16, height))

    def render(self) -> np.ndarray:
        """Draw the scene; (height, width, 3) uint8 RGB, top row first."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray

        self._follow_camera()
        self.window.Render()
        w, h = self.window.GetSize()
        buf = vtkUnsignedCharArray()
        self.window.GetPixelData(0, 0, w - 1, h - 1, 0, buf, 0)
        rgb = vtk_to_numpy(buf).reshape(h, w, 3)
        return np.ascontiguousarray(rgb[::-1])

    def pick(self, x: float, y: float) -> np.ndarray | None:
        """LPS mm of what is drawn at pixel (x, y) (from the top left): a surface or the
        first voxel of the rendered volume that is visible; None for the background."""
        from vtkmodules.vtkRenderingVolume import vtkVolumePicker

        picker = vtkVolumePicker()
        picker.SetTolerance(1e-6)
        picker.SetVolumeOpacityIsovalue(0.05)
        picker.PickCroppingPlanesOff()
        h = self.window.GetSize()[1]
        if not picker.Pick(float(x), float(h - 1 - y), 0.0, self.renderer):
            return None
        return np.array(picker.GetPickPosition(), dtype=np.float64)

    def _follow_camera(self) -> None:
        """The orientation cube turns with the scene's camera."""
        cam = self.renderer.GetActiveCamera()
        corner = self._marker.GetActiveCamera()
        d = np.array(cam.GetDirectionOfProjection())
        corner.SetFocalPoint(0.0, 0.0, 0.0)
        corner.SetPosition(*(-d * 4.0))
        corner.SetViewUp(*cam.GetViewUp())
        self._marker.ResetCameraClippingRange()

    def close(self) -> None:
        self.window.Finalize()
