"""Hostile derived objects: a clear, specific message (or a note), the rest of the study still
opens, nothing hangs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.conftest import write_ct
from tests.io.derived_helpers import open_object, save


def _study(tmp_path: Path):  # type: ignore[no-untyped-def]
    from medview.core.results import Segment, segmentation_of
    from medview.core.volume import Volume
    from medview.export.dicom_objects import read_sources
    from medview.io.loader import load_series
    from medview.io.scan import scan

    write_ct(tmp_path / "ct", n=8, rows=32, cols=32)
    series = scan([str(tmp_path / "ct")], workers=1).series[0]
    volume = load_series(series)
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:6, 8:20, 8:20] = 1
    labels[3:5, 10:14, 22:28] = 2
    seg = segmentation_of(
        volume, Volume(labels, volume.geometry), (Segment(1, "a"), Segment(2, "b"))
    )
    return series, volume, seg, read_sources(series)


def _seg(tmp_path: Path, name: str, edit=None):  # type: ignore[no-untyped-def]
    from medview.export.dicom_objects import build_seg

    series, _volume, seg, sources = _study(tmp_path)
    ds, _ = build_seg(series, sources, seg)
    if edit is not None:
        edit(ds)
    save(ds, tmp_path / name / "obj.dcm")
    return tmp_path / name


def test_seg_with_frames_outside_the_grid_says_so(tmp_path: Path) -> None:
    def shift(ds: Dataset) -> None:
        for f in ds.PerFrameFunctionalGroupsSequence:
            p = f.PlanePositionSequence[0].ImagePositionPatient
            p[2] = float(p[2]) + 1000.0  # a metre beyond the series' slices

    folder = _seg(tmp_path, "out", shift)
    _, _, _, opened = open_object(tmp_path / "ct", folder, kind="SEG")
    assert any("outside the series' grid" in n for n in opened.notes)
    assert not np.asarray(opened.segmentation.labels.array).any()


def test_seg_repeating_segment_numbers_is_refused(tmp_path: Path) -> None:
    from medview.core.errors import DerivedObjectError

    def repeat(ds: Dataset) -> None:
        ds.SegmentSequence[1].SegmentNumber = 1

    folder = _seg(tmp_path, "dup", repeat)
    with pytest.raises(DerivedObjectError, match=r"segment number|cannot be read"):
        open_object(tmp_path / "ct", folder, kind="SEG")


def test_seg_of_an_absent_series_names_it_and_the_study_still_opens(tmp_path: Path) -> None:
    from medview.core.errors import DerivedObjectError
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.session.derived import series_for

    def elsewhere(ds: Dataset) -> None:
        ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4.5.6.7"
        ds.FrameOfReferenceUID = "1.2.3.4.5.6.8"
        for f in ds.PerFrameFunctionalGroupsSequence:
            f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID = "1.2.3.9"
        for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence:
            i.ReferencedSOPInstanceUID = "1.2.3.9"

    folder = _seg(tmp_path, "absent", elsewhere)
    r = scan([str(tmp_path / "ct"), str(folder)], workers=1)
    (obj,) = r.derived
    with pytest.raises(DerivedObjectError, match=r"not here \(1\.2\.3\.4\.5\.6\.7\)"):
        series_for(obj, r.series)
    assert load_series(r.series[0]).shape == (8, 32, 32)


def test_seg_with_100000_empty_frames_does_not_hang(tmp_path: Path) -> None:
    """A real 100,000-frame file: the first frame's functional groups repeated, spliced into
    the written bytes (pydicom takes a minute to write 100,000 items)."""
    n = 100_000

    def inflate(ds: Dataset) -> None:
        ds.PerFrameFunctionalGroupsSequence = Sequence([ds.PerFrameFunctionalGroupsSequence[0]])
        ds.NumberOfFrames = n
        ds.PixelData = bytes((n * ds.Rows * ds.Columns + 7) // 8)

    folder = _seg(tmp_path, "huge", inflate)
    path = folder / "obj.dcm"
    data = path.read_bytes()
    at = data.index(b"\x00\x52\x30\x92SQ\x00\x00")  # explicit VR little endian
    length = int.from_bytes(data[at + 8 : at + 12], "little")
    item = data[at + 12 : at + 12 + length]
    items = item * n
    path.write_bytes(
        data[: at + 8] + len(items).to_bytes(4, "little") + items + data[at + 12 + length :]
    )
    from medview.io.header import parse_header

    assert parse_header(path).frames == n
    t = time.perf_counter()
    from medview.core.errors import DerivedObjectError

    with pytest.raises(DerivedObjectError, match="100000 frames"):
        open_object(tmp_path / "ct", folder, kind="SEG")
    assert time.perf_counter() - t < 30


def _rtstruct(tmp_path: Path, contours: list[tuple[str, list[float]]]) -> Path:
    from medview.export.rtstruct import build_rtstruct

    series, _volume, seg, sources = _study(tmp_path)
    ds = build_rtstruct(series, sources, seg)
    roi = ds.ROIContourSequence[0]
    for gtype, data in contours:
        c = Dataset()
        c.ContourGeometricType = gtype
        c.NumberOfContourPoints = len(data) // 3
        c.ContourData = data
        roi.ContourSequence.append(c)
    save(ds, tmp_path / "rt" / "rt.dcm")
    return tmp_path / "rt"


def test_rtstruct_with_bad_contours_opens_the_rest(tmp_path: Path) -> None:
    from medview.core.geometry import Geometry  # noqa: F401

    write_ct(tmp_path / "probe", n=8, rows=32, cols=32)
    from medview.io.loader import load_series
    from medview.io.scan import scan

    g = load_series(scan([str(tmp_path / "probe")], workers=1).series[0]).geometry

    def lps(z: float, pts: list[tuple[float, float]]) -> list[float]:
        return [float(v) for r, c in pts for v in g.index_to_lps(np.array([z, r, c]))]

    t = np.linspace(0, 2 * np.pi, 1_000_000, endpoint=False)
    circle = [(16 + 10 * np.sin(a), 16 + 10 * np.cos(a)) for a in t[::1]]
    bow_tie = [(1, 1), (6, 6), (1, 6), (6, 1)]  # self-intersecting: two triangles
    folder = _rtstruct(
        tmp_path,
        [
            ("CLOSED_PLANAR", lps(7, bow_tie)),
            ("CLOSED_PLANAR", []),  # empty
            ("CLOSED_PLANAR", lps(6.5, [(1, 1), (1, 5), (5, 5)])),  # between two slices
            ("CLOSED_PLANAR", lps(0, circle)),  # 10^6 points
            ("OPEN_PLANAR", lps(1, [(2, 2), (10, 10), (2, 20)])),
        ],
    )
    start = time.perf_counter()
    _, _, _, opened = open_object(tmp_path / "ct", folder, kind="RTSTRUCT")
    assert time.perf_counter() - start < 60
    labels = np.asarray(opened.segmentation.labels.array)
    # the bow tie: its two triangles (left and right of the crossing), not the gap between
    assert labels[7, 3, 2] == 1 and labels[7, 3, 5] == 1 and labels[7, 2, 3] == 0
    disc = labels[0] == 1
    assert abs(int(disc.sum()) - np.pi * 100) < 40
    assert labels[2:6, 8:20, 8:20].all() and (labels == 2).any()  # the good ROIs
    notes = " | ".join(opened.notes)
    assert "1 empty contour" in notes and "no image plane" in notes
    assert [m.kind.value for m in opened.measurements] == ["polyline"]


def test_sr_that_is_not_a_measurement_report_is_refused(tmp_path: Path) -> None:
    from medview.core.errors import DerivedObjectError

    _series, volume, _seg_map, sources = _study(tmp_path)
    from medview.export.dicom_objects import build_sr
    from medview.viewer.annotations import Kind, Measurement, evaluate
    from medview.viewer.mpr import View

    p = [
        tuple(float(v) for v in volume.geometry.index_to_lps(np.array(x)))
        for x in ([3, 4, 4], [3, 20, 20])
    ]
    m = Measurement(Kind.RULER, View.AXIAL, tuple(p))  # type: ignore[arg-type]
    ds = build_sr(sources, volume, [(m.to_dict(), evaluate(m, volume))])
    ds.ConceptNameCodeSequence[0].CodeValue = "18748-4"  # an imaging report, not TID 1500
    ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "LN"
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Diagnostic imaging report"
    save(ds, tmp_path / "sr" / "sr.dcm")
    with pytest.raises(DerivedObjectError, match="TID 1500"):
        open_object(tmp_path / "ct", tmp_path / "sr", kind="SR")
    # a by-reference loop in the content tree: read, or refused with a message; never a hang
    save(build_sr(sources, volume, [(m.to_dict(), evaluate(m, volume))]), tmp_path / "sr2.dcm")
    ds2 = pydicom.dcmread(tmp_path / "sr2.dcm")
    loop = Dataset()
    loop.RelationshipType = "HAS PROPERTIES"
    loop.ReferencedContentItemIdentifier = [1, 1]
    ds2.ContentSequence[-1].ContentSequence.append(loop)
    save(ds2, tmp_path / "sr2" / "sr.dcm")
    try:
        _, _, _, opened = open_object(tmp_path / "ct", tmp_path / "sr2", kind="SR")
        assert len(opened.measurements) == 1
    except DerivedObjectError as e:
        assert "SR" in str(e)
