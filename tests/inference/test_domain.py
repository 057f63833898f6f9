"""Models check their input domain (modality, body part, localizers and 2-D images, slices,
spacing) and the plausibility of their output, from their manifests; outside it a run is
refused, or run anyway and marked so in the summary, the SEG and the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.core.geometry import Geometry
from medview.core.results import Provenance, Segmentation, SegmentStats
from medview.core.volume import Volume
from medview.inference.domain import (
    OutsideDomainError,
    SeriesFacts,
    input_problems,
    output_problems,
    run_in_domain,
)
from medview.inference.registry import find_model
from tests.conftest import DEMO_CT, DEMO_MR, require_tool

MEDVIEW = Path(sys.executable).parent / "medview"


def _volume(modality: str, shape=(60, 64, 64), spacing=(1.0, 1.0, 1.0)) -> Volume:
    g = Geometry(shape=shape, origin=(0, 0, 0), spacing=spacing)
    return Volume(np.zeros(shape, np.int16), g, "1.2", "1.2.3", modality)


def test_each_kind_of_wrong_input_is_named() -> None:
    chest = find_model("chest-ct-segmentation")
    brain = find_model("brain-extraction-mr")
    assert input_problems(_volume("CT"), chest, SeriesFacts("CHEST")) == []
    assert "made for CT; this series is MR" in " ".join(
        input_problems(_volume("MR"), chest, SeriesFacts())
    )
    assert "the header says HEAD" in " ".join(
        input_problems(_volume("CT"), chest, SeriesFacts("HEAD"))
    )
    single = input_problems(
        _volume("CT", (1, 512, 512), (0.7, 0.7, 1)), chest, SeriesFacts("SPINE")
    )
    assert any("at least 16 slices" in p for p in single)
    scout = SeriesFacts("CHEST", ("ORIGINAL", "PRIMARY", "LOCALIZER"))
    assert any("localizer" in p for p in input_problems(_volume("CT"), chest, scout))
    assert any(
        "2-D image" in p for p in input_problems(_volume("CT"), chest, SeriesFacts(kind="image"))
    )
    coarse = input_problems(_volume("MR", spacing=(1.0, 1.0, 8.0)), brain, SeriesFacts("BRAIN"))
    assert any("outside the expected 0.4-7 mm" in p for p in coarse)
    assert input_problems(_volume("MR"), brain, SeriesFacts("BRAIN")) == []


def test_implausible_output_is_flagged() -> None:
    brain = find_model("brain-extraction-mr")
    assert output_problems({1: 1300.0}, brain) == []
    flagged = output_problems({1: 20.5}, brain)
    assert flagged and flagged[0].startswith("implausible result: brain 20 mL")

    def fake_run(volume, manifest, **kw):  # type: ignore[no-untyped-def]
        stats = (SegmentStats(1, "brain", 10, 2500.0, 0.0, 0.0),)
        return Segmentation(volume, (), stats, Provenance("m", "m", "1", "0" * 64, "cpu", 0.1))

    result = run_in_domain(fake_run, _volume("MR"), brain, SeriesFacts("HEAD"))
    assert any(n.startswith("implausible result: brain 2500 mL") for n in result.notes)
    with pytest.raises(OutsideDomainError, match="made for MR"):
        run_in_domain(fake_run, _volume("CT"), brain, SeriesFacts())
    anyway = run_in_domain(fake_run, _volume("CT"), brain, SeriesFacts(), anyway=True)
    assert anyway.notes[0].startswith("outside the model's domain, run anyway: it is made for MR")


def _run(*args: str, home: Path) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [str(MEDVIEW), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MEDVIEW_HOME": str(home)},
    )


def test_cli_refuses_and_runs_anyway_with_the_mark_everywhere(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = _run(
        "run-model", "brain-extraction-mr", str(DEMO_CT), "--out", str(tmp_path / "a"), home=home
    )
    assert r.returncode == 1 and "refused this series" in r.stderr and "made for MR" in r.stderr
    assert not (tmp_path / "a").exists()
    r = _run(
        "run-model", "chest-ct-segmentation", str(DEMO_MR), "--out", str(tmp_path / "b"), home=home
    )
    assert r.returncode == 1 and "made for CT; this series is MR" in r.stderr
    # one axial CT slice (as a head, spine or ankle image would be): too few slices
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(sorted(DEMO_CT.iterdir())[30], one / "slice.dcm")
    r = _run(
        "run-model", "chest-ct-lesion-classifier", str(one), "--out", str(tmp_path / "c"), home=home
    )
    assert r.returncode == 1 and "at least 16 slices" in r.stderr
    # the reader insists: it runs, and says so in the summary, the SEG and the report
    out = tmp_path / "d"
    r = _run(
        "run-model",
        "chest-ct-segmentation",
        str(DEMO_MR),
        "--out",
        str(out),
        "--run-anyway",
        home=home,
    )
    assert r.returncode == 0, r.stderr
    assert "outside the model's domain" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["notes"][0].startswith("outside the model's domain")
    export = tmp_path / "export"
    r = _run(
        "export",
        str(DEMO_MR),
        "--seg",
        str(out / "labels.nii.gz"),
        "--out",
        str(export),
        home=home,
    )
    assert r.returncode == 0, r.stderr
    segs = [
        p
        for p in export.rglob("*.dcm")
        if pydicom.dcmread(p, stop_before_pixels=True).Modality == "SEG"
    ]
    assert segs
    ds = pydicom.dcmread(segs[0], stop_before_pixels=True)
    assert "OUTSIDE MODEL DOMAIN" in ds.SeriesDescription
    text = subprocess.run(
        [require_tool("pdftotext"), str(next(export.rglob("*.pdf"))), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "outside the model's domain" in text
