"""MedView as a user starts it: the `medview` command on a real X server (Xvfb) with Qt's
default xcb platform, not the offscreen one the other UI tests use; and the message a user gets
when a system library Qt's X11 platform needs is missing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DEMO_CT, REPO, require_tool

# the user's install (`make test` builds it, see tests/test_runtime_install.py), else this one
MEDVIEW = Path(os.environ.get("MEDVIEW_RUNTIME_PYTHON") or sys.executable).parent / "medview"

GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv[:1])
image = app.primaryScreen().grabWindow(0)
sys.exit(0 if image.save(sys.argv[1]) else 1)
"""


def user_env(display: str, home: Path) -> dict[str, str]:
    """The environment of a desktop user: no offscreen platform, a display, their data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    env.update(DISPLAY=display, MEDVIEW_HOME=str(home))
    return env


@pytest.fixture
def xvfb(tmp_path: Path) -> Iterator[str]:
    exe = require_tool("Xvfb")
    for n in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen(
        [exe, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    yield display
    proc.terminate()
    proc.wait(10)


def grab(display: str, home: Path, out: Path) -> np.ndarray:
    from PIL import Image

    env = user_env(display, home)
    subprocess.run([sys.executable, "-c", GRAB, str(out)], env=env, check=True, timeout=60)
    return np.asarray(Image.open(out).convert("RGB"))


def test_window_opens_on_xcb_and_shows_the_demo(xvfb: str, tmp_path: Path) -> None:
    xdotool = require_tool("xdotool")
    home = tmp_path / "home"
    env = user_env(xvfb, home)
    log = open(tmp_path / "medview.out", "w")  # noqa: SIM115 - closed below
    app = subprocess.Popen(
        [str(MEDVIEW), str(DEMO_CT)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        found = subprocess.run(
            [xdotool, "search", "--sync", "--onlyvisible", "--name", "MedView"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert found.returncode == 0, (tmp_path / "medview.out").read_text()
        # the demo loads in the background: wait until the viewports show an image
        deadline = time.monotonic() + 90
        while True:
            assert app.poll() is None, (tmp_path / "medview.out").read_text()
            pixels = grab(xvfb, home, tmp_path / "screen.png")
            grey = pixels.mean(axis=2)
            h, w = grey.shape
            centre = grey[h // 5 : h * 4 // 5, w // 5 : w * 3 // 5]  # inside the viewports
            distinct = len(np.unique(centre))
            if distinct > 100 and centre.std() > 30:
                break
            assert time.monotonic() < deadline, f"the window stayed blank ({distinct} levels)"
            time.sleep(2)
        keep = os.environ.get("MEDVIEW_SCREENSHOT_DIR")
        if keep:
            shutil.copy(tmp_path / "screen.png", Path(keep) / "screenshot-xvfb.png")
        # the 2x2 layout (Ctrl+4) brings the 3-D view: VTK renders through the X server's
        # OpenGL (GLX), as on a desktop; the bone preset's warm colours appear
        window_id = found.stdout.split()[0]
        subprocess.run([xdotool, "windowfocus", "--sync", window_id], env=env, check=False)
        subprocess.run([xdotool, "key", "--window", window_id, "ctrl+4"], env=env, check=True)
        deadline = time.monotonic() + 60
        while True:
            assert app.poll() is None, (tmp_path / "medview.out").read_text()
            pixels = grab(xvfb, home, tmp_path / "screen-3d.png").astype(np.int16)
            h, w = pixels.shape[:2]
            view = pixels[h // 2 :, w // 4 : w * 3 // 4]
            warm = int(((view[..., 0] - view[..., 2]) > 50).sum())
            if warm > 3000:
                break
            assert time.monotonic() < deadline, f"no 3-D rendering on the X display ({warm})"
            time.sleep(2)
        if keep:
            shutil.copy(tmp_path / "screen-3d.png", Path(keep) / "screenshot-xvfb-3d.png")
        out = (tmp_path / "medview.out").read_text()
        assert "Traceback" not in out
        assert "qt.qpa.plugin" not in out
        app.send_signal(signal.SIGTERM)  # a logout: the app closes cleanly
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        log.close()


def test_missing_xcb_library_gives_a_clear_message(tmp_path: Path) -> None:
    """The loader finds an unusable libxcb-cursor first on the library path (as with a missing
    or broken package): `medview` says what to install and exits 1; Qt never aborts."""
    require_tool("ldd")
    stub = tmp_path / "lib"
    stub.mkdir()
    (stub / "libxcb-cursor.so.0").write_bytes(b"")  # found first, and unloadable
    env = user_env(":0", tmp_path / "home")
    env["LD_LIBRARY_PATH"] = str(stub)
    run = subprocess.run(
        [str(MEDVIEW), str(DEMO_CT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stderr
    assert "libxcb-cursor.so.0" in run.stderr
    assert "apt-get install libxcb-cursor0" in run.stderr
    assert "dnf install xcb-util-cursor" in run.stderr
    assert "Aborted" not in run.stderr and "could not be initialized" not in run.stderr


def test_no_display_is_said_plainly(tmp_path: Path) -> None:
    env = user_env("", tmp_path / "home")
    env.pop("DISPLAY")
    env.pop("WAYLAND_DISPLAY", None)
    run = subprocess.run(
        [str(MEDVIEW), str(DEMO_CT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "no X display" in run.stderr


def test_mistyped_command_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(MEDVIEW), "exprot", "x"],
        env=user_env(":0", tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "'exprot' is neither a command" in run.stderr


def test_make_run_without_an_xcb_library_says_what_to_install(tmp_path: Path) -> None:
    """The README's first command, `make run`, on a desktop whose libxcb-cursor is unusable:
    the message and a non-zero exit, no Qt abort."""
    require_tool("ldd")
    make = require_tool("make")
    venv = tmp_path / "venv"  # the installed environment, as `make run` left it
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "medview"):
        (venv / "bin" / name).symlink_to(MEDVIEW.parent / name)
    (venv / ".run-installed").touch()  # installed: make goes straight to the window
    stub = tmp_path / "lib"
    stub.mkdir()
    (stub / "libxcb-cursor.so.0").write_bytes(b"")
    env = user_env(":0", tmp_path / "home")
    env["LD_LIBRARY_PATH"] = str(stub)
    run = subprocess.run(
        [make, "--no-print-directory", "run", f"VENV={venv}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "apt-get install libxcb-cursor0" in out and "dnf install xcb-util-cursor" in out
    assert "Aborted" not in out and "core dumped" not in out, out
