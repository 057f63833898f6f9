"""The shipped models: intact weights, card figures reproduced through MedView's own engine on
the held-out data, and a smoke run of each ``train.py``."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from medview.inference.loading import sha256_file
from medview.inference.manifest import read_manifest
from tests.conftest import REPO, missing_outside_ci

MODELS = REPO / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if (p / "manifest.json").is_file())


def _training() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "medview_training", MODELS / "medview_training.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _data(*names: str) -> dict[str, Path]:
    """Cached registry data (``python models/medview_training.py fetch``); skip on a laptop
    without it, fail in CI, where ``.ci/run`` fetches it."""
    mt = _training()
    found = {n: mt.cached(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        missing_outside_ci(f"training data {missing} (python models/medview_training.py fetch)")
    return found  # type: ignore[return-value]


def test_models_are_shipped() -> None:
    assert "brain-extraction-mr" in {p.name for p in SHIPPED}


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_weights_match_manifest_and_card_is_complete(folder: Path) -> None:
    m = read_manifest(folder)
    assert sha256_file(m.weights_path) == m.weights_sha256
    assert m.weights_path.stat().st_size <= 20 * 1024 * 1024
    card = m.card_text
    assert "Research use only, not for diagnosis" in card
    for heading in ("## Intended use", "## Training data", "## Evaluation", "## Known limits"):
        assert heading in card, heading
    assert "(not yet trained)" not in card
    assert (folder / "train.py").is_file()


def _card_figure(folder: Path, name: str) -> float:
    match = re.search(rf"\| {name} \| \*\*([0-9.]+)\*\* \|", (folder / "MODEL_CARD.md").read_text())
    assert match, f"no headline {name} in the card"
    return float(match.group(1))


def test_brain_extraction_reproduces_card_dice() -> None:
    """The shipped weights, through MedView's engine, on the held-out ITK subject."""
    _data("KmeansTest_T1UCharRaw.nii.gz", "KmeansTest_T1RawSkullStrip.nii.gz")
    folder = MODELS / "brain-extraction-mr"
    spec = importlib.util.spec_from_file_location("brain_train", folder / "train.py")
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    figures = train.evaluate(read_manifest(folder))
    assert figures["dice"] == pytest.approx(_card_figure(folder, "Dice"), abs=0.005)
    assert figures["dice"] >= 0.90  # the target


@pytest.mark.parametrize("script", sorted(MODELS.glob("*/train.py")), ids=lambda p: p.parent.name)
def test_train_script_smoke_run(script: Path, tmp_path: Path) -> None:
    _data("ch2.nii.gz", "ch2bet.nii.gz")
    r = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "smoke run" in r.stdout
