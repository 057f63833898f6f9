from __future__ import annotations

from pathlib import Path

import pytest

from medview.core.paths import choose_data_dir, data_dir


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MEDVIEW_HOME", raising=False)
    assert data_dir() == tmp_path / "data" / "MedView"  # platform default
    choose_data_dir(tmp_path / "chosen")
    assert data_dir() == tmp_path / "chosen" and data_dir().is_dir()
    monkeypatch.setenv("MEDVIEW_HOME", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"  # the environment wins (tests, scripts)
    monkeypatch.delenv("MEDVIEW_HOME")
    choose_data_dir(None)
    assert data_dir() == tmp_path / "data" / "MedView"
