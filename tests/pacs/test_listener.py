"""The storage listener against good and bad peers: dcmtk's storescu as an independent sender;
unknown AE titles and hosts refused; a sender killed mid-transfer leaves nothing indexed; a
declared 4 GiB PDU, a burst of malformed PDUs and a silent peer leave it alive with bounded
memory; values such as ``../`` in UIDs or names never choose where a file goes."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import require_tool, write_ct
from tests.pacs.conftest import free_port

TIMEOUT = 1.5  # the listener's idle/association timeout in these tests


def _indexed_instances() -> int:
    from medview.io.database import StudyDatabase

    with StudyDatabase() as db:
        return db.counts()["instances"]


@pytest.fixture
def listener(medview_home: Path) -> Iterator:  # type: ignore[type-arg]
    from medview.pacs.listener import ListenerSettings, Peer, StorageListener
    from medview.pacs.service import index_files

    settings = ListenerSettings(
        ae_title="MEDVIEW",
        port=free_port(),
        peers=(Peer("SENDER", "127.0.0.1"), Peer("STORESCU", "127.0.0.1")),
        timeout=TIMEOUT,
    )
    lst = StorageListener(settings, on_received=index_files)
    lst.start()
    try:
        yield lst
    finally:
        lst.stop()


def _node(port: int, our: str = "SENDER"):  # type: ignore[no-untyped-def]
    from medview.pacs.nodes import PacsNode

    return PacsNode(name="listener", ae_title="MEDVIEW", port=port, our_ae_title=our)


def _wait(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _store_files(home: Path) -> list[Path]:
    return sorted((home / "received").rglob("*.dcm"))


def test_defaults_are_off_and_local() -> None:
    from medview.core.errors import PacsError
    from medview.pacs.listener import ListenerSettings, StorageListener

    assert ListenerSettings().host == "127.0.0.1"
    with pytest.raises(PacsError, match="at least one configured peer"):
        StorageListener(ListenerSettings())


def test_storescu_sends_a_series_that_opens_like_a_local_one(
    listener, tmp_path: Path, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.io.database import StudyDatabase
    from medview.io.loader import load_series
    from medview.io.scan import scan

    storescu = require_tool("storescu")
    files = write_ct(tmp_path / "ct", n=12, transfer_syntax="jpeg-ls")
    r = subprocess.run(
        [storescu, "-xt", "-aet", "STORESCU", "-aec", "MEDVIEW", "127.0.0.1", str(listener.port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert _wait(lambda: len(listener.received) == 12)
    original = load_series(scan([str(tmp_path / "ct")]).series[0])
    with StudyDatabase() as db:
        (stack,) = db.series(original.series_uid)
        got = load_series(stack)
    assert np.array_equal(np.asarray(got.array), np.asarray(original.array))
    # names come from the clock and uuid4, never from the data
    for p in _store_files(medview_home):
        assert len(p.stem) == 32 and p.parent.parent == medview_home / "received"


def test_unknown_calling_ae_is_rejected(listener, tmp_path: Path, medview_home: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.core.errors import PacsError
    from medview.pacs import dimse, send

    storescu = require_tool("storescu")
    files = write_ct(tmp_path / "ct", n=2)
    r = subprocess.run(
        [storescu, "-aet", "INTRUDER", "-aec", "MEDVIEW", "127.0.0.1", str(listener.port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "Rejected" in r.stderr + r.stdout
    with pytest.raises(PacsError, match="rejected"):
        send.c_store(_node(listener.port, our="INTRUDER"), files)
    assert _store_files(medview_home) == [] and _indexed_instances() == 0
    assert dimse.echo(_node(listener.port)).ok  # a configured peer still gets through


def test_configured_ae_from_another_host_is_refused(
    listener, tmp_path: Path, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from pynetdicom import AE

    files = write_ct(tmp_path / "ct", n=2)
    ae = AE(ae_title="SENDER")
    ae.acse_timeout = 5
    ae.add_requested_context(pydicom.dcmread(files[0]).SOPClassUID)
    assoc = ae.associate(
        "127.0.0.1", listener.port, ae_title="MEDVIEW", bind_address=("127.0.0.2", 0)
    )
    assert not assoc.is_established
    assert _store_files(medview_home) == []


SLOW_SENDER = textwrap.dedent(
    """
    import sys, time
    import pydicom
    from pynetdicom import AE
    from pynetdicom.transport import AssociationSocket

    send = AssociationSocket.send
    def slow(self, data):
        time.sleep(0.05)
        send(self, data)
    AssociationSocket.send = slow

    ds = pydicom.dcmread(sys.argv[1])
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", int(sys.argv[2]), ae_title="MEDVIEW", max_pdu=16384)
    assert assoc.is_established
    print("sending", flush=True)
    assoc.send_c_store(ds)
    print("finished", flush=True)
    """
)


def test_sender_killed_mid_transfer_leaves_nothing_indexed(
    listener, tmp_path: Path, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.pacs import dimse

    # one 8 MiB image sent in 16 KiB PDUs, 50 ms apart: about 25 s if left alone
    big = write_ct(tmp_path / "big", n=1, rows=2048, cols=2048)[0]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SENDER, str(big), str(listener.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "sending"
    time.sleep(1.0)  # some of the data set has arrived
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(TIMEOUT + 1.0)
    assert _store_files(medview_home) == []
    assert not [p for p in (medview_home / "received").rglob("*") if p.is_file()]
    assert _indexed_instances() == 0 and listener.received == []
    assert dimse.echo(_node(listener.port)).ok


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def test_pdu_abuse_and_silent_peers_leave_the_listener_alive(listener, medview_home: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.pacs import dimse

    rss0 = _rss()
    # 1. an A-ASSOCIATE-RQ that declares 4 GiB and then streams data
    s = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
    s.sendall(struct.pack(">BBL", 0x01, 0, 0xFFFFFFFF))
    sent = 0
    t0 = time.monotonic()
    try:
        while sent < 256 * 1024 * 1024 and time.monotonic() - t0 < 10:
            s.sendall(b"\0" * 65536)
            sent += 65536
    except OSError:
        pass  # the listener closed the connection: what we want
    s.close()
    assert sent < 64 * 1024 * 1024, "the listener kept reading a 4 GiB PDU"
    # 2. a burst of malformed PDUs: unknown types, truncated headers, garbage
    rng = np.random.default_rng(0)
    for i in range(60):
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as c:
            kind = i % 3
            if kind == 0:
                c.sendall(struct.pack(">BBL", 0x09, 0, 16) + bytes(16))
            elif kind == 1:
                c.sendall(b"\x01\x00\x00")
            else:
                c.sendall(rng.integers(0, 256, 512, dtype=np.uint8).tobytes())
    # 3. peers that connect and never send (nor finish a PDU)
    silent = [socket.create_connection(("127.0.0.1", listener.port), timeout=10) for _ in range(3)]
    silent[0].sendall(struct.pack(">BBL", 0x01, 0, 1000) + b"\0" * 10)  # stalls mid-PDU
    t0 = time.monotonic()
    for c in silent:
        c.settimeout(TIMEOUT * 6)
        while c.recv(1024):  # an A-ABORT or nothing, then EOF (a timeout raises)
            pass
        c.close()
    assert time.monotonic() - t0 < TIMEOUT * 6, "a silent peer was not cut off"
    assert _rss() - rss0 < 64 * 1024 * 1024
    assert dimse.echo(_node(listener.port)).ok
    assert _store_files(medview_home) == [] and _indexed_instances() == 0


def test_path_values_never_choose_where_files_go(
    listener, tmp_path: Path, medview_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from medview.pacs import send

    canary = tmp_path / "canary"
    canary.mkdir()
    files = write_ct(tmp_path / "ct", n=2)
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.SOPInstanceUID = f"../../canary/{i}"
        ds.SeriesInstanceUID = str(canary / "series")
        ds.StudyInstanceUID = "/etc/passwd"
        ds.PatientName = "../../../canary/x"
        ds.PatientID = str(canary)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(f, enforce_file_format=True)
    result = send.c_store(_node(listener.port), files)
    assert result.sent == 2
    assert _wait(lambda: len(listener.received) == 2)
    assert list(canary.iterdir()) == []
    stored = _store_files(medview_home)
    assert len(stored) == 2
    root = (medview_home / "received").resolve()
    for p in stored:
        assert p.resolve().is_relative_to(root)
        assert "canary" not in str(p) and "passwd" not in str(p)
    # the instance itself arrived intact, values and all
    uids = {str(pydicom.dcmread(p).SOPInstanceUID) for p in stored}
    assert uids == {"../../canary/0", "../../canary/1"}
