"""The study database: idempotent import, re-scan, search, migrations, sources untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from medview.core.errors import DatabaseError
from medview.core.tasks import CancelToken
from medview.io.database import _MIGRATIONS, SCHEMA_VERSION, StudyDatabase
from medview.io.loader import load_series
from tests.conftest import DEMO, write_ct


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_default_location_follows_medview_home(medview_home: Path) -> None:
    with StudyDatabase() as db:
        assert db.path.parent == medview_home
        assert db.schema_version == SCHEMA_VERSION


def test_import_is_idempotent_and_sources_untouched(tmp_path: Path) -> None:
    before = tree_hashes(DEMO)
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        first = db.import_paths([DEMO])
        counts = db.counts()
        second = db.import_paths([DEMO])
        assert first.count == second.count == 242 and not first.skipped
        assert len(first.series_uids) == 2
        assert db.counts() == counts == {"patients": 2, "studies": 2, "series": 2, "instances": 242}
        ct = db.search("chest")[0]
        stacks = db.study_series(ct.study_uid)
        vol = load_series(stacks[0])
        assert vol.shape == (61, 512, 512)
    assert tree_hashes(DEMO) == before


def test_progress_batches_and_cancel(tmp_path: Path) -> None:
    write_ct(tmp_path / "ct", n=30)
    seen: list[tuple[int, int]] = []
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.import_paths([tmp_path / "ct"], progress=lambda d, t, m="": seen.append((d, t)))
        assert seen[-1] == (30, 30) and seen[0][0] == 0
        cancel = CancelToken()
        cancel.cancel()
        from medview.core.errors import CancelledError

        with pytest.raises(CancelledError):
            db.import_paths([tmp_path / "ct"], cancel=cancel)


def test_search_filters(tmp_path: Path) -> None:
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.import_paths([DEMO])
        write_ct(tmp_path / "x", n=2, patient_name="Smith^Anna", patient_id="PID-777")
        db.import_paths([tmp_path / "x"])
        assert [r.patient_name for r in db.search("smith")] == ["Smith^Anna"]
        assert [r.patient_id for r in db.search("777")] == ["PID-777"]
        assert {r.patient_id for r in db.search(modality="MR")} == {"DEMO-COLIN27"}
        assert len(db.search("T1 1 mm")) == 1  # series description
        assert db.search(date_from="20000101", date_to="20000101")
        assert db.search(date_from="20010101") == []
        row = db.search("smith")[0]
        assert row.series_count == 1 and row.instance_count == 2 and row.modalities == ("CT",)


def test_rescan_detects_missing_and_changed(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "ct", n=5)
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.import_paths([tmp_path / "ct"])
        files[0].unlink()
        with open(files[1], "ab") as f:
            f.write(b"\0\0")
        report = db.rescan()
        assert report.missing == [str(files[0])] and report.changed == [str(files[1])]
        assert db.search()[0].missing_count == 2
        uid = db.search()[0].study_uid
        assert len(db.study_series(uid)[0].slices) == 3  # only intact files are loaded
        assert db.forget_missing() == 1


def test_warnings_are_stored(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "ct", n=6)
    files[3].unlink()
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.import_paths([tmp_path / "ct"])
        uid = db.search()[0].study_uid
        series_uid = db.study_series(uid)[0].series_uid
        assert any("missing slices" in w for w in db.warnings(series_uid))


def test_migrates_a_version_1_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATIONS[1] + "PRAGMA user_version=1;")
    conn.execute("INSERT INTO patients (patient_id, patient_name) VALUES ('P1', 'Old^Row')")
    conn.commit()
    conn.close()
    with StudyDatabase(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        assert db.counts()["patients"] == 1
        files = write_ct(tmp_path / "ct", n=2)
        db.import_paths([files[0].parent])
        assert db.counts()["instances"] == 2


def test_version_7_volume_labels_move_to_their_column(tmp_path: Path) -> None:
    """Version 7 kept a 4-D volume's label at the end of its stack's description; version 8
    gives it its own column and the description back."""
    path = tmp_path / "v7.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("".join(_MIGRATIONS[v] for v in range(1, 8)) + "PRAGMA user_version=7;")
    conn.executemany(
        "INSERT INTO stacks VALUES (?,?,?,?,?,?,?,?,?)",
        [
            ("u#2", "u", 1, 15, "[15, 64, 64]", "volume",
             "EPI [run 2] [volume 2 of 10 (b=1000, dir 1/9)]", "MR", 4),
            ("v", "v", 0, 30, "[30, 64, 64]", "volume", "T1 [sag]", "MR", 5),
        ],
    )  # fmt: skip
    conn.commit()
    conn.close()
    with StudyDatabase(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        rows = dict(
            db._conn.execute("SELECT key, description || '|' || volume FROM stacks").fetchall()
        )
    assert rows == {"u#2": "EPI [run 2]|volume 2 of 10 (b=1000, dir 1/9)", "v": "T1 [sag]|"}


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(DatabaseError):
        StudyDatabase(path)


def test_records_round_trip_exactly(tmp_path: Path) -> None:
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.import_paths([DEMO / "lung2"])
        from medview.io.scan import scan

        direct = scan([DEMO / "lung2"]).series[0]
        stored = db.series(direct.series_uid)[0]
        assert sorted(stored.instances, key=lambda r: r.path) == sorted(
            direct.instances, key=lambda r: r.path
        )
        assert np.array_equal(load_series(stored).array, load_series(direct).array)


def test_stack_summaries_match_assembly(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "ct", n=6)
    files[3].unlink()  # a warning to carry
    with StudyDatabase(tmp_path / "db.sqlite") as db:
        db.import_paths([tmp_path / "ct", DEMO / "lung2"])
        for study in db.search():
            rows = db.stack_rows(study.study_uid)
            stacks = db.study_series(study.study_uid)
            assert [r.key for r in rows] == [s.key for s in stacks]
            for r, s in zip(rows, stacks, strict=True):
                assert (r.slices, r.shape, r.warnings) == (len(s.slices), s.shape, s.warnings)
                assert db.stack(r.series_uid, r.key) == s
        files[0].unlink()
        db.rescan()
        uid = db.search("synthetic")[0].study_uid
        assert db.stack_rows(uid)[0].slices == 4  # summary follows the rescan
