"""HiDPI: at a device pixel ratio of 2 the viewport paints at full physical resolution."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import DEMO_CT, REPO

SCRIPT = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r})
from PySide6.QtWidgets import QApplication
app = QApplication([])
from PySide6.QtCore import QSettings
from medview.io.database import StudyDatabase
from medview.ui.main_window import MainWindow
from medview.viewer.mpr import View
import tempfile, os
tmp = tempfile.mkdtemp()
w = MainWindow(StudyDatabase(os.path.join(tmp, "db.sqlite")),
               QSettings(os.path.join(tmp, "s.ini"), QSettings.Format.IniFormat))
w.resize(900, 600)
w.show()
w.import_paths([{str(DEMO_CT)!r}])
import time
t0 = time.time()
while (w.controller.state is None or w.runner.running) and time.time() - t0 < 30:
    app.processEvents()
    time.sleep(0.01)
view = w.viewer.views[View.AXIAL]
pix = view.grab()
img = pix.toImage()
print(json.dumps({{"dpr": pix.devicePixelRatio(), "logical": [view.width(), view.height()],
                   "physical": [img.width(), img.height()]}}))
w.close()
"""


def test_viewport_paints_at_device_pixel_ratio_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(
        os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2", MEDVIEW_HOME=str(tmp_path)
    )
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["dpr"] == 2.0
    assert out["physical"] == [2 * out["logical"][0], 2 * out["logical"][1]]
