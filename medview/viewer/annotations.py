"""Measurements and annotations: stored in patient coordinates (LPS mm), evaluated on the
volume, listed, undoable, and serialisable for the study database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np

from medview.core.geometry import Geometry
from medview.core.volume import Volume
from medview.viewer.measure import (
    angle_deg,
    distance_mm,
    ellipse_area_mm2,
    ellipse_mask,
    rectangle_area_mm2,
    rectangle_mask,
    roi_stats,
)
from medview.viewer.mpr import PlaneMapping, View, plane_mapping


class Kind(Enum):
    RULER = "ruler"
    ANGLE = "angle"
    ELLIPSE = "ellipse"
    RECTANGLE = "rectangle"
    ARROW = "arrow"
    # from other systems' objects (SR, RT structure sets): not drawn with a tool
    POINT = "point"
    POLYLINE = "polyline"
    POLYGON = "polygon"

    @property
    def points_needed(self) -> int:
        return 3 if self is Kind.ANGLE else 2


@dataclass(frozen=True)
class Measurement:
    """A measurement drawn in ``view``: its defining points in LPS mm (for ROIs the two
    corners of the bounding box, on one slice)."""

    kind: Kind
    view: View
    points: tuple[tuple[float, float, float], ...]
    text: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # read from another object: where from ("SR: <title>, <creator>, <date>"), and the values
    # that object reported (name, value, unit), shown beside MedView's own figures
    source: str = ""
    reported: tuple[tuple[str, float, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "view": self.view.value,
            "points": [list(p) for p in self.points],
            "text": self.text,
        }
        if self.source:
            d["source"] = self.source
            d["reported"] = [list(r) for r in self.reported]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        return cls(
            Kind(d["kind"]),
            View(d["view"]),
            tuple((float(p[0]), float(p[1]), float(p[2])) for p in d["points"]),
            str(d.get("text", "")),
            str(d.get("id") or uuid.uuid4().hex),
            str(d.get("source", "")),
            tuple((str(r[0]), float(r[1]), str(r[2])) for r in d.get("reported") or ()),
        )


# the last plane mapping made per view, with the geometry it was made for: painting asks for
# the same one many times a frame
_MAPPINGS: dict[View, tuple[Geometry, PlaneMapping]] = {}


def _mapping(volume: Volume, view: View) -> PlaneMapping:
    hit = _MAPPINGS.get(view)
    if hit is not None and hit[0] is volume.geometry:
        return hit[1]
    mapping = plane_mapping(volume.geometry, view)
    _MAPPINGS[view] = (volume.geometry, mapping)
    return mapping


def screen_points(m: Measurement, volume: Volume) -> np.ndarray:
    """(slice, row, col) of each point in the measurement's view, shape (n, 3)."""
    mapping = _mapping(volume, m.view)
    zyx = volume.geometry.lps_to_index(np.asarray(m.points, dtype=np.float64))
    return np.array([mapping.to_screen(p) for p in zyx])


def slice_of(m: Measurement, volume: Volume) -> int:
    return round(float(screen_points(m, volume)[0, 0]))


def evaluate(m: Measurement, volume: Volume) -> dict[str, float]:
    """The figures of a measurement on ``volume``: length (mm), angle (degrees) or ROI area
    (mm^2) and statistics of the values inside (modality units, HU for CT)."""
    if m.kind is Kind.RULER:
        return {"length_mm": distance_mm(np.array(m.points[0]), np.array(m.points[1]))}
    if m.kind is Kind.ANGLE:
        a, v, b = (np.array(p) for p in m.points)
        return {"angle_deg": angle_deg(a, v, b)}
    if m.kind in (Kind.ARROW, Kind.POINT):
        return {}
    if m.kind is Kind.POLYLINE:
        p = np.asarray(m.points, dtype=np.float64)
        return {"length_mm": float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())}
    if m.kind is Kind.POLYGON:
        return _polygon_figures(m, volume)
    pts = screen_points(m, volume)
    k = round(float(pts[0, 0]))
    (r0, c0), (r1, c1) = pts[0, 1:], pts[1, 1:]
    mapping = _mapping(volume, m.view)
    plane = mapping.plane(volume.array, k)
    if plane.ndim == 3:  # colour: statistics of the luminance
        plane = plane @ np.array([0.299, 0.587, 0.114])
    spacing = (mapping.spacing[1], mapping.spacing[2])
    if m.kind is Kind.ELLIPSE:
        mask = ellipse_mask(plane.shape, r0, c0, r1, c1)
        area = ellipse_area_mm2(r0, c0, r1, c1, spacing)
    else:
        mask = rectangle_mask(plane.shape, r0, c0, r1, c1)
        area = rectangle_area_mm2(r0, c0, r1, c1, spacing)
    return _roi_figures(plane, mask, area)


