"""Before Qt starts: can its X11 (xcb) platform plugin load here?

Qt's own answer to a missing system library is an abort ("Could not load the Qt platform plugin
xcb ... Aborted") with no word of which package to install. This check asks the dynamic loader
(``ldd``, as the loader itself would resolve the plugin, honouring ``LD_LIBRARY_PATH``) before
``QApplication`` exists, and names the missing libraries with the Debian/Ubuntu and Fedora
packages that provide them. It imports nothing of Qt.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# soname -> (Debian/Ubuntu package, Fedora package): what Qt 6's xcb plugin links to
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}
# what the README's quick start names: every package above that a fresh desktop may lack
QUICK_START_DEBIAN = (
    "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 "
    "libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libxcb-xkb1 libegl1 libgl1 libfontconfig1"
)

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_LOAD_ERROR = re.compile(r"error while loading shared libraries: (\S+?):")


@dataclass(frozen=True)
class DisplayProblem:
    """Why the window cannot start; ``message`` is what the user reads."""

    message: str
    missing: tuple[str, ...] = ()


def xcb_plugin() -> Path | None:
    """Qt's xcb platform plugin inside the installed PySide6 (found without importing Qt)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        plugin = Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def unresolved_libraries(binary: Path, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Libraries the dynamic loader cannot load for ``binary`` (``ldd``'s view, with
    ``LD_LIBRARY_PATH`` from ``env``): missing ones, or one it found but could not use."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return ()
    run = subprocess.run(
        [ldd, str(binary)],
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    text = run.stdout + run.stderr
    missing = _NOT_FOUND.findall(text)
    broken = [Path(m).name for m in _LOAD_ERROR.findall(text)]
    return tuple(dict.fromkeys([*missing, *broken]))


def platform_problem(env: Mapping[str, str] | None = None) -> DisplayProblem | None:
    """None when Qt's default platform can start here, else what to tell the user.

    Only the X11 path is checked: another platform chosen with ``QT_QPA_PLATFORM``
    (offscreen, wayland, ...) or a Wayland session is Qt's own business."""
    env = os.environ if env is None else env
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None
    if not platform and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return DisplayProblem(
            "MedView needs a desktop: no X display is set (DISPLAY is empty). Start it from a "
            "desktop session, or use the headless commands (`medview --help`)."
        )
    plugin = xcb_plugin()
    if plugin is None:
        return None
    missing = unresolved_libraries(plugin, env)
    qpa = plugin.parent.parent.parent / "lib" / "libQt6XcbQpa.so.6"
    if qpa.is_file():
        missing = tuple(dict.fromkeys([*missing, *unresolved_libraries(qpa, env)]))
    if not missing:
        return None
    return DisplayProblem(_message(missing), missing)


def _message(missing: tuple[str, ...]) -> str:
    debian = sorted({PACKAGES.get(m, (m, m))[0] for m in missing})
    fedora = sorted({PACKAGES.get(m, (m, m))[1] for m in missing})
    return (
        "MedView cannot open its window: the system lacks "
        f"{', '.join(missing)}, which Qt's X11 platform needs.\n"
        f"  Debian/Ubuntu: sudo apt-get install {' '.join(debian)}\n"
        f"  Fedora:        sudo dnf install {' '.join(fedora)}\n"
        "Then run MedView again. (The headless commands work without them: `medview --help`.)"
    )
