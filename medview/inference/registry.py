"""Where model packages live (``models/`` in the repository and ``models/`` in the data
folder) and which of them suit a series."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medview.core.errors import ModelError
from medview.core.paths import data_dir
from medview.core.shipped import shipped
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest, read_manifest

SHIPPED = shipped("models")


@dataclass(frozen=True)
class PackageEntry:
    folder: Path
    manifest: ModelManifest | None
    error: str | None  # why the package is refused, when it is


def user_models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dirs() -> list[Path]:
    return [p for p in (SHIPPED, user_models_dir()) if p.is_dir()]


def list_packages() -> list[PackageEntry]:
    """Every folder with a manifest.json, valid or not (invalid ones carry the reason)."""
    out = []
    for root in model_dirs():
        for folder in sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()):
            try:
                out.append(PackageEntry(folder, read_manifest(folder), None))
            except ModelError as e:
                out.append(PackageEntry(folder, None, e.message))
    return out


def find_model(model_id: str) -> ModelManifest:
    for entry in list_packages():
        if entry.manifest is not None and entry.manifest.id == model_id:
            return entry.manifest
    raise ModelError(f"no model package with id {model_id!r}")


def compatible(manifest: ModelManifest, volume: Volume) -> bool:
    """Same modality (or none named) and enough dimensions."""
    if manifest.modality and volume.modality and manifest.modality != volume.modality:
        return False
    return not (manifest.dimensions == 3 and volume.shape[0] < 2)


def superseded_by(entries: list[PackageEntry]) -> dict[str, ModelManifest]:
    """Installed packages that another installed package replaces: id -> the replacement
    (e.g. the shipped brain model once HD-BET is imported)."""
    out: dict[str, ModelManifest] = {}
    for e in entries:
        if e.manifest is not None:
            for old in e.manifest.supersedes:
                out.setdefault(old, e.manifest)
    return out


def ordered_for(volume: Volume | None) -> list[PackageEntry]:
    """Packages with the compatible ones first (the Models panel order); among those, the
    ones not replaced by another installed package before the replaced ones, and the click
    models (a nodule the reader points at) before the whole-series ones."""
    entries = list_packages()
    replaced = superseded_by(entries)

    def key(e: PackageEntry) -> tuple[bool, bool, bool]:
        fits = e.manifest is not None and (volume is None or compatible(e.manifest, volume))
        m = e.manifest
        return (not fits, m is not None and m.id in replaced, not (m is not None and m.takes_click))

    return sorted(entries, key=key)
