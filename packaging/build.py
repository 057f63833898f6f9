"""`make package`: MedView as a desktop bundle, ``dist/MedView-<version>-<os>-<arch>.tar.gz``.

1. the wheel of this checkout (it carries the shipped models and demo studies, setup.py);
2. a virtual environment of its own (``.venv-package``) with that wheel, its dependencies as
   constraints.txt pins them (what `make run` installs, nothing of the test extra) and
   PyInstaller;
3. PyInstaller's one-folder build (packaging/medview.spec), run outside the checkout so that
   it takes the installed MedView, never the source tree;
4. the archive: the program folder, the licences of everything in it, the install script, the
   menu entry and icon, a README.

Standard library only: it runs before any virtual environment exists. Prints what it built,
its size and the time of each step; the same figures go to build/package/build.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = REPO / ".venv-package"
WORK = REPO / "build" / "package"
DIST = REPO / "dist"
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "-q"]
PYINSTALLER = "pyinstaller==6.22.3"


def step(name: str, times: dict[str, float], fn, *args):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    print(f"== {name}", flush=True)
    out = fn(*args)
    times[name] = round(time.perf_counter() - t, 1)
    return out


def run(*cmd: str | Path, cwd: Path = REPO) -> None:
    subprocess.run([str(c) for c in cmd], cwd=cwd, check=True)


def build_wheel(python: Path) -> Path:
    out = WORK / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    run(python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps", "-q",
        "-w", out, ".")  # fmt: skip
    (wheel,) = out.glob("medview-*.whl")
    return wheel


def environment() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        run(sys.executable, "-m", "venv", VENV)
    return python


def install(python: Path, wheel: Path) -> None:
    constraints = ("-c", REPO / "constraints.txt")
    # the same version number as the last build: pip would keep the old files
    run(python, *PIP, "--force-reinstall", "--no-deps", wheel)
    run(python, *PIP, *constraints, wheel, PYINSTALLER)


def freeze(python: Path) -> Path:
    work = WORK / "pyinstaller"
    work.mkdir(parents=True, exist_ok=True)
    dist = WORK / "dist"
    shutil.rmtree(dist / "MedView", ignore_errors=True)
    # cwd outside the checkout: `import medview` must find the installed wheel
    run(python, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", dist,
        "--workpath", work / "build", HERE / "medview.spec", cwd=work)  # fmt: skip
    return dist / "MedView"


def version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import medview; print(medview.__version__)"],
        cwd=WORK, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def stage(python: Path, program: Path, name: str) -> Path:
    """The archive's folder: the program with its licences, install script, menu entry."""
    top = WORK / "stage" / name
    shutil.rmtree(top.parent, ignore_errors=True)
    top.parent.mkdir(parents=True)
    shutil.copytree(program, top, symlinks=True)
    subprocess.run(
        [str(python), str(HERE / "licences.py"), str(top / "LICENSES"), str(top / "_internal")],
        cwd=WORK, check=True,
    )  # fmt: skip
    shutil.copy2(HERE / "install.sh", top / "install.sh")
    os.chmod(top / "install.sh", 0o755)
    shutil.copy2(HERE / "README.txt", top / "README.txt")
    shutil.copy2(REPO / "LICENSE", top / "LICENSE")
    share = top / "share"
    (share / "applications").mkdir(parents=True)
    icons = share / "icons" / "hicolor" / "scalable" / "apps"
    icons.mkdir(parents=True)
    shutil.copy2(REPO / "resources" / "icons" / "medview.svg", icons / "org.medview.MedView.svg")
    # the menu entry as `install.sh` writes it, with the command on the PATH in place of the
    # absolute path it gets there
    entry = subprocess.run(
        [str(python), "-c",
         "from pathlib import Path; from medview.cli.desktop import desktop_entry; "
         "print(desktop_entry(Path('medview')), end='')"],
        cwd=WORK, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (share / "applications" / "org.medview.MedView.desktop").write_text(entry)
    return top


def archive(top: Path) -> Path:
    DIST.mkdir(exist_ok=True)
    target = DIST / f"{top.name}.tar.gz"
    part = target.with_suffix(".part")
    with tarfile.open(part, "w:gz", compresslevel=6) as tar:
        tar.add(top, arcname=top.name)
    part.replace(target)
    return target


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    python = step("virtual environment", times, environment)
    wheel = step("wheel", times, build_wheel, python)
    step("install the wheel and PyInstaller", times, install, python, wheel)
    program = step("PyInstaller (one folder)", times, freeze, python)
    v = version(python)
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform)
    name = f"MedView-{v}-{system or sys.platform}-{platform.machine().lower()}"
    top = step("stage (licences, install script, menu entry)", times, stage, python, program, name)
    target = step("archive", times, archive, top)
    figures = {
        "archive": str(target.relative_to(REPO)),
        "compressed_mib": round(target.stat().st_size / 2**20, 1),
        "unpacked_mib": round(size(top) / 2**20, 1),
        "seconds": times,
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    (WORK / "build.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
