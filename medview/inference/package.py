"""Writing a model package: safetensors weights, their SHA-256 in the manifest, a card."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medview.core.atomic import atomic_path
from medview.core.errors import ModelError
from medview.core.notices import RESEARCH_USE
from medview.core.paths import sha256_file
from medview.inference.manifest import ModelManifest, read_manifest


def save_package(
    dest_root: str | os.PathLike[str],
    manifest: dict[str, Any],
    state_dict: dict[str, Any],
    card: str,
) -> ModelManifest:
    """Write ``dest_root/<id>/`` (manifest.json, weights.safetensors, MODEL_CARD.md) and return
    its validated manifest. The folder appears whole or not at all."""
    from safetensors.torch import save_file

    mid = str(manifest.get("id", ""))
    dest = Path(dest_root) / mid
    if dest.exists():
        raise ModelError(f"a model package {mid!r} already exists in {dest_root}")
    Path(dest_root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pkg-", dir=dest_root))
    try:
        weights = staging / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(weights))
        data = dict(manifest)
        data["weights"] = {"file": weights.name, "sha256": sha256_file(weights)}
        data["card"] = "MODEL_CARD.md"
        if RESEARCH_USE not in card:
            card = card.rstrip() + f"\n\n**{RESEARCH_USE}**\n"
        (staging / "MODEL_CARD.md").write_text(card)
        with atomic_path(staging / "manifest.json", ".json") as tmp, open(tmp, "w") as f:
            json.dump(data, f, indent=2)
        read_manifest(staging)  # validate before it becomes visible
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return read_manifest(dest)
