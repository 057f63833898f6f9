"""Key images for reports: a slice rendered like the viewer shows it (window, label overlay,
heat map), resized to print resolution with the pixel aspect kept, and the measurements of
that slice drawn on top at that resolution (Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medview.core.results import Segmentation
from medview.core.volume import Volume
from medview.export.content import KeyImage
from medview.viewer.mpr import View, plane_mapping
from medview.viewer.overlay import HeatmapOverlay, LabelOverlay
from medview.viewer.render import render_grey, render_rgb
from medview.viewer.windowing import Window, initial_window

PRINT_PIXELS = 1400  # longest side; 300 dpi over about 12 cm


def default_key_images(
    label_map: Segmentation | None,
    volume: Volume | None = None,
    measurements: Sequence[dict[str, Any]] = (),
) -> list[KeyImage]:
    """Automatic key images: the axial slice with the largest cross-section of each present
    finding segment (a lesion; anatomy such as body, lung or bone never), and each slice
    that holds one of the reader's measurements."""
    out = []
    if label_map is not None:
        overlay = LabelOverlay(label_map.labels, {}, {})
        for s in label_map.present():
            if not s.finding:
                continue
            at = overlay.largest_section(s.value)
            if at is not None:
                out.append(KeyImage("axial", at[0], f"largest cross-section of {s.name}"))
    if volume is not None:
        for i, m in enumerate(measurements):
            view, k = measurement_slice(volume, m)
            if all((x.view, x.index) != (view, k) for x in out):
                out.append(KeyImage(view, k, f"measurement {i + 1}"))
    return out


def measurement_slice(volume: Volume, m: dict[str, Any]) -> tuple[str, int]:
    """The view and slice a measurement lies on."""
    zyx = volume.geometry.lps_to_index(np.asarray(m["points"], dtype=np.float64))
    mapping = plane_mapping(volume.geometry, View(m["view"]))
    return str(m["view"]), round(float(mapping.to_screen(zyx[0])[0]))


def heatmap_key_image(heatmap: Volume, name: str) -> KeyImage:
    """The axial slice where the heat map is strongest."""
    per_slice = np.asarray(heatmap.array).reshape(heatmap.shape[0], -1).max(axis=1)
    return KeyImage("axial", int(np.argmax(per_slice)), f"Grad-CAM: {name}")


