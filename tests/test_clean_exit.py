"""However MedView ends (SIGTERM from a logout or `kill`, SIGKILL from a force quit), none of its
worker processes outlives it: the window and a CLI command, each killed while its decode pool
runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import DEMO_CT

MEDVIEW = Path(sys.executable).parent / "medview"


def _descendants_once_busy(proc: subprocess.Popen[bytes], wanted: int) -> list[psutil.Process]:
    """The process tree as soon as it has ``wanted`` descendants (its workers)."""
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = parent.children(recursive=True)
        if len(kids) >= wanted:
            return kids
        if proc.poll() is not None:
            pytest.fail(f"finished before its workers were seen (exit {proc.returncode})")
        time.sleep(0.01)
    pytest.fail("no worker processes appeared")


def _gone_within(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    for p in alive:  # do not leave them behind for the next test
        p.kill()
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_window_leaves_no_process(sig: signal.Signals, tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDVIEW_HOME": str(tmp_path)}
    app = subprocess.Popen(
        [str(MEDVIEW), str(DEMO_CT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    kids = _descendants_once_busy(app, 3)  # forkserver (+ tracker) + decode workers
    time.sleep(1.0)  # let the demo import begin
    app.send_signal(sig)
    rc = app.wait(30)
    if sig == signal.SIGTERM:
        assert rc == 0, app.stderr.read().decode() if app.stderr else ""
    alive = _gone_within(kids, 5)
    assert not alive, [p.cmdline()[:4] for p in alive]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_cli_load_leaves_no_process(sig: signal.Signals, tmp_path: Path) -> None:
    env = {**os.environ, "MEDVIEW_HOME": str(tmp_path)}
    cmd = [str(MEDVIEW), "load", str(DEMO_CT), "--out", str(tmp_path / "ct.nii.gz")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = _descendants_once_busy(proc, 2)
    proc.send_signal(sig)
    proc.wait(30)
    alive = _gone_within(kids, 5)
    assert not alive, [p.cmdline()[:4] for p in alive]
    # nothing half-written is left where the user asked for the file
    assert not (tmp_path / "ct.nii.gz").exists() or proc.returncode == 0


def test_quit_after_reading_the_demo_mr_exits_cleanly(tmp_path: Path) -> None:
    """Open the demo head MR, let it load (its thumbnail, header facts and volume come back
    from worker threads), then quit: exit 0, no "Fatal Python error" (PySide6 6.12.0 aborted
    here on a reference lost per worker result)."""
    from tests.conftest import REPO

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDVIEW_HOME": str(tmp_path)}
    app = subprocess.Popen(
        [str(MEDVIEW), str(REPO / "resources" / "demo" / "colin27")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(10)  # the import, the volume, the thumbnail and the header facts
    assert app.poll() is None, app.stderr.read().decode() if app.stderr else ""
    app.send_signal(signal.SIGTERM)
    rc = app.wait(30)
    err = app.stderr.read().decode() if app.stderr else ""
    assert rc == 0 and "Fatal Python error" not in err, err[-2000:]
