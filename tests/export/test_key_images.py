"""Automatic key images show findings and the reader's measurements, never anatomy, and read
on their own: orientation letters and a scale bar. On the demo chest CT with the shipped chest
model's real output and a ruler on another slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medview.core.results import Segmentation
from medview.export.bundle import ExportOptions, export_bundle
from medview.export.content import ExportContent
from medview.export.keyimages import default_key_images
from medview.viewer.annotations import Kind, Measurement
from medview.viewer.mpr import View
from tests.conftest import DEMO_CT


@pytest.fixture(scope="module")
def demo() -> tuple:  # type: ignore[type-arg]
    from medview.inference.registry import find_model
    from medview.inference.runner import segment
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([str(DEMO_CT)]).series[0]
    volume = load_series(series)
    manifest = find_model("chest-ct-segmentation")
    result = segment(volume, manifest, device="cpu")
    # the manifest's segments (findings among them) come with the result
    return series, volume, Segmentation(result.labels, result.segments)


def _ruler(volume, k: int) -> dict:  # type: ignore[no-untyped-def]
    g = volume.geometry
    a = g.index_to_lps(np.array([k, 200.0, 150.0]))
    b = g.index_to_lps(np.array([k, 260.0, 230.0]))
    return Measurement(Kind.RULER, View.AXIAL, (tuple(a), tuple(b))).to_dict()


def test_findings_and_measurements_never_anatomy(demo) -> None:  # type: ignore[no-untyped-def]
    _, volume, label_map = demo
    findings = [s.name for s in label_map.segments if s.finding]
    assert findings == ["lung lesion"]
    keys = default_key_images(label_map, volume, [_ruler(volume, 5)])
    captions = [k.caption for k in keys]
    assert not any(c.endswith(("of body", "of bone", "of lung")) for c in captions)
    lesion = label_map.labels.array == 4
    if lesion.any():  # the model found a lesion: its largest cross-section is a key image
        best = int(np.argmax(lesion.reshape(lesion.shape[0], -1).sum(axis=1)))
        assert ("axial", best) in [(k.view, k.index) for k in keys]
    assert ("axial", 5) in [(k.view, k.index) for k in keys]
    assert "measurement 1" in captions


def test_exported_key_images_keep_the_ruler_and_read_on_their_own(
    demo,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    series, volume, label_map = demo
    ruler = _ruler(volume, 5)
    result = export_bundle(
        series,
        volume,
        ExportContent(segmentation=label_map, measurements=[ruler]),
        tmp_path,
        ExportOptions(),
    )
    keys = sorted(f for f in result.files if f.startswith("key-images/"))
    assert keys
    # the ruler's slice is among them, with the ruler drawn (its yellow line)
    images = [np.asarray(Image.open(result.path / k).convert("RGB")) for k in keys]
    ruler_yellow = [(im == (255, 220, 0)).all(axis=2).sum() for im in images]
    assert max(ruler_yellow) > 100
    for im in images:
        h, w, _ = im.shape
        # orientation letters (yellow) at the middle of the top edge
        top = im[: h // 12, w // 3 : 2 * w // 3]
        assert ((np.abs(top.astype(int) - (255, 220, 120)) < 40).all(axis=2)).sum() > 20
        # the scale bar (light grey line) at the bottom left
        corner = im[h * 3 // 4 :, : w // 3]
        assert ((corner > 225).all(axis=2)).sum() > 50
