"""Against a real Orthanc: echo; store the demo study; find it at study and series level;
retrieve it by C-GET, by C-MOVE into our listener and by WADO-RS, voxel for voxel; send a SEG
and SR back and find them in Orthanc's REST API; QIDO filters; dcmtk as an independent peer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import require_tool
from tests.export.conftest import make_study
from tests.pacs.conftest import DEMO, Orthanc, free_port


def _volume_of(paths: list[Path]):  # type: ignore[no-untyped-def]
    from medview.io.loader import load_series
    from medview.io.scan import scan

    series = scan([str(p) for p in paths]).series
    assert len(series) == 1
    return load_series(series[0])


@pytest.fixture(scope="module")
def demo_volume():  # type: ignore[no-untyped-def]
    return _volume_of([DEMO])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medview.cli", "pacs", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _dimse(o: Orthanc) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(o.dicom_port), "--aet", o.aet]


def test_echo(orthanc: Orthanc) -> None:
    from medview.core.errors import PacsError
    from medview.pacs import dimse

    r = _cli("echo", *_dimse(orthanc), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    assert dimse.echo(orthanc.node()).status == 0
    # nothing listens on a fresh port: a clear error, exit 1
    with pytest.raises(PacsError, match=r"no association|cannot reach"):
        dimse.echo(orthanc.node(port=free_port()))
    r = _cli("echo", "--port", str(free_port()), "--aet", "NOBODY")
    assert r.returncode == 1 and "medview pacs:" in r.stderr and "Traceback" not in r.stderr


def test_find_study_and_series(orthanc: Orthanc, demo_in_orthanc: str) -> None:
    from medview.pacs import dimse
    from medview.pacs.query import QueryKeys

    studies = dimse.find(orthanc.node(), QueryKeys(patient_id="DEMO-LUNG2"), "study")
    assert [s.study_uid for s in studies] == [demo_in_orthanc]
    s = studies[0]
    assert s.patient_name == "Demo^ChestCT" and s.modalities == "CT"
    assert (s.series_count, s.instance_count) == (1, 61)
    assert dimse.find(orthanc.node(), QueryKeys(patient_name="Demo*"), "study")
    assert not dimse.find(orthanc.node(), QueryKeys(patient_id="NOBODY"), "study")
    series = dimse.find(orthanc.node(), QueryKeys(study_uid=demo_in_orthanc), "series")
    assert len(series) == 1 and series[0].modality == "CT" and series[0].instance_count == 61
    # the same through the CLI
    r = _cli(
        "find", *_dimse(orthanc), "--level", "series", "--study-uid", demo_in_orthanc, "--json"
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["matches"]
    assert rows[0]["series_uid"] == series[0].series_uid


def _check_retrieved(files: list[Path], demo_volume, home: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.io.database import StudyDatabase
    from medview.io.loader import load_series

    assert len(files) == 61
    store = (home / "received").resolve()
    assert all(p.resolve().is_relative_to(store) for p in files)
    # indexed: the series opens from the study database like a local one
    with StudyDatabase() as db:
        (stack,) = db.series(demo_volume.series_uid)
        assert {Path(i.path) for i in stack.instances} == set(files)
        got = load_series(stack)
    assert got.shape == demo_volume.shape
    assert np.array_equal(np.asarray(got.array), np.asarray(demo_volume.array))
    assert np.allclose(got.geometry.affine, demo_volume.geometry.affine)


def test_retrieve_by_c_get(
    orthanc: Orthanc, demo_in_orthanc: str, demo_volume, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.pacs import service

    seen: list[tuple[int, int]] = []
    r = service.retrieve(
        orthanc.node(),
        demo_in_orthanc,
        method="get",
        progress=lambda d, t, m="": seen.append((d, t)),
    )
    assert r.method == "C-GET" and r.completed == 61 and r.failed == 0
    assert seen and seen[-1][0] == 61
    # the instances arrive as stored (JPEG-LS), not transcoded by the archive
    ts = pydicom.dcmread(r.files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert ts == pydicom.uid.JPEGLSLossless
    _check_retrieved(r.files, demo_volume, medview_home)
    # a second retrieve keeps one copy of each instance
    again = service.retrieve(orthanc.node(), demo_in_orthanc, method="get")
    assert again.completed == 61 and again.files == []
    assert len(list((medview_home / "received").rglob("*.dcm"))) == 61


def test_retrieve_by_c_move_into_our_listener(
    orthanc: Orthanc, demo_in_orthanc: str, demo_volume, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    r = _cli(
        "get",
        *_dimse(orthanc),
        "--study-uid",
        demo_in_orthanc,
        "--method",
        "move",
        "--listen-port",
        str(orthanc.move_port),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == "C-MOVE" and out["completed"] == 61
    _check_retrieved([Path(p) for p in out["files"]], demo_volume, medview_home)


def test_retrieve_by_wado_rs(
    orthanc: Orthanc, demo_in_orthanc: str, demo_volume, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.pacs import service

    node = orthanc.node(ae_title="")  # DICOMweb only
    r = service.retrieve(node, demo_in_orthanc, method="wado")
    assert r.method == "WADO-RS"
    _check_retrieved(r.files, demo_volume, medview_home)


def test_send_seg_and_sr_and_find_them_in_orthanc(orthanc: Orthanc, tmp_path: Path) -> None:
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent
    from medview.pacs import service

    study = make_study(tmp_path / "study")
    content = ExportContent(segmentation=study.label_map, measurements=study.measurements)
    bundle = export_bundle(study.series, study.volume, content, tmp_path / "out")
    seg, sr = bundle.path / "seg.dcm", bundle.path / "sr.dcm"
    # the source series over DIMSE, the SEG over DIMSE, the SR over STOW-RS
    assert service.send(orthanc.node(), [study.folder]).sent == len(study.series.instances)
    dimse = service.send(orthanc.node(), [seg])
    web = service.send(orthanc.node(), [sr], web=True)
    assert dimse.sent == 1 and web.sent == 1 and not dimse.failed and not web.failed
    for path in (seg, sr):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        (found,) = orthanc.find_instance(str(ds.SOPInstanceUID))
        tags = orthanc.rest(f"/instances/{found}/simplified-tags")
        assert tags["SOPClassUID"] == str(ds.SOPClassUID)  # type: ignore[index]
        assert tags["StudyInstanceUID"] == str(ds.StudyInstanceUID)  # type: ignore[index]
    # the SEG comes back by C-GET byte for byte in its pixel data
    r = service.retrieve(
        orthanc.node(),
        str(pydicom.dcmread(seg).StudyInstanceUID),
        str(pydicom.dcmread(seg).SeriesInstanceUID),
        method="get",
        index=False,
    )
    (back,) = r.files
    assert pydicom.dcmread(back).PixelData == pydicom.dcmread(seg).PixelData


def test_qido_filters(orthanc: Orthanc, demo_in_orthanc: str) -> None:
    from medview.pacs import dicomweb
    from medview.pacs.query import QueryKeys

    node = orthanc.node()

    def uids(**keys: str) -> list[str]:
        return [s.study_uid for s in dicomweb.qido(node, QueryKeys(**keys), "study")]

    assert demo_in_orthanc in uids(patient_id="DEMO-LUNG2")
    assert demo_in_orthanc in uids(patient_name="Demo*")
    assert demo_in_orthanc in uids(study_date="19990101-20001231")
    assert demo_in_orthanc not in uids(study_date="20010101-")
    assert demo_in_orthanc in uids(modality="CT")
    assert demo_in_orthanc not in uids(modality="MR")
    assert demo_in_orthanc not in uids(patient_id="SOMEONE-ELSE")
    (study,) = [s for s in dicomweb.qido(node, QueryKeys(patient_id="DEMO-LUNG2"), "study")]
    assert study.patient_name == "Demo^ChestCT" and study.instance_count == 61
    series = dicomweb.qido(node, QueryKeys(study_uid=demo_in_orthanc, modality="CT"), "series")
    assert len(series) == 1 and series[0].instance_count == 61
    assert not dicomweb.qido(node, QueryKeys(study_uid=demo_in_orthanc, modality="MR"), "series")


def test_dcmtk_findscu_sees_what_we_stored(orthanc: Orthanc, demo_in_orthanc: str) -> None:
    """An independent peer confirms our C-STORE: dcmtk's findscu asks Orthanc."""
    findscu = require_tool("findscu")
    r = subprocess.run(
        [
            findscu, "-S", "-aet", "DCMTK", "-aec", orthanc.aet,
            "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={demo_in_orthanc}",
            "-k", "NumberOfSeriesRelatedInstances", "-k", "Modality",
            "127.0.0.1", str(orthanc.dicom_port),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "[61]" in r.stderr + r.stdout and "[CT]" in r.stderr + r.stdout


def test_cancel_stops_a_retrieve_and_keeps_only_complete_files(
    orthanc: Orthanc, demo_in_orthanc: str, medview_home: Path
) -> None:
    import time

    from medview.core.tasks import CancelToken
    from medview.pacs import service

    cancel = CancelToken()

    def progress(done: int, total: int, message: str = "") -> None:
        if done >= 5:
            cancel.cancel()

    t0 = time.monotonic()
    r = service.retrieve(
        orthanc.node(), demo_in_orthanc, method="get", cancel=cancel, progress=progress
    )
    assert time.monotonic() - t0 < 5
    assert 5 <= len(r.files) < 61
    on_disk = [p for p in (medview_home / "received").rglob("*") if p.is_file()]
    assert sorted(on_disk) == sorted(r.files)  # no partial or temporary file left
    for p in r.files:
        assert len(pydicom.dcmread(p).PixelData) > 0  # each one complete


def test_the_signed_report_goes_to_the_pacs_and_comes_back(
    orthanc: Orthanc, tmp_path: Path
) -> None:
    """The report's Encapsulated PDF (over DIMSE) and TID 2000 SR (over STOW-RS): Orthanc
    stores both in the study, and returns them byte for byte in their content."""
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent
    from medview.pacs import service
    from medview.report.model import Report

    study = make_study(tmp_path / "study")
    report = Report()
    report.set_section("findings", "Lesion in the liver. Ünïcode and שלום kept.")
    report.set_section("impression", "1. Liver lesion.")
    report.sign("Dr Ada Reader", "MD", {}, organization="MedView Hospital")
    content = ExportContent(
        segmentation=study.label_map, measurements=study.measurements, report=report
    )
    bundle = export_bundle(study.series, study.volume, content, tmp_path / "out")
    pdf, sr = bundle.path / "report-pdf.dcm", bundle.path / "report-sr.dcm"
    dimse = service.send(orthanc.node(), [pdf])
    web = service.send(orthanc.node(), [sr], web=True)
    assert dimse.sent == 1 and web.sent == 1 and not dimse.failed and not web.failed
    study_uid = str(pydicom.dcmread(sr, stop_before_pixels=True).StudyInstanceUID)
    for path in (pdf, sr):
        ds = pydicom.dcmread(path)
        (found,) = orthanc.find_instance(str(ds.SOPInstanceUID))
        tags = orthanc.rest(f"/instances/{found}/simplified-tags")
        assert tags["SOPClassUID"] == str(ds.SOPClassUID)  # type: ignore[index]
        assert tags["StudyInstanceUID"] == study_uid  # type: ignore[index]
        r = service.retrieve(
            orthanc.node(), study_uid, str(ds.SeriesInstanceUID), method="get", index=False
        )
        (back,) = r.files
        got = pydicom.dcmread(back)
        if path == pdf:
            assert got.EncapsulatedDocument == ds.EncapsulatedDocument
        else:
            texts = [
                c.TextValue
                for item in got.ContentSequence
                if item.ValueType == "CONTAINER"
                for c in item.ContentSequence
                if c.ValueType == "TEXT"
            ]
            assert "Lesion in the liver. Ünïcode and שלום kept." in texts
            assert got.VerificationFlag == "VERIFIED"
