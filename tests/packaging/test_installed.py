"""MedView as a user installs it, outside the checkout: the desktop bundle (`make package`:
unpacked in a fresh folder and installed with its own ``install.sh`` into a fresh home) and
the wheel (installed into the fresh virtual environment `make package` builds from it). Each
runs with an empty environment (``env -i``: no PYTHONPATH, no virtual environment, nothing of
the checkout) from a folder outside the checkout, and must:

- say its version, list the shipped models, read and convert the demo CT;
- give the brain model's card Dice on its held-out head, and the checkout's mask on the demo MR;
- segment the demo CT and export a report (PDF, SEG, SR) in a network namespace with no network,
  making no network connection at all (traced);
- run a pipeline over the demo (`medview batch`) to its Parquet and CSV table;
- open its window on the demo on a real X server (Xvfb, Qt's xcb platform), not blank, switch
  to the 3-D layout (VTK), and load no code from outside itself (every file the process opens,
  traced).

`make check-package` runs this after `make package` (``.ci/run`` does both after `make test`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from medview import __version__
from tests.conftest import REPO, missing_outside_ci, require_tool
from tests.ui.test_real_display import grab, xvfb  # noqa: F401 - the Xvfb fixture

PACKAGE_VENV = REPO / ".venv-package"
EXPECTED_MODELS = {
    "brain-extraction-mr",
    "chest-ct-segmentation",
    "chest-ct-lesion-classifier",
    "lung-nodule-segmentation",
    "lung-nodule-malignancy",
}
# where a system's shared libraries, fonts and settings live: a bundle may open these
SYSTEM = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/etc/", "/usr/share/", "/proc/",
          "/sys/", "/dev/", "/run/", "/var/", "/tmp/")  # fmt: skip
CODE = re.compile(r"\.(py|pyc|so(\.[0-9.]+)?|zip|pyd)$")


@dataclass(frozen=True)
class Installed:
    kind: str  # "bundle" or "wheel"
    exe: Path  # the `medview` command the user runs
    root: Path  # everything of this installation lies under it
    home: Path
    where: Path  # a folder outside the checkout, where the commands run
    resources: Path  # the shipped resources inside the installation

    def env(self, **extra: str) -> dict[str, str]:
        env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
               "MEDVIEW_HOME": str(self.home / "medview")}  # fmt: skip
        env.update(extra)
        return env

    def run(self, *args: str, prefix: tuple[str, ...] = (), timeout: int = 600, **extra: str):  # type: ignore[no-untyped-def]
        return subprocess.run(
            [*prefix, str(self.exe), *args], env=self.env(**extra), cwd=self.where,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def _archive() -> Path:
    found = sorted(
        (REPO / "dist").glob("MedView-*-linux-*.tar.gz"), key=lambda p: p.stat().st_mtime
    )
    if not found:
        missing_outside_ci("the desktop bundle (make package)")
    return found[-1]


def _bundle(root: Path) -> Installed:
    archive = _archive()
    with tarfile.open(archive) as tar:
        tar.extractall(root / "download", filter="tar")
    (top,) = (root / "download").iterdir()
    home = root / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
           "XDG_DATA_HOME": str(home / ".local" / "share")}  # fmt: skip
    r = subprocess.run([str(top / "install.sh")], env=env, capture_output=True, text=True,
                       timeout=600, cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "is installed in" in r.stdout, r.stdout
    installed = home / ".local" / "opt" / "medview"
    resources = installed / "_internal" / "medview" / "_shipped" / "resources"
    return Installed("bundle", home / ".local" / "bin" / "medview", installed, home,
                     root / "elsewhere", resources)  # fmt: skip


def _wheel(root: Path) -> Installed:
    exe = PACKAGE_VENV / "bin" / "medview"
    if not exe.exists():
        missing_outside_ci("the wheel's environment .venv-package (make package)")
    (resources,) = PACKAGE_VENV.glob("lib/python3*/site-packages/medview/_shipped/resources")
    home = root / "home"
    home.mkdir()
    return Installed("wheel", exe, PACKAGE_VENV, home, root / "elsewhere", resources)


@pytest.fixture(scope="module", params=["bundle", "wheel"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp(request.param)
    installed = _bundle(root) if request.param == "bundle" else _wheel(root)
    installed.where.mkdir()
    return installed


def test_version_models_and_the_demo(app: Installed, tmp_path: Path) -> None:
    r = app.run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"medview {__version__}", r.stderr
    r = app.run("models", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = [m for m in json.loads(r.stdout) if not m["refused"]]
    assert {m["id"] for m in rows} >= EXPECTED_MODELS
    assert all(Path(m["folder"]).is_relative_to(app.root) for m in rows), rows
    if app.kind == "bundle":  # every package inside has its licence listed
        index = (app.root / "LICENSES" / "INDEX.txt").read_text()
        inside = {re.sub(r"[-_.]+", "-", d.name.split("-")[0]).lower()
                  for d in (app.root / "_internal").glob("*.dist-info")}  # fmt: skip
        listed = {line.split()[0] for line in index.splitlines() if ": " in line}
        assert inside and inside <= listed, inside - listed
        assert "Apache License" in (app.root / "LICENSE").read_text()
        # install.sh put it in the applications menu, starting the installed program
        entry = app.home / ".local" / "share" / "applications" / "org.medview.MedView.desktop"
        assert f"Exec={app.root / 'MedView'} %F" in entry.read_text()
        validate = require_tool("desktop-file-validate")
        assert subprocess.run([validate, str(entry)], capture_output=True).returncode == 0
    # the report's templates and fonts are inside
    assert {p.name for p in (app.resources / "report-templates").glob("*.json")} >= {
        "generic.json",
        "ct-chest.json",
    }
    assert (app.resources / "fonts" / "DejaVuSans.ttf").is_file()
    demo = app.resources / "demo" / "lung2"
    r = app.run("info", "--json", str(demo))
    assert r.returncode == 0, r.stderr
    (series,) = [s for p in json.loads(r.stdout)["patients"] for st in p["studies"]
                 for s in st["series"]]  # fmt: skip
    assert series["modality"] == "CT" and series["instances"] == 61, series
    r = app.run("load", str(demo), "--out", str(tmp_path / "ct.nii.gz"))
    assert r.returncode == 0, r.stderr
    import nibabel as nib

    assert nib.load(tmp_path / "ct.nii.gz").shape == (512, 512, 61)


@pytest.fixture(scope="module")
def held_out_head(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The brain model card's held-out subject (the ITK example T1) written as an MR DICOM
    series on its own grid, with its reference brain mask (z, y, x)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mt", REPO / "models" / "medview_training.py")
    assert spec is not None and spec.loader is not None
    mt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mt)
    names = ("KmeansTest_T1UCharRaw.nii.gz", "KmeansTest_T1RawSkullStrip.nii.gz")
    paths = {n: mt.cached(n) for n in names}
    if None in paths.values():
        missing_outside_ci("the held-out head (python models/medview_training.py fetch)")
    from medview.export.series_writer import SeriesInfo, write_series

    vol = mt.read_nifti(paths[names[0]], "MR")
    truth = np.asarray(mt.read_nifti(paths[names[1]], "MR").array) > 0
    folder = tmp_path_factory.mktemp("held-out-head")
    write_series(np.asarray(vol.array).astype(np.uint16), vol.geometry, folder,
                 SeriesInfo(seed="itk-t1", modality="MR", body_part="HEAD"))  # fmt: skip
    return folder, truth


def _card_dice() -> float:
    text = (REPO / "models" / "brain-extraction-mr" / "MODEL_CARD.md").read_text()
    return float(re.search(r"\| Dice \| \*\*([0-9.]+)\*\* \|", text).group(1))  # type: ignore[union-attr]


def _labels(folder: Path) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.load(folder / "labels.nii.gz").dataobj).transpose(2, 1, 0)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_the_brain_model_gives_its_card_dice(
    app: Installed, held_out_head: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    series, truth = held_out_head
    r = app.run("run-model", "brain-extraction-mr", str(series), "--out", str(tmp_path / "t1"))
    assert r.returncode == 0, r.stderr[-3000:]
    found = _labels(tmp_path / "t1") == 1
    assert found.shape == truth.shape
    dice = _dice(found, truth)
    print(f"{app.kind}: brain model on the card's held-out head, Dice {dice:.4f} "
          f"(card {_card_dice():.3f})")  # fmt: skip
    assert dice == pytest.approx(_card_dice(), abs=0.005)

    # and the demo MR gives the mask the checkout's own engine gives
    from medview.inference.manifest import read_manifest
    from medview.inference.runner import segment
    from medview.io.loader import load_series
    from medview.io.scan import scan

    mr = app.resources / "demo" / "colin27"
    r = app.run("run-model", "brain-extraction-mr", str(mr), "--out", str(tmp_path / "mr"))
    assert r.returncode == 0, r.stderr[-3000:]
    ours = segment(load_series(scan([str(mr)]).series[0]),
                   read_manifest(REPO / "models" / "brain-extraction-mr"))  # fmt: skip
    checkout = np.asarray(ours.labels.array) == 1
    theirs = _labels(tmp_path / "mr") == 1
    print(f"{app.kind}: demo MR mask vs the checkout's, Dice {_dice(theirs, checkout):.4f}")
    assert checkout.sum() > 0 and _dice(theirs, checkout) > 0.999


def _offline() -> tuple[str, ...]:
    """A network namespace with no network, and every connection attempt traced."""
    unshare = require_tool("unshare")
    if subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode != 0:
        missing_outside_ci("user and network namespaces (unshare -rn)")
    return (unshare, "-rn")


def _trace_lines(trace: Path) -> list[str]:
    """strace's log, one file per process and thread (``-ff``: no call is split across
    lines by another thread's)."""
    return [ln for f in sorted(trace.parent.glob(trace.name + ".*"))
            for ln in f.read_text(errors="replace").splitlines()]  # fmt: skip


