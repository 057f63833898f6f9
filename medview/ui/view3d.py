"""The 3-D view: the shown series volume-rendered, the segments as surfaces, the crosshair as
a 3-D cursor. The scene (`viewer.scene3d`, VTK) renders offscreen; this widget paints its
pixels and turns the mouse into camera moves, so it works on any Qt platform (xcb, Wayland,
offscreen) and VTK is imported only when the view is first shown.

Mouse: left-drag turns the volume, a left click puts the crosshair on what is under the
pointer (a surface or the first visible voxel), right-drag adjusts the transfer function like
a window (across: width, up and down: level), middle-drag pans, the wheel zooms.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.ui.bridge import TaskRunner
from medview.ui.controller import ViewerController
from medview.ui.render_area import SIDES, RenderArea

log = logging.getLogger(__name__)
STILL_MS = 180  # full quality this long after the last move
CLICK_PX = 4
MOVING_GAP_MS = 40  # a press and release closer than this is a click (picking), not a drag


class View3D(QWidget):
    """The 3-D view of ``controller``'s volume and overlay."""

    key_image = Signal(bytes)  # a rendering for the report (PNG)

    def __init__(
        self,
        controller: ViewerController,
        runner: TaskRunner,
        notify: Any = None,
        progress: Any = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller, self.runner = controller, runner
        self.notify = notify or (lambda message: None)
        self.progress = progress
        self.scene: Any = None
        self.failed = ""  # why there is no 3-D rendering (no OpenGL), said once
        self._volume: Any = None  # the volume the scene shows
        self._overlay: Any = None  # the overlay whose surfaces the scene shows
        self._surface_key: Any = None  # the voxels the surfaces shown were made from
        self._pending_key: Any = None  # those being meshed
        # what identifies the voxels of an overlay (the window gives the label map and the
        # segment editor's last step: a new overlay that only hides a segment keeps its
        # surfaces); by default every overlay is new
        self.data_key: Any = lambda overlay: id(overlay)
        self._crosshair: np.ndarray | None = None
        self._drag: tuple[Qt.MouseButton, QPointF, QPointF] | None = None
        self._presets: tuple[Any, ...] = ()
        self.frame_seconds: list[float] = []
        self._last_frame = 0.0
        self._style: Any = (
            None  # the surfaces' look last drawn  # the last frames' times (the benchmark reads it)
        )

        bar = QHBoxLayout()
        bar.setContentsMargins(2, 2, 2, 2)
        bar.setSpacing(2)
        self.preset = QComboBox()
        self.preset.setMinimumContentsLength(8)
        self.preset.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.preset.setToolTip("Volume rendering preset (right-drag adjusts it like a window)")
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        bar.addWidget(self.preset)
        self.view_buttons: dict[str, QToolButton] = {}
        for side in "APLRSI":
            b = QToolButton()
            b.setText(side)
            b.setToolTip(f"View from the patient's {SIDES[side]}")
            b.clicked.connect(lambda _c=False, s=side: self.look_from(s))
            bar.addWidget(b)
            self.view_buttons[side] = b
        # what the scene shows, in one menu (the bar stays narrow enough for a 2x2 cell)
        self.show_button = QToolButton()
        self.show_button.setText("Show")
        self.show_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.show_button)
        self.show_button.setMenu(menu)

        def toggle(text: str, tip: str, slot: Any, on: bool) -> QAction:
            act = menu.addAction(text)
            act.setCheckable(True)
            act.setChecked(on)
            act.setToolTip(tip)
            act.toggled.connect(slot)
            return act

        self.surfaces_box = toggle(
            "Segment surfaces", "The segments as surfaces", lambda _on: self._restyle(True), True
        )
        self.planes_box = toggle(
            "MPR planes", "The three MPR planes through the crosshair", self._planes_toggled, True
        )
        self.clip_box = toggle(
            "Clip box",
            "Show only the box set below (per cent of each axis)",
            self._clip_toggled,
            False,
        )
        self.detail_box = toggle(
            "Full detail",
            "Software OpenGL draws a large volume from a half-resolution copy; full detail "
            "draws every voxel (slower)",
            self._detail_toggled,
            False,
        )
        self.detail_box.setVisible(False)
        self.key_button = QToolButton()
        self.key_button.setText("Key image")
        self.key_button.setToolTip("Add this rendering to the report's key images")
        self.key_button.clicked.connect(self.add_key_image)
        bar.addWidget(self.show_button)
        bar.addStretch(1)
        bar.addWidget(self.key_button)

        self.clip_row = QWidget()
        clip = QHBoxLayout(self.clip_row)
        clip.setContentsMargins(2, 0, 2, 0)
        self.clip_spins: list[tuple[QSpinBox, QSpinBox]] = []
        for name in ("x", "y", "z"):
            lo, hi = QSpinBox(), QSpinBox()
            for s, v in ((lo, 0), (hi, 100)):
                s.setRange(0, 100)
                s.setValue(v)
                s.setSuffix(" %")
                s.valueChanged.connect(self._clip_changed)
            self.clip_spins.append((lo, hi))
            clip.addWidget(QLabel(f"{name}:"))
            clip.addWidget(lo)
            clip.addWidget(hi)
        clip.addStretch(1)
        self.clip_row.hide()

        self.area = RenderArea(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.clip_row)
        layout.addWidget(self.area, 1)
        # a grid cell as wide as its neighbours, whatever the bar holds
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(120, 120)

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._render_now)
        self._still = QTimer(self)
        self._still.setSingleShot(True)
        self._still.setInterval(STILL_MS)
        self._still.timeout.connect(self._settle)
        self._surface_timer = QTimer(self)  # edits come in bursts: surfaces once they settle
        self._surface_timer.setSingleShot(True)
        self._surface_timer.setInterval(300)
        self._surface_timer.timeout.connect(self._compute_surfaces)
        controller.changed.connect(self._controller_changed)
        controller.volume_changed.connect(self._controller_changed)

    # -- following the controller ---------------------------------------------------------------
    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        self._controller_changed()

    def _controller_changed(self) -> None:
        if not self.isVisible():
            return
        state = self.controller.state
        if state is None:
            return
        if state.volume is not self._volume and not self._show_volume(state.volume):
            return
        if self.scene is None:
            return
        if self._crosshair is None or not np.array_equal(self._crosshair, state.crosshair):
            self._crosshair = state.crosshair.copy()
            self.scene.set_cursor(self._crosshair)
            self.schedule(moving=True)
        if state.overlay is not self._overlay:
            self._overlay = state.overlay
            if state.overlay is None:
                self.scene.set_surfaces([], {})
                self._surface_key = None
                self.schedule()
            elif self.data_key(state.overlay) not in (self._surface_key, self._pending_key):
                self._surface_timer.start()  # new voxels, not only a new look
        self._restyle()

    def _show_volume(self, volume: Any) -> bool:
        """Build the scene for ``volume`` (the first time: VTK and its OpenGL context)."""
        from medview.viewer.transfer import TransferFunction, presets_for

        self._volume = volume
        self._overlay, self._surface_key, self._crosshair = None, None, None
        self._pending_key = None
        if volume.is_color or volume.shape[0] < 2:
            self.area.message = "The 3-D view needs a greyscale volume of more than one slice"
            self.area.frame = None
            self.area.update()
            return False
        if self.scene is None and not self._make_scene():
            return False
        self.area.message = ""
        self._presets = presets_for(volume.modality)
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItems([p.name for p in self._presets])
        self.preset.setCurrentIndex(0)
        self.preset.blockSignals(False)
        self.scene.full_detail = self.detail_box.isChecked()
        self.scene.set_volume(volume, TransferFunction.of(self._presets[0], volume.array))
        self.scene.set_surfaces([], {})
        self.detail_box.setVisible(self.scene.mapper_kind == "cpu")
        self.clip_box.setChecked(False)
        self.schedule()
        return True

    def _make_scene(self) -> bool:
        from medview.viewer.scene3d import Scene3D

        try:
            self.scene = Scene3D(self._pixel_size())
        except Exception as e:  # no OpenGL at all: the 2-D views go on
            log.error("the 3-D view could not start: %s", e)
            self.failed = f"The 3-D view could not start: {e}"
            self.area.message = self.failed
            self.notify(self.failed)
            return False
        log.info(
            "3-D view: %s, %s",
            self.scene.gl_renderer,
            "software" if self.scene.software else "hardware",
        )
        return True

    def caption(self) -> str:
        if self.scene is None or self._volume is None:
            return ""
        how = "GPU ray casting" if self.scene.mapper_kind == "gpu" else "CPU ray casting"
        if self.scene.drawn is not None and self.scene.drawn is not self._volume:
            how += " (half resolution)"
        return f"{self.preset.currentText()} · {how}"

    # -- the scene's settings -------------------------------------------------------------------
    def _preset_chosen(self, index: int) -> None:
        from medview.viewer.transfer import TransferFunction

        if self.scene is None or self._volume is None or not 0 <= index < len(self._presets):
            return
        self.scene.set_transfer(TransferFunction.of(self._presets[index], self._volume.array))
        self.schedule()

    def look_from(self, side: str) -> None:
        if self.scene is not None:
            self.scene.reset_camera(side)
            self.schedule()

    def _planes_toggled(self, on: bool) -> None:
        if self.scene is not None:
            self.scene.show_planes = on
            self._crosshair = None
            self._controller_changed()

    def _clip_toggled(self, on: bool) -> None:
        self.clip_row.setVisible(on)
        self._clip_changed()

    def _clip_changed(self) -> None:
        if self.scene is None or self._volume is None:
            return
        if not self.clip_box.isChecked():
            self.scene.set_clip(None)
        else:
            shape = self._volume.shape[::-1]  # x, y, z
            box = []
            for (lo, hi), n in zip(self.clip_spins, shape, strict=True):
                a, b = sorted((lo.value(), hi.value()))
                box.append((a / 100 * (n - 1), b / 100 * (n - 1)))
            self.scene.set_clip(box)
        self.schedule()

    def _detail_toggled(self, on: bool) -> None:
        if self.scene is not None and self._volume is not None:
            self.scene.full_detail = on
            self.scene.set_volume(self._volume, self.scene.tf)
            self._clip_changed()  # the same box on the new image; the surfaces stay as they are
            self._crosshair = None  # the cursor went with the image it was drawn on
            self._controller_changed()

    def _restyle(self, force: bool = False) -> None:
        """Surface colours, opacity and visibility as the 2-D overlay's; drawn again only
        when they changed (the controller says "changed" for every slice scrolled)."""
        if self.scene is None:
            return
        overlay = self.controller.state.overlay if self.controller.state else None
        if overlay is None:
            return
        hidden = set(overlay.hidden)
        if not self.surfaces_box.isChecked():
            hidden |= set(self.scene.surfaces)
        # a surface is a boundary, not a wash: it is drawn opaquer than the 2-D tint
        opacity = min(1.0, overlay.opacity * 2.5)
        style = (tuple(sorted(overlay.colors.items())), opacity, tuple(sorted(hidden)))
        if not force and style == self._style:
            return
        self._style = style
        self.scene.style_surfaces(overlay.colors, opacity, hidden)
        self.schedule()

    # -- surfaces (a worker) --------------------------------------------------------------------
    def _compute_surfaces(self) -> None:
        from medview.viewer.surfaces import segment_surfaces

        overlay = self._overlay
        if overlay is None or self.scene is None:
            return
        labels, geometry = overlay.labels.array, overlay.labels.geometry
        values = sorted(overlay.colors)
        key = self._pending_key = self.data_key(overlay)

        def done(surfaces: list[Any]) -> None:
            if self.scene is None or self._overlay is None or self.data_key(self._overlay) != key:
                return  # the voxels changed meanwhile: their own task follows
            self.scene.set_surfaces(surfaces, self._overlay.colors)
            self._surface_key, self._pending_key = key, None
            self._style = None
            self._restyle(force=True)

        self.runner.submit(
            "Segment surfaces",
            lambda *, cancel, progress: segment_surfaces(
                labels, geometry, values, cancel=cancel, progress=progress
            ),
            on_done=done,
            on_error=lambda m: self.notify(f"Segment surfaces: {m}"),
            on_progress=self.progress,
            slot="surfaces",
        )

    # -- drawing --------------------------------------------------------------------------------
    def _pixel_size(self) -> tuple[int, int]:
        ratio = self.devicePixelRatioF()
        return max(16, round(self.area.width() * ratio)), max(16, round(self.area.height() * ratio))

    def area_resized(self) -> None:
        if self.scene is not None:
            self.scene.resize(*self._pixel_size())
            self.schedule()

    def schedule(self, moving: bool = False) -> None:
        """Draw soon (once for any number of changes in one turn of the event loop); a
        coarse frame while ``moving``, then the full one."""
        if self.scene is None:
            return
        import time

        self.scene.interactive(moving)
        delay = 0
        if moving:
            self._still.start()
            # frames while something moves leave the event loop time between them, so the
            # 2-D views scroll on while the 3-D view follows the crosshair
            since = (time.perf_counter() - self._last_frame) * 1000
            delay = int(max(0.0, MOVING_GAP_MS - since))
        if not self._render_timer.isActive():
            self._render_timer.start(delay)

    def _settle(self) -> None:
        if self.scene is not None and self._drag is None:
            self.scene.interactive(False)
            self._render_timer.start(0)

    def _render_now(self) -> None:
        import time

        if self.scene is None or not self.isVisible():
            return
        t0 = time.perf_counter()
        rgb = self.scene.render()
        if self.scene.fall_back_to_cpu():
            rgb = self.scene.render()
            self.detail_box.setVisible(True)
        self._last_frame = time.perf_counter()
        self.frame_seconds = [*self.frame_seconds[-19:], self._last_frame - t0]
        self.area.show_frame(rgb)

    def grab_rendering(self, size: int = 1024) -> np.ndarray | None:
        """The scene at full quality, ``size`` pixels on its longer side (a key image)."""
        if self.scene is None:
            return None
        w, h = self._pixel_size()
        scale = size / max(w, h)
        self.scene.resize(round(w * scale), round(h * scale))
        self.scene.interactive(False)
        try:
            return self.scene.render()
        finally:
            self.scene.resize(w, h)

    def add_key_image(self) -> None:
        import io

        from PIL import Image

        rgb = self.grab_rendering()
        if rgb is None:
            return
        out = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(out, "PNG")
        self.key_image.emit(out.getvalue())
        self.schedule()

    # -- the mouse ------------------------------------------------------------------------------
    def mouse_press(self, button: Qt.MouseButton, pos: QPointF) -> None:
        self._drag = (button, QPointF(pos), QPointF(pos))

    def mouse_move(self, pos: QPointF) -> None:
        if self._drag is None or self.scene is None:
            return
        button, start, last = self._drag
        dx, dy = pos.x() - last.x(), pos.y() - last.y()
        self._drag = (button, start, QPointF(pos))
        if button == Qt.MouseButton.LeftButton:
            self.scene.rotate(dx * 0.5, dy * 0.5)
        elif button == Qt.MouseButton.MiddleButton:
            ratio = self.devicePixelRatioF()
            self.scene.pan(dx * ratio, dy * ratio)
        elif button == Qt.MouseButton.RightButton and self.scene.tf is not None:
            tf = self.scene.tf
            unit = max(tf.span, 1.0) / 400
            self.scene.set_transfer(tf.adjusted(-dy * unit, dx / 200))
        self.schedule(moving=True)

    def mouse_release(self, pos: QPointF) -> None:
        if self._drag is None:
            return
        button, start, _ = self._drag
        self._drag = None
        click = (pos - start).manhattanLength() < CLICK_PX
        if click and button == Qt.MouseButton.LeftButton:
            self.pick(pos)
        self._still.start()

    def pick(self, pos: QPointF) -> bool:
        """Move the crosshair to what is drawn at ``pos`` (widget pixels)."""
        if self.scene is None:
            return False
        w, h = self.scene.window.GetSize()
        x = pos.x() * w / max(self.area.width(), 1)
        y = pos.y() * h / max(self.area.height(), 1)
        lps = self.scene.pick(x, y)
        if lps is None:
            return False
        self.controller.set_lps(lps)
        return True

    def wheel(self, delta: int) -> None:
        if self.scene is not None and delta:
            self.scene.zoom(1.1 ** (delta / 120))
            self.schedule(moving=True)

    def shutdown(self) -> None:
        if self.scene is not None:
            self.scene.close()
            self.scene = None
