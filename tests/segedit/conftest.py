"""The demo chest CT and a segmentation of it by the shipped chest model (computed once)."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_CT


@pytest.fixture(scope="session")
def demo_ct():  # type: ignore[no-untyped-def]
    from medview.io.loader import load_series
    from medview.io.scan import scan

    return load_series(scan([str(DEMO_CT)]).series[0])


@pytest.fixture(scope="session")
def demo_seg(demo_ct):  # type: ignore[no-untyped-def]
    from medview.inference.registry import find_model
    from medview.inference.runner import segment

    return segment(demo_ct, find_model("chest-ct-segmentation"), device="cpu")
