"""A real Orthanc (Debian ``orthanc`` + DICOMweb + GDCM plugins) on 127.0.0.1 and free ports,
started once for the PACS tests and stopped by its PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing_outside_ci, require_tool

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo" / "lung2"
PLUGINS = Path("/usr/share/orthanc/plugins")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    http_port: int
    dicom_port: int
    aet: str
    move_port: int  # where Orthanc sends C-MOVE results for AE MEDVIEW
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def node(self, **kw: object):  # type: ignore[no-untyped-def]
        from medview.pacs.nodes import PacsNode

        args: dict[str, object] = {
            "name": "orthanc",
            "ae_title": self.aet,
            "host": "127.0.0.1",
            "port": self.dicom_port,
            "our_ae_title": "MEDVIEW",
            "dicomweb_url": self.url + "/dicom-web",
        }
        args.update(kw)
        return PacsNode(**args)  # type: ignore[arg-type]

    def rest(self, path: str, data: bytes | None = None, method: str | None = None) -> object:
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def series_ids(self) -> set[str]:
        return set(self.rest("/series"))  # type: ignore[arg-type]

    def delete_series(self, ids: set[str]) -> None:
        """Take series a test stored out of the archive again: the archive is shared by the
        session's tests, which count the demo study's series and instances."""
        for i in ids:
            self.rest(f"/series/{i}", method="DELETE")

    def find_instance(self, sop_instance_uid: str) -> list[str]:
        query = {"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid}}
        return self.rest("/tools/find", json.dumps(query).encode())  # type: ignore[return-value]


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    exe = require_tool("Orthanc")
    plugins = [PLUGINS / "libOrthancDicomWeb.so", PLUGINS / "libOrthancGdcm.so"]
    if not all(p.exists() for p in plugins):
        missing_outside_ci("Orthanc plugins (orthanc-dicomweb, orthanc-gdcm) not installed")
    folder = tmp_path_factory.mktemp("orthanc")
    o = Orthanc(free_port(), free_port(), "ORTHANC", free_port(), folder)
    config = {
        "Name": "MedView test archive",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": o.http_port,
        "DicomPort": o.dicom_port,
        "DicomAet": o.aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": {
            "medview": ["MEDVIEW", "127.0.0.1", o.move_port],
            "dcmtk": ["DCMTK", "127.0.0.1", 104],  # findscu, the independent peer
        },
        "Plugins": [str(p) for p in plugins],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([exe, str(folder / "config.json")], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            o.rest("/system")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(
                    f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
    try:
        yield o
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def demo_in_orthanc(orthanc: Orthanc) -> str:
    """The demo CT stored into Orthanc by our C-STORE; its Study Instance UID."""
    import pydicom

    from medview.pacs import service

    result = service.send(orthanc.node(), [DEMO])
    assert result.sent == 61 and not result.failed
    return str(pydicom.dcmread(sorted(DEMO.iterdir())[0], stop_before_pixels=True).StudyInstanceUID)
