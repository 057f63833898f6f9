"""Worker results reach the GUI thread as Qt signals (`medview.ui.bridge`). PySide6 6.12.0
loses a reference on every such delivery (the slot's return value None, bool arguments):
after a few thousand, None or True reaches zero and Python aborts, which users met as
"Aborted" on quitting after the demo MR. This runs the real `TaskRunner` many times, in a
child process (the failure is an abort), and checks the references hold."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHILD = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from medview.ui.bridge import TaskRunner

def main():
    app = QApplication([])
    runner = TaskRunner()
    done = []
    before = (sys.getrefcount(None), sys.getrefcount(True))
    n = 3000
    for i in range(n):
        runner.submit("t", lambda *, cancel, progress: (progress(1, 1, "x"), True)[1],
                      on_done=done.append, on_progress=lambda *a: None)
    t0 = time.monotonic()
    while len(done) < n and time.monotonic() - t0 < 60:
        app.processEvents()
    done.clear()
    runner.shutdown()
    after = (sys.getrefcount(None), sys.getrefcount(True))
    print("refs", before, after, flush=True)
    # every delivery must leave None's and True's counts where they were (within the
    # interpreter's own churn), not thousands lower
    assert after[0] > before[0] - 500 and after[1] > before[1] - 500, (before, after)

if __name__ == "__main__":
    main()
"""


def test_thousands_of_worker_results_leave_refcounts_whole() -> None:
    run = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=180, cwd=REPO
    )
    assert run.returncode == 0, run.stdout[-500:] + run.stderr[-2000:]
    assert "refs" in run.stdout
