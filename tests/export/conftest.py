"""A small oblique CT study whose identifying attributes hold unique sentinel strings, a label
map on its grid (two labelled segments, one empty) and measurements in two views."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.conftest import write_ct

SENTINELS = {
    "PatientName": "Sentinelname^Qzx",
    "PatientID": "SENTINELPID7731",
    "InstitutionName": "SENTINELINSTITUTION",
    "InstitutionAddress": "SENTINELADDRESS",
    "ReferringPhysicianName": "Sentinelref^Doc",
    "PerformingPhysicianName": "Sentinelperf^Doc",
    "OperatorsName": "Sentineloper^Tech",
    "AccessionNumber": "SENTINELACC",
    "StudyDescription": "SENTINELSTUDYDESC",
    "SeriesDescription": "SENTINELSERIESDESC",
    "StationName": "SENTINELSTATION",
    "DeviceSerialNumber": "SENTINELSERIAL",
    "StudyID": "SENTINELSID",
    "OtherPatientIDs": "SENTINELOTHERID",
    "PatientAddress": "SENTINELPATADDR",
    "PatientBirthDate": "19230817",
}
NESTED = "Sentinelnested^Name"
PRIVATE = "SENTINELPRIVATE"
META = "SENTINELAET"


@dataclass
class Study:
    folder: Path
    series: Any
    volume: Any
    label_map: Any
    measurements: list[dict[str, Any]]
    uids: set[str]


def rotation(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def make_study(folder: Path, n: int = 10, rows: int = 40, cols: int = 48) -> Study:
    from medview.core.results import Provenance, Segment, Segmentation
    from medview.core.volume import Volume
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    paths = write_ct(
        folder, n=n, rows=rows, cols=cols, spacing=(0.8, 0.9, 2.5), direction=rotation(20)
    )
    uids: set[str] = set()
    for p in paths:
        ds = pydicom.dcmread(p)
        for k, v in SENTINELS.items():
            setattr(ds, k, v)
        item = Dataset()
        item.PatientName = NESTED
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        ds.ReferencedImageSequence = Sequence([item])
        ds.add_new(0x00091010, "LO", PRIVATE)
        ds.file_meta.SourceApplicationEntityTitle = META
        ds.save_as(p)
        uids |= {ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID}
        uids.add(ds.FrameOfReferenceUID)
    series = scan([str(folder)]).series[0]
    volume = load_series(series)
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:6, 5:20, 6:22] = 1
    labels[4:9, 22:35, 25:40] = 3
    label_map = Segmentation(
        Volume(labels, volume.geometry, volume.frame_of_reference_uid, volume.series_uid),
        (
            Segment(1, "liver", (220, 120, 60), "10200004", "Liver"),
            Segment(2, "spleen", (0, 0, 255), "78961009", "Spleen"),  # empty
            Segment(3, "tumour", (0, 220, 0), finding=True),
        ),
        provenance=Provenance(
            "test-model", "Test model", "1.2.0", "ab" * 32, "cpu", 2.5, "2026-11-24T10:00:00"
        ),
    )
    g = volume.geometry

    def p(z: float, y: float, x: float) -> tuple[float, float, float]:
        return tuple(float(v) for v in g.index_to_lps(np.array([z, y, x])))  # type: ignore[return-value]

    measurements = [
        Measurement(Kind.RULER, View.AXIAL, (p(4, 5, 5), p(4, 30, 40))).to_dict(),
        Measurement(Kind.ELLIPSE, View.AXIAL, (p(5, 22, 25), p(5, 34, 39)), "lesion").to_dict(),
        Measurement(Kind.RECTANGLE, View.AXIAL, (p(3, 6, 6), p(3, 18, 20))).to_dict(),
        Measurement(Kind.ANGLE, View.AXIAL, (p(4, 5, 5), p(4, 20, 20), p(4, 5, 35))).to_dict(),
    ]
    return Study(folder, series, volume, label_map, measurements, uids)


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return make_study(tmp_path / "study")


def cli_args(study: Study, tmp_path: Path, out: str, *extra: str) -> list[str]:
    """``medview export`` arguments with the study's label map and measurements as files."""
    import json

    from medview.export.nifti import write_nifti

    write_nifti(study.label_map.labels, tmp_path / "labels.nii.gz")
    (tmp_path / "m.json").write_text(json.dumps(study.measurements))
    return [
        "export",
        str(study.folder),
        "--seg",
        str(tmp_path / "labels.nii.gz"),
        "--measurements",
        str(tmp_path / "m.json"),
        "--out",
        str(tmp_path / out),
        *extra,
    ]
