"""The headless AI commands: models list/import and run-model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import write_ct
from tests.inference.test_bundle import make_bundle


def medview(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MEDVIEW_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "medview.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_import_list_and_run(tmp_path: Path) -> None:
    import nibabel as nib

    home = tmp_path / "home"
    r = medview(home, "models", "import", str(make_bundle(tmp_path / "bundle")))
    assert r.returncode == 0, r.stderr
    r = medview(home, "models", "list", "--json")
    ids = {m["id"] for m in json.loads(r.stdout) if not m["refused"]}
    assert "tiny-spleen-segmentation" in ids
    write_ct(tmp_path / "ct", n=12, rows=40, cols=40)
    out = tmp_path / "out"
    r = medview(
        home,
        "run-model",
        "tiny-spleen-segmentation",
        str(tmp_path / "ct"),
        "--device",
        "cpu",
        "--uncertainty",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "Research use only" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["id"] == "tiny-spleen-segmentation"
    assert len(summary["model"]["weights_sha256"]) == 64 and summary["device"] == "cpu"
    assert [lb["name"] for lb in summary["labels"]] == ["spleen", "liver"]
    labels = nib.load(str(out / "labels.nii.gz"))
    assert labels.shape == (40, 40, 12)  # the source grid (x, y, z)
    assert np.asarray(labels.dataobj).max() <= 2
    assert (out / "uncertainty.nii.gz").exists()


def test_refusals_exit_non_zero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bundle = make_bundle(tmp_path / "evil")
    cfg = json.loads((bundle / "configs" / "inference.json").read_text())
    cfg["network_def"] = {"_target_": "os.system", "command": "true"}
    (bundle / "configs" / "inference.json").write_text(json.dumps(cfg))
    r = medview(home, "models", "import", str(bundle))
    assert r.returncode == 1 and "refused" in r.stderr
    r = medview(home, "run-model", "no-such-model", str(tmp_path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "no model package" in r.stderr


def test_run_classifier(tmp_path: Path) -> None:
    import nibabel as nib

    from medview.inference.package import save_package
    from tests.inference.conftest import NET2D, cls_manifest, random_state

    home = tmp_path / "home"
    save_package(
        home / "models",
        cls_manifest("cli-cls"),
        random_state(NET2D),
        "# classifier",
    )
    write_ct(tmp_path / "ct", n=6, rows=40, cols=40)
    out = tmp_path / "out"
    r = medview(
        home, "run-model", "cli-cls", str(tmp_path / "ct"), "--device", "cpu", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["probabilities"]) == {"no lesion", "lesion"}
    assert len(summary["per_slice"]) == 6 and summary["aggregation"] == "maximum over slices"
    assert nib.load(str(out / "heatmap.nii.gz")).shape == (40, 40, 6)
