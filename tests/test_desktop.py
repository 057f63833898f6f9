"""`medview desktop install|remove` from the user's install: a menu entry that the
freedesktop.org validator accepts, "Open with MedView" for DICOM files, zips and folders in the
desktop's MIME cache, the icon, and nothing left after removing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require_tool

RUNTIME = Path(os.environ.get("MEDVIEW_RUNTIME_PYTHON") or sys.executable).parent / "medview"


def desktop(command: str, data: Path, where: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    return subprocess.run(
        [str(RUNTIME), "desktop", command],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_menu_entry_install_and_remove(tmp_path: Path, qapp) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QIcon

    validate = require_tool("desktop-file-validate")
    require_tool("update-desktop-database")
    data = tmp_path / "share"
    r = desktop("install", data, tmp_path)
    assert r.returncode == 0, r.stderr
    entry = data / "applications" / "org.medview.MedView.desktop"
    icon = data / "icons" / "hicolor" / "scalable" / "apps" / "org.medview.MedView.svg"
    assert entry.is_file() and icon.is_file()
    checked = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout
    fields = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    exe = Path(fields["Exec"].removesuffix(" %F"))
    assert exe == RUNTIME and os.access(exe, os.X_OK)
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("medview ")
    cache = (data / "applications" / "mimeinfo.cache").read_text()
    for mime in ("application/dicom", "application/zip", "inode/directory"):
        assert f"{mime}=org.medview.MedView.desktop;" in cache
    assert icon.read_bytes() == (REPO / "resources" / "icons" / "medview.svg").read_bytes()
    assert not QIcon(str(icon)).pixmap(64, 64).isNull()  # Qt draws it (the window's icon too)

    r = desktop("remove", data, tmp_path)
    assert r.returncode == 0, r.stderr
    assert not entry.exists() and not icon.exists()
    assert "org.medview.MedView" not in (data / "applications" / "mimeinfo.cache").read_text()


def test_exec_quotes_a_path_with_spaces() -> None:
    from medview.cli.desktop import desktop_entry

    text = desktop_entry(Path('/home/a user/My "apps"/bin/medview'))
    assert 'Exec="/home/a user/My \\"apps\\"/bin/medview" %F' in text.splitlines()


def test_the_bundle_starts_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the desktop bundle (PyInstaller sets ``sys.frozen``) the menu entry and the batch
    dialog start the bundle's own program; in a Python install, `medview` and ``-m``."""
    from medview.cli.desktop import launcher
    from medview.core.shipped import command

    assert command() == [sys.executable, "-m", "medview.cli"]
    assert launcher().name == "medview"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/MedView/MedView")
    assert command() == ["/opt/MedView/MedView"]
    assert launcher() == Path("/opt/MedView/MedView")
