"""Help texts: the shortcut sheet and About (version, licences, research-use notice)."""

from __future__ import annotations

from medview import __version__
from medview.core.notices import RESEARCH_USE

SHORTCUTS = (
    ("Mouse wheel", "next / previous slice"),
    ("Ctrl + wheel", "zoom"),
    ("Left click / drag", "move the crosshair (linked views follow)"),
    ("Right drag", "window width (horizontal) and level (vertical)"),
    ("Middle drag", "pan"),
    ("Up / Down, Left / Right", "previous / next slice"),
    ("Page Up / Page Down", "10 slices back / forward"),
    ("Home / End", "first / last slice"),
    (
        "1 … 9",
        "window presets (CT: brain, subdural, stroke, lung, mediastinum, abdomen, "
        "liver, bone; MR: header and percentile windows)",
    ),
    ("I", "invert grey scale"),
    ("R", "reset view"),
    ("F", "fit to window"),
    ("C", "cine on / off (rate in the toolbar)"),
    ("Ctrl+1 / Ctrl+3 / Ctrl+4", "layouts 1x1, 1x3 (MPR), 2x2"),
    ("Ctrl+T", "corner annotations on / off"),
    ("Ctrl+O / Ctrl+Shift+O", "open files / open folder"),
    ("F1", "this sheet"),
)


def shortcut_sheet() -> str:
    rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
    return f"<table cellpadding='3'>{rows}</table>"


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