def _connections(trace: Path) -> list[str]:
    """Connection attempts to anything but a local socket (Unix, netlink) in an strace log."""
    lines = _trace_lines(trace)
    return [ln for ln in lines if re.search(r"\bconnect\(.*AF_INET6?\b", ln)
            or re.search(r"sendto\(.*AF_INET6?\b", ln)]  # fmt: skip


def test_export_of_a_report_with_no_network(app: Installed, tmp_path: Path) -> None:
    strace = require_tool("strace")
    trace = tmp_path / "net.trace"
    prefix = (*_offline(), strace, "-ff", "-qq", "-e", "trace=connect,sendto,sendmsg",
              "-o", str(trace))  # fmt: skip
    demo = app.resources / "demo" / "lung2"
    seg = tmp_path / "seg"
    r = app.run("run-model", "chest-ct-segmentation", str(demo), "--out", str(seg), prefix=prefix)
    assert r.returncode == 0, r.stderr[-3000:]
    calls = _connections(trace)
    report = tmp_path / "report"
    r = app.run("export", str(demo), "--seg", str(seg / "labels.nii.gz"), "--out", str(report),
                "--json", prefix=prefix)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    calls += _connections(trace)
    assert calls == [], calls[:5]
    written = {p.suffix for p in report.rglob("*") if p.is_file()}
    assert {".pdf", ".dcm"} <= written
    (pdf,) = report.rglob("*.pdf")
    text = subprocess.run([require_tool("pdftotext"), str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert "research use only" in text.lower()


def test_a_cohort_runs_and_writes_its_table(app: Installed, tmp_path: Path) -> None:
    """`medview batch` from the install (no Ray in it: one series after the other), to the
    Parquet and CSV results table."""
    import pyarrow.parquet as pq

    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        'format = "medview-pipeline/1"\nname = "demo"\n[[select]]\nmodality = "CT"\n'
        '[[models]]\nid = "chest-ct-segmentation"\n[export]\nformats = ["summary"]\n'
    )
    out = tmp_path / "out"
    demo = app.resources / "demo" / "lung2"
    r = app.run("batch", str(pipeline), str(demo), "--out", str(out), "--progress", "none")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    (table,) = out.glob("*.parquet")
    rows = pq.read_table(table).to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == "done", rows
    assert list(out.glob("*.csv"))


def demo_drawn(grey: np.ndarray) -> bool:
    """Whether a screen grab (grey levels) shows an image in the window's views, not a blank
    or a plain panel."""
    h, w = grey.shape
    centre = grey[h // 5 : h * 4 // 5, w // 5 : w * 3 // 5]
    return len(np.unique(centre)) > 100 and centre.std() > 30


def _opened_code(trace: Path) -> list[Path]:
    """The code files (modules, shared libraries, archives) a traced process opened."""
    opened = re.compile(r'open(?:at)?\((?:AT_FDCWD, )?"([^"]+)"[^)]*\)\s*=\s*\d')
    found = (opened.search(line) for line in _trace_lines(trace))
    return [Path(m.group(1)) for m in found if m and CODE.search(m.group(1))]


def test_the_window_opens_on_the_demo_and_loads_only_its_own_code(
    app: Installed,
    xvfb: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    strace = require_tool("strace")
    trace = tmp_path / "files.trace"
    log = open(tmp_path / "medview.out", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [strace, "-ff", "-qq", "-e", "trace=open,openat,connect", "-o", str(trace),
         str(app.exe), "--demo"],
        env=app.env(DISPLAY=xvfb), cwd=app.where, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:  # the demo loads in the background: wait until the viewports show it
            assert proc.poll() is None, (tmp_path / "medview.out").read_text()
            time.sleep(2)
            grey = grab(xvfb, tmp_path / "grab-home", tmp_path / "screen.png").mean(axis=2)
            h, w = grey.shape
            if demo_drawn(grey):
                break
            assert time.monotonic() < deadline, "the window stayed blank"
        keep = os.environ.get("MEDVIEW_SCREENSHOT_DIR")
        if keep:
            shutil.copy(tmp_path / "screen.png", Path(keep) / f"screenshot-{app.kind}.png")
        # the 3-D layout (Ctrl+5): VTK renders the demo volume; the screen changes
        xdotool = require_tool("xdotool")
        env = app.env(DISPLAY=xvfb)
        found = subprocess.run([xdotool, "search", "--onlyvisible", "--name", "MedView"],
                               env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        window = found.stdout.split()[0]
        subprocess.run([xdotool, "windowfocus", "--sync", window], env=env, timeout=30)
        subprocess.run([xdotool, "key", "--window", window, "ctrl+5"], env=env, timeout=30)
        before = grey
        while True:
            time.sleep(2)
            grey = grab(xvfb, tmp_path / "grab-home", tmp_path / "screen3d.png").mean(axis=2)
            view = grey[h // 8 : h * 7 // 8, w // 6 : w * 2 // 3]  # where the 3-D view is
            if np.abs(grey - before).mean() > 5 and (view > 60).mean() > 0.02:
                break  # the layout changed and the rendering (bone, lungs) is drawn
            assert proc.poll() is None and time.monotonic() < deadline + 120, "no 3-D layout"
        if keep:
            shutil.copy(tmp_path / "screen3d.png", Path(keep) / f"screenshot-{app.kind}-3d.png")
        # MedView (strace's child) is asked to quit, as a desktop's logout asks it
        import psutil

        (medview,) = psutil.Process(proc.pid).children()
        medview.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (tmp_path / "medview.out").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    out = (tmp_path / "medview.out").read_text()
    assert "Traceback" not in out, out[-3000:]

    code = _opened_code(trace)
    assert any(f.is_relative_to(app.root) for f in code)
    # the 3-D view ran on the install's own VTK
    assert any(f.is_relative_to(app.root) and "vtkRenderingVolume" in f.name for f in code)
    checkout = [f for f in code if f.is_relative_to(REPO) and not f.is_relative_to(app.root)]
    assert checkout == [], checkout[:5]
    if app.kind == "bundle":
        # its own folder, else the system's shared libraries: never another Python's modules
        foreign = [f for f in code if not f.is_relative_to(app.root)
                   and (not str(f).startswith(SYSTEM) or "python3" in str(f))]  # fmt: skip
    else:
        stdlib = Path(sys.base_prefix)
        foreign = [f for f in code if not f.is_relative_to(app.root)
                   and not f.is_relative_to(stdlib) and not str(f).startswith(SYSTEM)]  # fmt: skip
    assert foreign == [], sorted(set(map(str, foreign)))[:10]
    assert _connections(trace) == [], _connections(trace)[:5]
