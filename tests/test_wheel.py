"""MedView as a wheel: built from this checkout, installed with its dependencies into a fresh
virtual environment, and run from a folder outside the checkout. The installed MedView finds
its shipped models and demo studies inside the package (setup.py copies them in), runs a
model, exports a report, opens its window on the demo (``medview --demo``) on a real X
server, imports nothing from the checkout, and needs no network (run in a network namespace
without one)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, require_tool
from tests.ui.test_real_display import grab, xvfb  # noqa: F401 - the Xvfb fixture

EXPECTED_MODELS = {
    "brain-extraction-mr",
    "chest-ct-segmentation",
    "chest-ct-lesion-classifier",
    "lung-nodule-segmentation",
    "lung-nodule-malignancy",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel of this checkout installed; its Python."""
    root = tmp_path_factory.mktemp("wheel")
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), "."],
        cwd=REPO,
        check=True,
        timeout=600,
    )
    built = time.perf_counter() - t
    (wheel,) = (root / "dist").glob("medview-*.whl")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    python = root / "venv" / "bin" / "python"
    t = time.perf_counter()
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), wheel],
        check=True,
        timeout=1200,
    )
    print(
        f"wheel {wheel.stat().st_size / 2**20:.0f} MiB, built in {built:.0f} s, installed with "
        f"its dependencies in {time.perf_counter() - t:.0f} s"
    )
    return python


