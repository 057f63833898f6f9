from __future__ import annotations

import numpy as np

from medview.io.scan import scan
from medview.viewer.thumbnail import series_thumbnail, thumbnails
from tests.conftest import DEMO_CT, pydicom_data_dir


def test_thumbnail_is_the_windowed_middle_slice() -> None:
    s = scan([DEMO_CT]).series[0]
    t = series_thumbnail(s, size=64)
    assert t.shape == (64, 64) and t.dtype == np.uint8 and t.std() > 10


def test_colour_and_failures() -> None:
    s = scan([pydicom_data_dir() / "US1_UNCR.dcm"]).series[0]
    assert series_thumbnail(s).shape[-1] == 3
    assert list(thumbnails([s])) == [s.key]
