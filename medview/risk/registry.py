"""Where risk model packages live: ``models/tabular/`` in the repository and
``models/tabular/`` in the data folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medview.core.errors import RiskModelError
from medview.core.paths import data_dir
from medview.core.shipped import shipped
from medview.risk.model import RiskModel, read_risk_model

SHIPPED = shipped("models") / "tabular"


@dataclass(frozen=True)
class RiskEntry:
    folder: Path
    model: RiskModel | None
    error: str | None  # why the package is refused, when it is


def risk_model_dirs() -> list[Path]:
    user = data_dir() / "models" / "tabular"
    return [p for p in (SHIPPED, user) if p.is_dir()]


def list_risk_models() -> list[RiskEntry]:
    """Every folder with a manifest.json, valid or not (invalid ones carry the reason)."""
    out = []
    for root in risk_model_dirs():
        for folder in sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()):
            try:
                out.append(RiskEntry(folder, read_risk_model(folder), None))
            except RiskModelError as e:
                out.append(RiskEntry(folder, None, str(e)))
    return out


def find_risk_model(id_or_path: str) -> RiskModel:
    """A model by id, or the package at a path (a folder or its manifest.json)."""
    path = Path(id_or_path)
    if path.exists():
        return read_risk_model(path)
    entries = list_risk_models()
    for entry in entries:
        if entry.model is not None and entry.model.id == id_or_path:
            return entry.model
    known = ", ".join(e.model.id for e in entries if e.model is not None) or "none"
    raise RiskModelError(f"no risk model {id_or_path!r} (installed: {known})")
