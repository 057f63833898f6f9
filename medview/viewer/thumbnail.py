"""Series thumbnails: the middle slice, windowed and shrunk to a small grey (or RGB) image."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import numpy as np

from medview.core.records import SeriesRecord
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.io.loader import load_series
from medview.viewer.windowing import initial_window


def series_thumbnail(series: SeriesRecord, size: int = 64) -> np.ndarray:
    """(h, w) uint8 grey or (h, w, 3) uint8 RGB, longest side ``size`` pixels."""
    middle = series.slices[len(series.slices) // 2]
    one = replace(series, slices=(middle,), warnings=())
    vol = load_series(one)
    plane = vol.array[0]
    step = max(1, int(np.ceil(max(plane.shape[:2]) / size)))
    small = plane[::step, ::step]
    if vol.is_color:
        return np.ascontiguousarray(small.astype(np.uint8))
    w = initial_window(vol.modality, small, vol.window)
    grey = np.clip((small.astype(np.float32) - w.low) * (255.0 / w.width), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(255 - grey if vol.invert_display else grey)


def thumbnails(
    series: list[SeriesRecord],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> dict[str, np.ndarray]:
    """Thumbnails by series key; a series that cannot be decoded is left out."""
    from medview.core.errors import MedviewError

    out: dict[str, np.ndarray] = {}
    for i, s in enumerate(series):
        cancel.raise_if_cancelled()
        # the series row still shows; its decode problem surfaces when it is opened
        with contextlib.suppress(MedviewError):
            out[s.key] = series_thumbnail(s)
        progress(i + 1, len(series), "thumbnails")
    return out