def render_key_image(
    volume: Volume,
    key: KeyImage,
    window: tuple[float, float] | None = None,
    label_map: Segmentation | None = None,
    measurements: Sequence[tuple[dict[str, Any], str]] = (),
    heatmap: Volume | None = None,
    longest: int = PRINT_PIXELS,
) -> Any:
    """A ``PIL.Image`` (RGB) of ``key``; ``measurements`` are (measurement dict, label text)
    pairs, drawn where they lie on this slice."""
    from PIL import Image, ImageDraw, ImageFont

    if key.picture:  # a rendering of the 3-D view, made by the view itself
        import io

        img = Image.open(io.BytesIO(key.picture)).convert("RGB")
        scale = longest / max(img.size)
        return img.resize((round(img.width * scale), round(img.height * scale)))
    view = View(key.view)
    mapping = plane_mapping(volume.geometry, view)
    k = int(np.clip(key.index, 0, mapping.shape[0] - 1))
    plane = mapping.plane(volume.array, k)
    if volume.is_color:
        argb = render_rgb(np.ascontiguousarray(plane))
    else:
        w = Window(*window) if window else initial_window(volume.modality, plane, volume.window)
        argb = render_grey(np.ascontiguousarray(plane), w, volume.invert_display)
    argb = np.array(argb, dtype=np.uint32)
    if label_map is not None:
        colors = {s.value: s.color for s in label_map.segments}
        overlay = LabelOverlay(
            label_map.labels, colors, {s.value: s.name for s in label_map.segments}
        )
        overlay.blend(argb, np.ascontiguousarray(mapping.plane(label_map.labels.array, k)))
        overlay.outline = True
        overlay.opacity = 1.0
        overlay.blend(argb, np.ascontiguousarray(mapping.plane(label_map.labels.array, k)))
    if heatmap is not None:
        HeatmapOverlay(heatmap).blend(argb, np.ascontiguousarray(mapping.plane(heatmap.array, k)))
    rgb = np.stack([(argb >> 16) & 0xFF, (argb >> 8) & 0xFF, argb & 0xFF], axis=-1).astype(np.uint8)
    rows, cols = plane.shape[:2]
    height_mm, width_mm = rows * mapping.spacing[1], cols * mapping.spacing[2]
    scale = longest / max(height_mm, width_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    img = Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.LANCZOS)
    sx, sy = size[0] / cols, size[1] / rows
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(14, longest // 45))
    lw = max(2, longest // 400)
    for m, text in measurements:
        zyx = volume.geometry.lps_to_index(np.asarray(m["points"], dtype=np.float64))
        pts = np.array([plane_mapping(volume.geometry, View(m["view"])).to_screen(p) for p in zyx])
        if View(m["view"]) is not view or round(float(pts[0, 0])) != k:
            continue
        xy = [((c + 0.5) * sx, (r + 0.5) * sy) for _, r, c in pts]
        color = (255, 220, 0)
        if m["kind"] == "ellipse":
            (x0, y0), (x1, y1) = xy[:2]
            draw.ellipse(
                [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=color, width=lw
            )
        elif m["kind"] == "rectangle":
            (x0, y0), (x1, y1) = xy[:2]
            draw.rectangle(
                [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=color, width=lw
            )
        else:
            draw.line(xy, fill=color, width=lw)
        if m["kind"] == "arrow":
            _arrow_head(draw, xy[1], xy[0], color, lw)
        x, y = max(p[0] for p in xy) + 2 * lw, min(p[1] for p in xy)
        box = draw.textbbox((0, 0), text, font=font, stroke_width=2)
        if x + box[2] > size[0]:  # no room on the right: write it on the left
            x = max(0.0, min(p[0] for p in xy) - 2 * lw - box[2])
        y = min(max(0.0, y - box[3]), size[1] - box[3])
        draw.text((x, y), text, fill=color, font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    _orientation_and_scale(draw, mapping, size, width_mm / size[0], font, lw)
    return img


def _orientation_and_scale(
    draw: Any, mapping: Any, size: tuple[int, int], mm_per_px: float, font: Any, lw: int
) -> None:
    """Orientation letters at the middle of each edge and a scale bar at the bottom left,
    as the viewer draws them, so a printed key image reads on its own."""
    letters = mapping.edge_labels()
    w, h = size
    pad = max(6, w // 100)
    style = {"font": font, "stroke_width": 2}
    shadow = (0, 0, 0)
    yellow, white = (255, 220, 120), (235, 235, 235)
    for edge in ("top", "bottom", "left", "right"):
        text = letters[edge]
        box = draw.textbbox((0, 0), text, **style)
        tw, th = box[2] - box[0], box[3] - box[1]
        x = {"left": pad, "right": w - pad - tw}.get(edge, (w - tw) / 2)
        y = {"top": pad, "bottom": h - pad - th - box[1]}.get(edge, (h - th) / 2)
        draw.text((x, y), text, fill=yellow, stroke_fill=shadow, **style)
    steps = (1, 2, 5, 10, 20, 50, 100, 200)
    fitting = [s for s in steps if s / mm_per_px <= w / 4]
    length = max(fitting) if fitting else steps[0]
    px = length / mm_per_px
    label = f"{length} mm"
    box = draw.textbbox((0, 0), label, **style)
    y = h - 3 * pad - (box[3] - box[1])
    draw.line([(pad, y), (pad + px, y)], fill=(0, 0, 0), width=lw + 2)
    draw.line([(pad, y), (pad + px, y)], fill=white, width=lw)
    draw.text(
        (pad + px + pad, y - (box[3] + box[1]) / 2), label, fill=white, stroke_fill=shadow, **style
    )


def _arrow_head(
    draw: Any, tail: tuple[float, float], tip: tuple[float, float], color: Any, lw: int
) -> None:
    v = np.subtract(tip, tail)
    n = float(np.hypot(*v)) or 1.0
    v = v / n
    side = np.array([-v[1], v[0]])
    size = 6 * lw
    a = np.asarray(tip) - size * v + size / 2 * side
    b = np.asarray(tip) - size * v - size / 2 * side
    draw.polygon([tuple(tip), tuple(a), tuple(b)], fill=color)