def _roi_figures(plane: np.ndarray, mask: np.ndarray, area: float) -> dict[str, float]:
    s = roi_stats(plane, mask, area)
    return {
        "area_mm2": s.area_mm2,
        "pixels": float(s.pixels),
        "mean": s.mean,
        "sd": s.sd,
        "min": s.min,
        "max": s.max,
    }


def _polygon_figures(m: Measurement, volume: Volume) -> dict[str, float]:
    """Area (shoelace, in the view's plane) and the statistics of the pixels inside."""
    from medview.io.polygons import fill_polygons

    pts = screen_points(m, volume)
    mapping = _mapping(volume, m.view)
    sr, sc = mapping.spacing[1], mapping.spacing[2]
    r, c = pts[:, 1] * sr, pts[:, 2] * sc
    area = 0.5 * abs(float(np.dot(r, np.roll(c, 1)) - np.dot(c, np.roll(r, 1))))
    k = round(float(pts[0, 0]))
    plane = mapping.plane(volume.array, k)
    if plane.ndim == 3:
        plane = plane @ np.array([0.299, 0.587, 0.114])
    mask = fill_polygons([pts[:, 1:]], plane.shape)
    return _roi_figures(plane, mask, area)


def reported_text(m: Measurement) -> str:
    """What the object a measurement was read from reported, e.g. "Diameter 10 mm"."""
    return ", ".join(f"{name} {value:g} {unit}".strip() for name, value, unit in m.reported)


def describe(m: Measurement, volume: Volume) -> str:
    """One line for labels and the Measurements panel."""
    v = evaluate(m, volume)
    unit = f" {volume.units}" if volume.units else ""
    if m.kind is Kind.RULER:
        text = f"{v['length_mm']:.1f} mm"
    elif m.kind is Kind.ANGLE:
        text = f"{v['angle_deg']:.1f}°"
    elif m.kind in (Kind.ARROW, Kind.POINT):
        text = m.text or m.kind.value
    elif m.kind is Kind.POLYLINE:
        text = f"{v['length_mm']:.1f} mm"
    else:
        text = (
            f"{v['area_mm2']:.1f} mm² mean {v['mean']:.1f}{unit} SD {v['sd']:.1f} "
            f"min {v['min']:.0f} max {v['max']:.0f}"
        )
    line = f"{m.kind.value}: {text}" + (
        f"  ({m.text})" if m.text and m.kind not in (Kind.ARROW, Kind.POINT) else ""
    )
    if m.source:
        reported = reported_text(m)
        line += f"  [{m.source}" + (f": {reported}]" if reported else "]")
    return line


class MeasurementList:
    """The measurements of one series, with undo/redo of every change."""

    def __init__(self, items: list[Measurement] | None = None) -> None:
        self.items: list[Measurement] = list(items or [])
        self._undo: list[list[Measurement]] = []
        self._redo: list[list[Measurement]] = []

    def _commit(self, new: list[Measurement]) -> None:
        self._undo.append(self.items)
        self._redo.clear()
        self.items = new

    def add(self, m: Measurement) -> None:
        self._commit([*self.items, m])

    def extend(self, ms: list[Measurement]) -> None:
        """Add several measurements as one undoable step."""
        self._commit([*self.items, *ms])

    def remove(self, mid: str) -> None:
        self._commit([m for m in self.items if m.id != mid])

    def update(self, m: Measurement) -> None:
        self._commit([m if x.id == m.id else x for x in self.items])

    def move_point(self, mid: str, index: int, point: tuple[float, float, float]) -> None:
        for m in self.items:
            if m.id == mid:
                pts = list(m.points)
                pts[index] = point
                self.update(replace(m, points=tuple(pts)))
                return

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.items)
        self.items = self._undo.pop()
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.items)
        self.items = self._redo.pop()
        return True

    def get(self, mid: str) -> Measurement | None:
        return next((m for m in self.items if m.id == mid), None)
