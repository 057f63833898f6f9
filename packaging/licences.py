"""The licences of everything in the bundle, into ``LICENSES/`` (run by build.py with the
packaging environment's Python): each Python distribution's own licence files from its
metadata, Python's licence, and the Debian copyright file of each system library PyInstaller
copied in. ``LICENSES/INDEX.txt`` lists them all, and names any without a licence file.

Usage: python licences.py LICENSES_DIR BUNDLE_INTERNAL_DIR
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

# the build's own tools: in the environment, never in the bundle
BUILD_ONLY = {"pip", "pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "setuptools", "wheel"}
# SPDX identifiers -> the full texts Debian keeps (base-files), for a package whose metadata
# names its licence but ships no file (Qt for Python: LGPL-3.0-only OR GPL-2.0/3.0-only)
COMMON = Path("/usr/share/common-licenses")
COMMON_LICENCES = {
    "LGPL-3.0": COMMON / "LGPL-3", "LGPL-2.1": COMMON / "LGPL-2.1", "GPL-2.0": COMMON / "GPL-2",
    "GPL-3.0": COMMON / "GPL-3", "Apache-2.0": COMMON / "Apache-2.0", "MPL-2.0": COMMON / "MPL-2.0",
}  # fmt: skip
LICENCE_FILE = re.compile(r"(licen[cs]e|copying|notice|authors|copyright)", re.IGNORECASE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def licence_field(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    text = meta.get("License-Expression") or ""
    if not text:
        short = (meta.get("License") or "").strip().splitlines()
        text = short[0][:80] if short else ""
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if "License" in c]
    return text or ", ".join(classifiers) or "(not stated in the metadata)"


def python_distributions(out: Path) -> list[str]:
    rows = []
    for dist in sorted(metadata.distributions(), key=lambda d: canonical(d.metadata["Name"])):
        name = canonical(dist.metadata["Name"])
        if name in BUILD_ONLY:
            continue
        folder = out / f"{name}-{dist.version}"
        copied = 0
        for f in dist.files or []:
            parts = Path(str(f)).parts
            in_meta = any(p.endswith((".dist-info", ".egg-info")) for p in parts)
            if not in_meta or not any(LICENCE_FILE.search(p) for p in parts[1:]):
                continue
            src = Path(str(dist.locate_file(f)))
            if src.is_file():
                dest = folder / Path(*parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                copied += 1
        if not copied:  # the licence texts its SPDX expression names, from the system's copies
            for spdx in re.findall(r"[A-Za-z0-9.+-]+", licence_field(dist)):
                text = COMMON_LICENCES.get(spdx.removesuffix("-only").removesuffix("-or-later"))
                if text is not None and text.is_file():
                    folder.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(text, folder / f"{spdx}.txt")
                    copied += 1
            note = " (licence texts from its SPDX expression)" if copied else ""
        else:
            note = ""
        note = note or ("" if copied else "  [no licence file in its metadata]")
        rows.append(f"{name} {dist.version}: {licence_field(dist)}{note}")
    return rows


def system_libraries(out: Path, internal: Path) -> list[str]:
    """Each shared library copied from the build machine's system folders, with its Debian
    package's copyright file (where dpkg knows the file)."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return []
    rows = []
    found = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    for lib in sorted(internal.glob("lib*.so*")):
        paths = [
            line.split("=>")[-1].strip()
            for line in found.splitlines()
            if line.strip().startswith(lib.name + " ")
        ]
        if not paths:
            continue  # came with a Python package, whose licence is listed above
        owner = subprocess.run([dpkg, "-S", paths[0]], capture_output=True, text=True)
        if owner.returncode != 0:
            continue
        package = owner.stdout.split(":")[0].strip()
        copyright_file = Path("/usr/share/doc") / package / "copyright"
        if copyright_file.is_file():
            dest = out / "system" / package / "copyright"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copyright_file, dest)
        rows.append(f"{lib.name}: Debian package {package} (system/{package}/copyright)")
    return rows


def main(out: Path, internal: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = python_distributions(out)
    python_licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if python_licence.is_file():
        shutil.copyfile(python_licence, out / "Python-LICENSE.txt")
    system = system_libraries(out, internal)
    missing = sum("[no licence file" in r for r in rows)
    text = [
        "MedView's bundle: the licence of each part, as its own package states it.",
        "MedView itself: Apache-2.0 (LICENSE beside this folder).",
        f"Python {sys.version.split()[0]}: PSF License (Python-LICENSE.txt).",
        "",
        f"Python packages ({len(rows)}; {missing} ship no licence file in their metadata):",
        *rows,
        "",
        f"System libraries copied from the build machine ({len(system)}):",
        *system,
        "",
    ]
    (out / "INDEX.txt").write_text("\n".join(text), encoding="utf-8")
    print(f"licences: {len(rows)} Python packages ({missing} without a file), {len(system)} system")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
