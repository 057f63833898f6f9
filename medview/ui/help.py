"""Help texts: the shortcut sheet and About (version, licences, research-use notice)."""

from __future__ import annotations

from medview import __version__
from medview.core.notices import RESEARCH_USE

MOUSE = (
    ("Mouse wheel", "next / previous slice"),
    ("Ctrl + wheel", "zoom"),
    ("Left click / drag", "move the crosshair (linked views follow)"),
    ("Right drag", "window width (horizontal) and level (vertical)"),
    ("Middle drag", "pan"),
)


def shortcut_sheet(actions: list[tuple[str, str, str]]) -> str:
    """The F1 sheet: the mouse, then every action with a shortcut (menu, action, keys), as
    the window's menus define them, so the sheet cannot fall behind."""
    rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in MOUSE)
    menu = ""
    for where, text, keys in actions:
        if where != menu:
            rows += f"<tr><td colspan='2'><br><i>{where}</i></td></tr>"
            menu = where
        rows += f"<tr><td><b>{keys}</b></td><td>{text}</td></tr>"
    note = (
        "<p>Keys without Ctrl/Shift act on the viewer when it has the focus (click an "
        "image first), never while you type in a form.</p>"
    )
    return f"<table cellpadding='2'>{rows}</table>{note}"


def about_text() -> str:
    return (
        f"<h3>MedView {__version__}</h3>"
        "<p>An open-source radiology workstation. Licence: Apache-2.0.</p>"
        f"<p><b>{RESEARCH_USE}</b></p>"
        "<p>Bundled demo data: chest CT <i>lung2</i> from pyradiomics (BSD-3-Clause); Colin27 T1 "
        "head MR from Debian's mricron-data (BSD-3-Clause). See resources/DEMO_SOURCES.md.</p>"
        "<p>Built on PySide6 (LGPL-3.0), pydicom (MIT), numpy (BSD), SimpleITK (Apache-2.0) "
        "and the pylibjpeg / CharLS codecs.</p>"
    )
