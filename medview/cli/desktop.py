"""`medview desktop install|remove`: MedView in the desktop's applications menu, with "Open
with MedView" for DICOM files, zip archives and folders (the freedesktop.org desktop entry and
icon theme specifications; the DICOM MIME type is shared-mime-info's ``application/dicom``,
found by the ``DICM`` magic as well as by ``.dcm``). Files go to the user's data folder
(``$XDG_DATA_HOME``, else ``~/.local/share``); nothing is written elsewhere."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medview.core.atomic import write_atomic
from medview.core.shipped import frozen, shipped

APP_ID = "org.medview.MedView"
MIME_TYPES = ("application/dicom", "application/zip", "inode/directory")


def data_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"


def launcher() -> Path:
    """The `medview` command of this installation (a virtual environment's, pipx's, or the
    desktop bundle's program)."""
    if frozen():
        return Path(sys.executable)
    beside = Path(sys.executable).parent / "medview"
    if beside.is_file():
        return beside
    found = shutil.which("medview")
    if found is None:
        raise FileNotFoundError("the medview command of this installation was not found")
    return Path(found)


def _quoted(path: Path) -> str:
    """An Exec argument (the desktop entry specification's quoting rules)."""
    text = str(path)
    if not any(c in text for c in " \t\n\"'\\><~|&;$*?#()`"):
        return text
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in text)
    return f'"{escaped}"'


def desktop_entry(exe: Path) -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=MedView",
            "GenericName=Radiology workstation",
            "Comment=Read DICOM studies: MPR, measurements, AI models (research use only), reports",
            f"Exec={_quoted(exe)} %F",
            f"Icon={APP_ID}",
            "Terminal=false",
            "Categories=Science;MedicalSoftware;",
            "MimeType=" + "".join(f"{m};" for m in MIME_TYPES),
            "Keywords=DICOM;CT;MR;PACS;radiology;",
            f"StartupWMClass={APP_ID}",
            "",
        ]
    )


def installed_files(home: Path) -> tuple[Path, Path]:
    return (
        home / "applications" / f"{APP_ID}.desktop",
        home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
    )


def _refresh(home: Path) -> None:
    """Let the desktop see the change (the MIME cache and the icon cache, where their tools
    are installed)."""
    applications, icons = home / "applications", home / "icons" / "hicolor"
    for command in (
        ["update-desktop-database", "-q", str(applications)],
        ["gtk-update-icon-cache", "-q", "-t", str(icons)],
    ):
        exe = shutil.which(command[0])
        if exe and Path(command[-1]).is_dir():
            subprocess.run([exe, *command[1:]], check=False, capture_output=True, timeout=60)


def install(home: Path, exe: Path) -> tuple[Path, Path]:
    entry, icon = installed_files(home)
    entry.parent.mkdir(parents=True, exist_ok=True)
    icon.parent.mkdir(parents=True, exist_ok=True)
    text = desktop_entry(exe)
    source = shipped("resources") / "icons" / "medview.svg"

    def write_entry(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    def copy_icon(tmp: str) -> None:
        shutil.copyfile(source, tmp)

    write_atomic(entry, write_entry, ".desktop")
    write_atomic(icon, copy_icon, ".svg")
    _refresh(home)
    return entry, icon


def remove(home: Path) -> list[Path]:
    gone = [p for p in installed_files(home) if p.exists()]
    for p in gone:
        p.unlink()
    _refresh(home)
    return gone


def cmd_desktop(args: argparse.Namespace) -> int:
    home = data_home()
    if args.desktop_command == "remove":
        gone = remove(home)
        print("removed " + ", ".join(map(str, gone)) if gone else "MedView was not in the menu")
        return 0
    try:
        exe = launcher()
    except FileNotFoundError as e:
        sys.stderr.write(f"medview desktop install: {e}\n")
        return 1
    entry, icon = install(home, exe)
    print(f"MedView is in the applications menu: {entry} (starts {exe}); icon {icon}")
    return 0