def run(
    python: Path, *args: str, home: Path, where: Path, timeout: int = 600, prefix: tuple = ()
) -> subprocess.CompletedProcess:
    """The installed `medview`, from ``where`` (outside the checkout), with nothing of the
    checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(MEDVIEW_HOME=str(home), PYTHONFAULTHANDLER="1")
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [*prefix, str(python.parent / "medview"), *args],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shipped(python: Path, where: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import json, medview; from medview.core.shipped import demo_study, shipped; "
            "print(json.dumps({'package': medview.__file__, 'demo': str(demo_study()), "
            "'models': str(shipped('models')), 'resources': str(shipped('resources'))}))",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    return dict(json.loads(out.stdout))


def test_the_wheel_carries_models_and_demo_and_runs_them(installed: Path, tmp_path: Path) -> None:
    venv = installed.parent.parent
    where, home = tmp_path / "elsewhere", tmp_path / "home"
    where.mkdir()
    r = run(installed, "--version", home=home, where=where)
    assert r.returncode == 0 and r.stdout.startswith("medview "), r.stderr
    paths = shipped(installed, where)
    for key in ("package", "demo", "models", "resources"):
        assert Path(paths[key]).is_relative_to(venv), f"{key} is outside the install: {paths}"
    demo, demo_mr = Path(paths["demo"]), Path(paths["resources"]) / "demo" / "colin27"
    # the report's templates and fonts are in the wheel
    resources = Path(paths["resources"])
    assert {p.name for p in (resources / "report-templates").glob("*.json")} >= {
        "generic.json",
        "ct-chest.json",
    }
    assert (resources / "fonts" / "DejaVuSans.ttf").is_file()

    r = run(installed, "models", "list", "--json", home=home, where=where)
    assert r.returncode == 0, r.stderr
    rows = [m for m in json.loads(r.stdout) if not m["refused"]]
    assert {m["id"] for m in rows} >= EXPECTED_MODELS
    assert all(Path(m["folder"]).is_relative_to(venv) for m in rows)

    r = run(installed, "info", "--json", str(demo), home=home, where=where)
    assert r.returncode == 0, r.stderr
    r = run(
        installed, "load", str(demo), "--out", str(tmp_path / "ct.nii.gz"), home=home, where=where
    )
    assert r.returncode == 0 and (tmp_path / "ct.nii.gz").stat().st_size > 0, r.stderr

    # the brain model from the wheel gives the mask the checkout's engine gives
    out = tmp_path / "brain"
    r = run(
        installed, "run-model", "brain-extraction-mr", str(demo_mr), "--out", str(out),
        home=home, where=where,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    import nibabel as nib

    checkout = tmp_path / "brain-checkout"
    r = subprocess.run(
        [str(Path(sys.executable).parent / "medview"), "run-model", "brain-extraction-mr",
         str(REPO / "resources" / "demo" / "colin27"), "--out", str(checkout)],
        env={**os.environ, "MEDVIEW_HOME": str(home)}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    theirs = np.asarray(nib.load(out / "labels.nii.gz").dataobj) > 0
    ours = np.asarray(nib.load(checkout / "labels.nii.gz").dataobj) > 0
    dice = 2 * (theirs & ours).sum() / (theirs.sum() + ours.sum())
    print(f"brain mask from the wheel vs the checkout: Dice {dice:.4f}, {theirs.sum()} voxels")
    assert theirs.sum() > 0 and dice > 0.999

    # an export of a report, with no network at all (a network namespace without one)
    unshare = require_tool("unshare")
    offline: tuple[str, ...] = (unshare, "-rn")
    if subprocess.run([*offline, "true"], capture_output=True).returncode != 0:
        # a container that forbids namespaces: the export still runs, the claim is not made
        print("no network namespace can be made here: the export runs with the network")
        offline = ()
    seg = tmp_path / "seg"
    r = run(
        installed, "run-model", "chest-ct-segmentation", str(demo), "--out", str(seg),
        home=home, where=where, prefix=offline,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    report = tmp_path / "report"
    r = run(
        installed, "export", str(demo), "--seg", str(seg / "labels.nii.gz"), "--out",
        str(report), "--json", home=home, where=where, prefix=offline,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    written = {p.suffix for p in report.rglob("*") if p.is_file()}
    assert {".pdf", ".dcm"} <= written


def test_nothing_is_imported_from_outside_the_install(installed: Path, tmp_path: Path) -> None:
    """Every module the installed MedView loads (its packages, the window's, the engine's)
    comes from the virtual environment or Python's own library, never from the checkout."""
    probe = (
        "import sys, json, medview.cli, medview.session, medview.ui.main_window, "
        "medview.inference.runner, medview.export.bundle\n"
        "print(json.dumps(sorted({getattr(m, '__file__', None) or '' for m in "
        "list(sys.modules.values())})))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["QT_QPA_PLATFORM"] = "offscreen"
    out = subprocess.run(
        [str(installed), "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    files = [Path(f) for f in json.loads(out.stdout) if f]
    assert files
    venv = installed.parent.parent
    outside = [f for f in files if f.is_relative_to(REPO)]
    assert outside == [], outside[:5]
    assert any(f.is_relative_to(venv) and "medview" in f.parts for f in files)


def test_medview_demo_opens_the_window_from_the_wheel(
    installed: Path,
    xvfb: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    home, where = tmp_path / "home", tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_") and k != "PYTHONPATH"}
    env.update(DISPLAY=xvfb, MEDVIEW_HOME=str(home))
    log = open(tmp_path / "medview.out", "w")  # noqa: SIM115 - closed below
    app = subprocess.Popen(
        [str(installed.parent / "medview"), "--demo"],
        env=env,
        cwd=where,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # the demo loads in the background: wait until the viewports show it
            assert app.poll() is None, (tmp_path / "medview.out").read_text()
            time.sleep(2)
            grey = grab(xvfb, home, tmp_path / "screen.png").mean(axis=2)
            h, w = grey.shape
            centre = grey[h // 5 : h * 4 // 5, w // 5 : w * 3 // 5]
            if len(np.unique(centre)) > 100 and centre.std() > 30:
                break
            assert time.monotonic() < deadline, "the window stayed blank"
        keep = os.environ.get("MEDVIEW_SCREENSHOT_DIR")
        if keep:
            shutil.copy(tmp_path / "screen.png", Path(keep) / "screenshot-wheel.png")
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 0
        assert "Traceback" not in (tmp_path / "medview.out").read_text()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        log.close()
