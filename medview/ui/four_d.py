"""Stepping through the volumes of a 4-D series: the toolbar's volume slider and label, Ctrl+Up
and Ctrl+Down, and a cache of the volumes lately shown (stepping and cine go back to them at
once)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QSlider, QStatusBar, QToolBar

from medview.core.records import SeriesRecord
from medview.session import Opened
from medview.ui.bridge import Task

# show(series, what was cached of it or None, keep the view) -> the loading task, or None when
# shown at once
Shower = Callable[[SeriesRecord, Opened | None, bool], Task | None]


class VolumeStepper(QObject):
    CACHE_BYTES = 768 * 1024**2  # volumes of a 4-D series kept for stepping and cine

    def __init__(self, show: Shower, status: Callable[[], QStatusBar], parent: QObject) -> None:
        super().__init__(parent)
        self._show, self._status = show, status
        self.volumes: list[SeriesRecord] = []  # of the shown 4-D series, in order
        self.shown: SeriesRecord | None = None
        self.cache: OrderedDict[str, Opened] = OrderedDict()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, 1)
        self.slider.setToolTip("Volume of the 4-D series (Ctrl+Up / Ctrl+Down)")
        self.slider.setMaximumWidth(160)
        self.slider.valueChanged.connect(lambda v: self.go(v - 1))
        self.text = QLabel()
        self._actions: list[Any] = []

    def add_to(self, toolbar: QToolBar) -> None:
        self._actions = [toolbar.addWidget(self.text), toolbar.addWidget(self.slider)]

    def set_series(self, volumes: list[SeriesRecord]) -> None:
        """A series was opened: its volumes (one: not a 4-D series)."""
        self.volumes = volumes if len(volumes) > 1 else []
        self.cache.clear()

    def keep(self, opened: Opened | None) -> None:
        """Cache a volume of the shown 4-D series as the reading left it (the session's
        snapshot, taken when another volume is shown)."""
        if opened is None or opened.series.key not in {v.key for v in self.volumes}:
            return
        key = opened.series.key
        self.cache[key] = opened
        self.cache.move_to_end(key)
        while (
            len(self.cache) > 1
            and sum(o.volume.array.nbytes for o in self.cache.values()) > self.CACHE_BYTES
        ):
            self.cache.popitem(last=False)

    def shown_volume(self, series: SeriesRecord) -> None:
        """``series`` is shown: show the control (for a 4-D series only)."""
        self.shown = series
        keys = [v.key for v in self.volumes]
        four_d = series.key in keys
        for act in self._actions:
            act.setVisible(four_d)
        if not four_d:
            return
        self.slider.blockSignals(True)
        self.slider.setMaximum(len(keys))
        self.slider.setValue(keys.index(series.key) + 1)
        self.slider.blockSignals(False)
        self.text.setText(f" Volume {keys.index(series.key) + 1}/{len(keys)} ")
        self.text.setToolTip(series.volume_label)

    def step(self, delta: int, wrap: bool = False) -> Task | None:
        """Show the next (or previous) volume of the shown 4-D series, keeping slice, window
        and zoom; says so when there is no other volume."""
        keys = [v.key for v in self.volumes]
        if self.shown is None or self.shown.key not in keys:
            self._status().showMessage("The shown series has a single volume", 3000)
            return None
        k = keys.index(self.shown.key) + delta
        if wrap:
            k %= len(keys)
        if not 0 <= k < len(keys):
            self._status().showMessage("No further volume", 2000)
            return None
        return self.go(k)

    def go(self, k: int) -> Task | None:
        """Show volume ``k`` (from 0), keeping the view; at once from the cache when it was
        shown lately, else loaded in the worker."""
        if not 0 <= k < len(self.volumes):
            return None
        target = self.volumes[k]
        cached = self.cache.get(target.key)
        if cached is not None:
            self.cache.move_to_end(target.key)
        return self._show(target, cached, True)
