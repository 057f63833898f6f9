"""Where MedView keeps its data.

In order: ``$MEDVIEW_HOME``; the folder chosen in Preferences (recorded in ``location.json`` in
the user config folder, so it can move the data folder itself); the platform's user data
folder (platformdirs).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def _location_file() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("MedView", appauthor=False)) / "location.json"


def chosen_data_dir() -> Path | None:
    """The folder chosen in Preferences, if any."""
    try:
        value = json.loads(_location_file().read_text())["data_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(value) if value else None


def choose_data_dir(path: str | os.PathLike[str] | None) -> None:
    """Record the data folder for the next start (None: back to the platform default)."""
    from medview.core.atomic import atomic_path

    target = _location_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, ".json") as tmp, open(tmp, "w") as f:
        json.dump({"data_dir": str(path) if path else ""}, f)


def data_dir() -> Path:
    """The MedView data folder (created on first use)."""
    env = os.environ.get("MEDVIEW_HOME")
    if env:
        path = Path(env)
    else:
        chosen = chosen_data_dir()
        if chosen is not None:
            path = chosen
        else:
            from platformdirs import user_data_dir

            path = Path(user_data_dir("MedView", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
