"""PACS transfers with a real Orthanc on this machine, the demo chest CT (61 instances, JPEG-LS
lossless, 9.6 MiB): MedView's C-GET (hardened store, atomic writes, then indexing) against a
bare pynetdicom C-GET in the same process and dcmtk's getscu; WADO-RS; C-STORE against
dcmtk's storescu."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.benchmarks.common import median_time, print_table
from tests.conftest import require_tool
from tests.pacs.conftest import DEMO, Orthanc, demo_in_orthanc, orthanc  # noqa: F401

pytestmark = pytest.mark.benchmark


def _bare_c_get(o: Orthanc, study_uid: str, out: Path) -> int:
    """pynetdicom's documented C-GET recipe: write each received data set as it comes."""
    from pydicom import Dataset
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        CTImageStorage,
        StudyRootQueryRetrieveInformationModelGet,
    )

    n = 0

    def on_store(event):  # type: ignore[no-untyped-def]
        nonlocal n
        n += 1
        with open(out / f"{n}.dcm", "wb") as f:
            f.write(event.encoded_dataset())
        return 0

    ae = AE(ae_title="MEDVIEW")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    assoc = ae.associate(
        "127.0.0.1",
        o.dicom_port,
        ae_title=o.aet,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    for _ in assoc.send_c_get(ds, StudyRootQueryRetrieveInformationModelGet):
        pass
    assoc.release()
    return n


def test_bench_pacs(orthanc: Orthanc, demo_in_orthanc: str) -> None:  # noqa: F811
    from medview.pacs import service
    from medview.pacs.store import ReceivedStore

    getscu, storescu = require_tool("getscu"), require_tool("storescu")
    node = orthanc.node()

    def medview_get(index: bool) -> None:
        with tempfile.TemporaryDirectory() as d:
            r = service.retrieve(
                node,
                demo_in_orthanc,
                method="get",
                store=ReceivedStore(d),
                index=index,
                database=str(Path(d) / "db.sqlite"),
            )
            assert len(r.files) == 61

    def medview_wado() -> None:
        with tempfile.TemporaryDirectory() as d:
            r = service.retrieve(
                node, demo_in_orthanc, method="wado", store=ReceivedStore(d), index=False
            )
            assert len(r.files) == 61

    def bare_get() -> None:
        with tempfile.TemporaryDirectory() as d:
            assert _bare_c_get(orthanc, demo_in_orthanc, Path(d)) == 61

    def dcmtk_get() -> None:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(
                [getscu, "-aet", "MEDVIEW", "-aec", orthanc.aet, "-S", "-od", d,
                 "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={demo_in_orthanc}",
                 "127.0.0.1", str(orthanc.dicom_port)],
                check=True, capture_output=True,
            )  # fmt: skip
            assert len(list(Path(d).iterdir())) == 61

    def medview_send() -> None:
        assert service.send(node, [DEMO]).sent == 61

    def dcmtk_send() -> None:
        subprocess.run(
            [storescu, "-xt", "-aet", "MEDVIEW", "-aec", orthanc.aet, "+sd", "127.0.0.1",
             str(orthanc.dicom_port), str(DEMO)],
            check=True, capture_output=True,
        )  # fmt: skip

    rows = []
    t_bare = median_time(bare_get)
    t_dcmtk = median_time(dcmtk_get)
    for name, fn in (
        ("C-GET, written (no index)", lambda: medview_get(False)),
        ("C-GET, written and indexed", lambda: medview_get(True)),
    ):
        t = median_time(fn)
        rows.append(
            [
                name,
                f"{t:.3f} s",
                f"{t_bare:.3f} s",
                f"{t_bare / t:.2f}x",
                f"{t_dcmtk:.3f} s",
                f"{t_dcmtk / t:.2f}x",
            ]
        )
    t = median_time(medview_wado)
    rows.append(["WADO-RS, written (no index)", f"{t:.3f} s", "-", "-", "-", "-"])
    t_send, t_send_dcmtk = median_time(medview_send), median_time(dcmtk_send)
    rows.append(
        [
            "C-STORE 61 instances",
            f"{t_send:.3f} s",
            "-",
            "-",
            f"{t_send_dcmtk:.3f} s",
            f"{t_send_dcmtk / t_send:.2f}x",
        ]
    )
    time.sleep(0)
    print_table(
        "PACS transfers, demo CT (61 instances), Orthanc on 127.0.0.1 (medians of 5)",
        rows,
        ["task", "MedView", "bare pynetdicom", "speed vs bare", "dcmtk", "speed vs dcmtk"],
    )
