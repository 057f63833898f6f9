"""Where MedView keeps its data: the user data dir (platformdirs), or ``$MEDVIEW_HOME``."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The MedView data folder (created on first use). ``MEDVIEW_HOME`` overrides it."""
    env = os.environ.get("MEDVIEW_HOME")
    if env:
        path = Path(env)
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("MedView", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path
