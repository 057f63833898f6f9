"""Segment surfaces for the 3-D view, computed off the GUI thread.

Each segment is cut out of the label map by its bounding box (one pass of
``scipy.ndimage.find_objects`` for all labels), meshed with VTK's surface nets (closed, on
the voxel faces), smoothed with a windowed-sinc filter (a low-pass filter that keeps the
enclosed volume), placed in patient (LPS) millimetres and given normals. The result is VTK
poly data built here, so the GUI thread only wraps it in an actor; nothing here touches
OpenGL, so it runs in a worker. Segments are meshed two at a time (VTK's filters release the
GIL).

Not decimated: VTK's quadric decimation took 18 s on the body surface of the demo CT's
segmentation (1.9 M triangles), and the fast binned decimation lost a third of the bone's
volume; drawing the 4.1 M triangles of that segmentation's four surfaces costs about 0.15 s a
frame on Mesa's software OpenGL and next to nothing on a graphics card.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.geometry import Geometry
from medview.core.tasks import CancelToken, Progress, no_progress

PASS_BAND = 0.1  # on the 792 real LIDC nodules: 787 within 3 % of the mask volume
THREADS = 2
# a surface of more than this many triangles (a body outline, a skeleton) is smoothed with
# half the iterations, above four times as many with a third: its voxels are small beside its
# shape, and the smoothing of a 6 M triangle body outline took 2.2 s of the 4 s its surface took
LARGE = 1_000_000


@dataclass(frozen=True)
class Surface:
    value: int
    poly: Any  # vtkPolyData in LPS mm, with point normals
    points: np.ndarray  # (n, 3) float32, LPS mm (views of the poly data's arrays)
    normals: np.ndarray  # (n, 3) float32
    triangles: np.ndarray  # (m, 3) int64

    @property
    def enclosed_ml(self) -> float:
        return enclosed_volume(self.points, self.triangles) / 1000.0


def enclosed_volume(points: np.ndarray, triangles: np.ndarray) -> float:
    """The volume (mm³) a closed triangle mesh encloses (divergence theorem)."""
    p = np.asarray(points, dtype=np.float64)
    a, b, c = p[triangles[:, 0]], p[triangles[:, 1]], p[triangles[:, 2]]
    return float(abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def segment_surfaces(
    labels: np.ndarray,
    geometry: Geometry,
    values: Sequence[int],
    *,
    cancel: CancelToken | None = None,
    progress: Progress = no_progress,
    smoothing: int = 10,
) -> list[Surface]:
    """The surfaces of ``values`` in the label map ``labels`` (z, y, x) on ``geometry``."""
    from scipy import ndimage

    cancel = cancel or CancelToken()
    wanted = sorted({int(v) for v in values if int(v) > 0})
    if not wanted:
        return []
    top = max(wanted)
    # find_objects on the label map itself: one pass for every label
    lab = labels if labels.dtype.kind in "ui" else labels.astype(np.int32)
    boxes = ndimage.find_objects(lab, max_label=top)
    jobs = [(v, boxes[v - 1]) for v in wanted if boxes[v - 1] is not None]
    # the largest first: the two threads finish together
    jobs.sort(key=lambda j: -int(np.prod([s.stop - s.start for s in j[1]])))
    done = 0

    def one(job: tuple[int, tuple[slice, ...]]) -> Surface | None:
        nonlocal done
        cancel.raise_if_cancelled()
        value, box = job
        # one voxel of background around the box, so the surface closes
        lo = [max(0, s.start - 1) for s in box]
        hi = [min(n, s.stop + 1) for s, n in zip(box, labels.shape, strict=True)]
        box_view = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        mask = np.zeros(tuple(n + 2 for n in box_view.shape), np.uint8)
        np.equal(box_view, value, out=mask[1:-1, 1:-1, 1:-1].view(bool))
        start = np.array(lo, dtype=np.float64) - 1.0  # the pad
        surface = _mesh(value, mask, start, geometry, smoothing)
        done += 1
        progress(done, len(jobs), f"Surface {done} of {len(jobs)}")
        return surface

    progress(0, len(jobs), "Segment surfaces")
    with ThreadPoolExecutor(
        max_workers=THREADS, thread_name_prefix="medview-surface", initializer=_lower_priority
    ) as pool:
        made = list(pool.map(one, jobs))
    return [s for s in made if s is not None]


def _lower_priority() -> None:
    """The meshing threads yield to the GUI thread: with two of them on two cores the window
    otherwise waited up to 80 ms for a turn (Linux gives threads their own nice value)."""
    import contextlib
    import os
    import threading

    # not Linux, or not allowed: the default priority
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _mesh(
    value: int, mask: np.ndarray, start: np.ndarray, geometry: Geometry, smoothing: int
) -> Surface | None:
    """The surface of a 0/1 mask (z, y, x) whose first voxel is at index ``start`` of the
    grid ``geometry``."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import (
        vtkSurfaceNets3D,
        vtkTriangleMeshPointNormals,
        vtkWindowedSincPolyDataFilter,
    )

    image = vtkImageData()
    image.SetDimensions(mask.shape[2], mask.shape[1], mask.shape[0])
    flat = np.ascontiguousarray(mask).ravel()
    image.GetPointData().SetScalars(numpy_to_vtk(flat, deep=False))
    nets = vtkSurfaceNets3D()
    nets.SetInputData(image)
    nets.SetLabel(0, 1)
    nets.SetBackgroundLabel(0)
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(False)
    nets.Update()
    poly = nets.GetOutput()
    if poly.GetNumberOfPolys() == 0:
        return None
    if smoothing > 0 and poly.GetNumberOfPolys() > LARGE:
        smoothing = max(1, smoothing // (2 if poly.GetNumberOfPolys() < 4 * LARGE else 3))
    if smoothing > 0:
        # windowed-sinc smoothing keeps the enclosed volume (surface nets' own Laplacian
        # smoothing shrank real LIDC nodules by a median 18 %)
        sinc = vtkWindowedSincPolyDataFilter()
        sinc.SetInputData(poly)
        sinc.SetNumberOfIterations(smoothing)
        sinc.SetPassBand(PASS_BAND)
        sinc.NormalizeCoordinatesOn()
        sinc.BoundarySmoothingOff()
        sinc.FeatureEdgeSmoothingOff()
        sinc.NonManifoldSmoothingOn()
        sinc.Update()
        poly = sinc.GetOutput()
    # index (x, y, z) -> LPS mm
    xyz = vtk_to_numpy(poly.GetPoints().GetData())
    linear = (geometry.direction * geometry.spacing).astype(np.float32)
    offset = geometry.index_to_lps(start).astype(np.float32)
    lps = np.ascontiguousarray(xyz.astype(np.float32, copy=False) @ linear.T + offset)
    points = vtkPoints()
    points.SetData(numpy_to_vtk(lps, deep=True))
    poly.SetPoints(points)
    if np.linalg.det(geometry.direction) < 0:  # a mirrored grid turns the triangles inside out
        from vtkmodules.vtkFiltersCore import vtkReverseSense

        flip = vtkReverseSense()
        flip.SetInputData(poly)
        flip.Update()
        poly = flip.GetOutput()
    normals = vtkTriangleMeshPointNormals()
    normals.SetInputData(poly)
    normals.Update()
    poly = normals.GetOutput()
    _ = image  # the mask's buffer lived as long as the filters read it
    return Surface(
        value,
        poly,
        vtk_to_numpy(poly.GetPoints().GetData()),
        vtk_to_numpy(poly.GetPointData().GetNormals()),
        vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3),
    )
