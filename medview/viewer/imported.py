"""Measurements read from another object (a TID 1500 SR) as MedView measurements: each
region gets the kind that draws it the same way and the view in whose plane it lies, and
keeps its source and the values that object reported."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from medview.core.volume import Volume
from medview.viewer.annotations import Kind, Measurement
from medview.viewer.mpr import View, plane_mapping

# what MedView's own SR writes as tracking identifier: "ruler 2" or "arrow 3: the text"
_OWN = re.compile(r"^(ruler|angle|ellipse|rectangle|arrow) \d+(?:: (.*))?$")
ON_PLANE = 0.25  # slices


def _view_of(points: np.ndarray, volume: Volume) -> tuple[View, Any]:
    """The view whose slice the points share (axial first), and its plane mapping."""
    zyx = volume.geometry.lps_to_index(points)
    fallback = None
    for view in (View.AXIAL, View.CORONAL, View.SAGITTAL):
        mapping = plane_mapping(volume.geometry, view)
        k = np.array([mapping.to_screen(p)[0] for p in zyx])
        if np.ptp(k) <= ON_PLANE:
            return view, mapping
        fallback = fallback or (view, mapping)
    assert fallback is not None
    return fallback


def _ellipse(points: np.ndarray, mapping: Any) -> tuple[Kind, np.ndarray]:
    """An ellipse given by its axes' end points: MedView's ellipse in its bounding box when
    its axes run along the view's rows and columns, else a 64-point polygon."""
    a0, a1, b0, b1 = points[:4]
    c = (a0 + a1) / 2
    down, right = mapping.screen_dirs
    ua, ub = (a1 - a0), (b1 - b0)
    aligned = all(
        min(abs(float(np.dot(u, down))), abs(float(np.dot(u, right))))
        < 1e-3 * max(float(np.linalg.norm(u)), 1e-9)
        for u in (ua, ub)
    )
    if aligned:
        return Kind.ELLIPSE, np.array([c + (a0 - c) + (b0 - c), c + (a1 - c) + (b1 - c)])
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)[:, None]
    return Kind.POLYGON, c + np.cos(t) * (a1 - c) + np.sin(t) * (b1 - c)


def measurements_from_sr(report: Any, volume: Volume) -> list[Measurement]:
    """`medview.io.sr_read.SrReport` regions as measurements on ``volume``."""
    out = []
    for r in report.regions:
        own = _OWN.match(r.label)
        hint, text = (own.group(1), own.group(2) or "") if own else ("", r.label)
        pts = np.asarray(r.points, dtype=np.float64)
        view, mapping = _view_of(pts, volume)
        closed = len(pts) >= 4 and np.allclose(pts[0], pts[-1])
        names = {name.lower() for name, _, _ in r.reported}
        gtype = r.graphic_type
        if gtype == "POLYLINE" and len(pts) == 2:
            kind = Kind.ARROW if hint == "arrow" else Kind.RULER
        elif gtype == "POLYLINE" and len(pts) == 3 and (hint == "angle" or "angle" in names):
            kind = Kind.ANGLE
        elif gtype == "POLYGON" and hint == "rectangle" and len(pts) == 5:
            kind, pts = Kind.RECTANGLE, pts[[0, 2]]
        elif gtype in ("POLYGON", "POLYLINE") and (closed or gtype == "POLYGON"):
            kind, pts = Kind.POLYGON, pts[:-1] if closed else pts
        elif gtype == "POLYLINE":
            kind = Kind.POLYLINE
        elif gtype == "ELLIPSE" and len(pts) == 4:
            kind, pts = _ellipse(pts, mapping)
        elif gtype == "CIRCLE" and len(pts) == 2:
            radius = float(np.linalg.norm(pts[1] - pts[0]))
            down, right = mapping.screen_dirs
            c = pts[0]
            kind = Kind.ELLIPSE
            pts = np.array([c - radius * (down + right), c + radius * (down + right)])
        else:  # POINT, MULTIPOINT, anything else: marked where it is
            kind = Kind.POINT
        out.append(
            Measurement(
                kind,
                view,
                tuple((float(p[0]), float(p[1]), float(p[2])) for p in pts),
                text=text,
                source=report.source,
                reported=tuple(r.reported),
            )
        )
    return out
