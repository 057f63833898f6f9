"""The PACS in the window, against Orthanc: a node configured in the dialog (password to the
keyring, not the settings file), Test connection, search, series list, retrieve with the series
opening in the viewer, send back, and the listener switch (off by default, local only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.pacs.conftest import DEMO, Orthanc
from tests.ui.conftest import wait_for_volume, window  # noqa: F401 - the window fixture


@pytest.fixture
def memory_keyring():  # type: ignore[no-untyped-def]
    import keyring
    from keyring.backend import KeyringBackend

    class Backend(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.items.pop((service, username), None)

    before = keyring.get_keyring()
    backend = Backend()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(before)


def test_query_retrieve_and_send_from_the_window(
    qtbot,
    window,  # noqa: F811
    orthanc: Orthanc,
    demo_in_orthanc: str,
    medview_home: Path,
    memory_keyring,
) -> None:  # type: ignore[no-untyped-def]
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.pacs import nodes as node_settings
    from medview.ui.pacs_panel import PacsNodesDialog

    panel = window.pacs_panel
    assert not panel.listen.isChecked() and panel.listener is None  # off by default

    # the nodes dialog: fill in, Test connection, OK
    dialog = PacsNodesDialog(window.runner, window)
    qtbot.addWidget(dialog)
    dialog._add()
    dialog.name.setText("orthanc")
    dialog.aet.setText(orthanc.aet)
    dialog.port.setValue(orthanc.dicom_port)
    dialog.url.setText(orthanc.url + "/dicom-web")
    dialog.user.setText("reader")
    dialog.password.setText("s3cret-pw")
    dialog.test_connection()
    qtbot.waitUntil(lambda: "C-ECHO ok" in dialog.status.text(), timeout=20000)
    dialog.accept()
    settings_text = (medview_home / "pacs_nodes.json").read_text()
    assert "s3cret-pw" not in settings_text
    assert json.loads(settings_text)["nodes"][0]["ae_title"] == orthanc.aet
    assert ("MedView PACS", "orthanc|reader") in memory_keyring.items
    node_settings._session_passwords.clear()
    assert node_settings.load_nodes()[0].password == "s3cret-pw"  # back from the keyring
    assert "s3cret-pw" not in repr(node_settings.load_nodes()[0])

    # search and list
    panel.reload_nodes()
    panel.patient_name.setText("demo")  # a trailing * is added; matching ignores case
    panel.search()
    qtbot.waitUntil(lambda: panel.study_table.rowCount() == 1, timeout=20000)
    assert panel.study_table.item(0, 1).text() == "DEMO-LUNG2"
    # the study as the archive holds it now: other tests of this session's archive may have
    # sent their SEG, SR or RT structure set into it
    query = {"Level": "Study", "Query": {"PatientID": "DEMO-LUNG2"}}
    (study,) = orthanc.rest("/tools/find", json.dumps(query).encode())  # type: ignore[misc]
    held = len(orthanc.rest(f"/studies/{study}/instances"))  # type: ignore[arg-type]
    assert held >= 61 and panel.study_table.item(0, 6).text() == str(held)
    panel.study_table.selectRow(0)
    qtbot.waitUntil(lambda: panel.series_table.rowCount() >= 1, timeout=20000)
    modalities = [
        panel.series_table.item(r, 1).text() for r in range(panel.series_table.rowCount())
    ]
    assert modalities.count("CT") == 1, modalities

    # retrieve: the series lands in the database and opens
    panel.series_table.selectRow(modalities.index("CT"))
    panel.method.setCurrentIndex(0)  # C-GET
    panel.retrieve()
    qtbot.waitUntil(lambda: window.controller.state is not None, timeout=60000)
    wait_for_volume(qtbot, window)
    shown = window.controller.state.volume
    demo = load_series(scan([str(DEMO)]).series[0])
    assert np.array_equal(np.asarray(shown.array), np.asarray(demo.array))
    assert all(
        Path(i.path).resolve().is_relative_to((medview_home / "received").resolve())
        for i in window.current_series.instances
    )

    # send the shown series back
    window.notices.clear()
    task = window.send_to_pacs("orthanc", "series")
    assert task is not None
    qtbot.waitUntil(lambda: not window.runner.running, timeout=60000)
    texts = [window.notices.item(i).text() for i in range(window.notices.count())]
    assert any(t.startswith("Sent 61 instance(s) to orthanc") for t in texts), texts

    # the listener: on for configured nodes only, this computer only
    panel.listen.setChecked(True)
    assert panel.listener is not None and panel.listener.settings.host == "127.0.0.1"
    assert "this computer only" in panel.listen_status.text()
    assert [p.ae_title for p in panel.listener.settings.peers] == [orthanc.aet]
    panel.listen.setChecked(False)
    assert panel.listener is None
