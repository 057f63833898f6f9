"""The local study database: embedded SQLite in the data folder.

Tables: patients, studies, series, instances (one row per file, with the full header record as
JSON so a series can be loaded without re-reading headers) and series_warnings. Files are
referenced where they are (no copy). Re-importing a file is idempotent (keyed by path); a
re-scan marks files that disappeared or changed. The schema carries a version number and is
migrated forward step by step on open.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from medview.core.errors import DatabaseError
from medview.core.paths import data_dir
from medview.core.records import DerivedRecord, InstanceRecord, SeriesRecord
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.io.assemble import assemble_series
from medview.io.db_kept import KeptStore
from medview.io.db_schema import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    ImportResult,
    RescanReport,
    StackRow,
    StudyRow,
)


def default_path() -> Path:
    return data_dir() / "studies.sqlite"


class StudyDatabase(KeptStore):
    """One SQLite connection, safe to share between the GUI thread and one worker."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.RLock()
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise DatabaseError(f"cannot open the study database: {e}", path=self.path) from e

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StudyDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise DatabaseError(
                f"database schema {current} is newer than this MedView "
                f"({SCHEMA_VERSION}); upgrade MedView",
                path=self.path,
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._tx() as c:
                c.executescript(
                    "BEGIN;" + _MIGRATIONS[version] + f"PRAGMA user_version={version}; COMMIT;"
                )
        if 0 < current < 4:  # stack summaries arrived in v4: build them for existing series
            self._refresh_warnings(
                [r[0] for r in self._conn.execute("SELECT series_uid FROM series")]
            )

    # -- writing ------------------------------------------------------------------------------
    def add_records(self, records: Iterable[InstanceRecord]) -> int:
        """Insert or update instance records (idempotent per file path). Returns the count."""
        n = 0
        touched: set[str] = set()
        with self._tx() as c:
            for r in records:
                pid = self._patient(
                    c, r.patient_id, r.patient_name, r.patient_birth_date, r.patient_sex
                )
                c.execute(
                    "INSERT OR IGNORE INTO studies (study_uid, patient, study_date,"
                    " study_time, description, accession) VALUES (?,?,?,?,?,?)",
                    (
                        r.study_uid,
                        pid,
                        r.study_date,
                        r.study_time,
                        r.study_description,
                        r.accession_number,
                    ),
                )
                c.execute(
                    "INSERT OR IGNORE INTO series (series_uid, study_uid, modality,"
                    " description, series_number) VALUES (?,?,?,?,?)",
                    (r.series_uid, r.study_uid, r.modality, r.series_description, r.series_number),
                )
                c.execute(
                    "INSERT OR REPLACE INTO instances (path, sop_instance_uid, series_uid,"
                    " file_size, mtime_ns, record, status) VALUES (?,?,?,?,?,?, 'ok')",
                    (
                        r.path,
                        r.sop_instance_uid,
                        r.series_uid,
                        r.file_size,
                        r.mtime_ns,
                        json.dumps(r.to_dict()),
                    ),
                )
                touched.add(r.series_uid)
                n += 1
        self._refresh_warnings(touched)
        return n

    @staticmethod
    def _patient(c: sqlite3.Connection, pid: str, name: str, birth: str, sex: str) -> int:
        c.execute(
            "INSERT OR IGNORE INTO patients (patient_id, patient_name, birth_date, sex)"
            " VALUES (?,?,?,?)",
            (pid, name, birth, sex),
        )
        row = c.execute(
            "SELECT id FROM patients WHERE patient_id=? AND patient_name=?", (pid, name)
        ).fetchone()
        return int(row[0])

    def add_derived(self, objects: Iterable[DerivedRecord]) -> int:
        """Index SEG, RTSTRUCT and SR objects with their study (one row per SOP instance)."""
        n = 0
        with self._tx() as c:
            for o in objects:
                pid = self._patient(c, o.patient_id, o.patient_name, "", "")
                c.execute(
                    "INSERT OR IGNORE INTO studies (study_uid, patient, study_date, description,"
                    " study_time, accession) VALUES (?,?,?,?,'','')",
                    (o.study_uid, pid, o.study_date, o.study_description),
                )
                c.execute(
                    "INSERT OR REPLACE INTO derived VALUES (?,?,?,?,?)",
                    (o.sop_instance_uid, o.study_uid, o.kind, o.path, json.dumps(o.to_dict())),
                )
                n += 1
        return n

    def derived_objects(self, study_uid: str) -> list[DerivedRecord]:
        """The study's SEG, RTSTRUCT and SR objects, by kind and date."""
        rows = self._conn.execute(
            "SELECT record FROM derived WHERE study_uid=? ORDER BY kind, path", (study_uid,)
        ).fetchall()
        return [DerivedRecord.from_dict(json.loads(r[0])) for r in rows]

    def import_paths(
        self,
        inputs: Sequence[str | os.PathLike[str]],
        *,
        cancel: CancelToken = NEVER_CANCELLED,
        progress: Progress = no_progress,
    ) -> ImportResult:
        """Index ``inputs`` into the database batch by batch. Zips are extracted into the data
        folder (``archives/``) so their files stay readable."""
        from medview.io.scan import index_inputs

        archives = self.path.parent / "archives"
        archives.mkdir(exist_ok=True)
        count, skipped = 0, []
        series: dict[str, None] = {}
        for batch in index_inputs(
            inputs, extract_dir=str(archives), cancel=cancel, progress=progress
        ):
            count += self.add_records(batch.records) + self.add_derived(batch.derived)
            skipped.extend(batch.skipped)
            series.update((r.series_uid, None) for r in batch.records)
        return ImportResult(count, skipped, list(series))

    def _refresh_warnings(self, series_uids: Iterable[str]) -> None:
        """Re-assemble the given series and store their stack summaries and warnings, so that
        browsing needs no instance records (this runs in the importing worker)."""
        for uid in series_uids:
            stacks = self.series(uid)
            with self._tx() as c:
                c.execute("DELETE FROM series_warnings WHERE series_uid=?", (uid,))
                c.executemany(
                    "INSERT INTO series_warnings VALUES (?,?,?)",
                    [(s.key, uid, w) for s in stacks for w in s.warnings],
                )
                c.execute("DELETE FROM stacks WHERE series_uid=?", (uid,))
                c.executemany(
                    "INSERT INTO stacks VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            s.key,
                            uid,
                            i,
                            len(s.slices),
                            json.dumps(list(s.shape)),
                            s.kind,
                            s.description,
                            s.modality,
                            s.series_number,
                            s.volume_label,
                        )
                        for i, s in enumerate(stacks)
                    ],
                )

    def stack_rows(self, study_uid: str) -> list[StackRow]:
        """The stacks of a study, in series order, from the summary table (fast)."""
        rows = self._conn.execute(
            "SELECT k.key, k.series_uid, k.slices, k.shape, k.kind, k.description, k.modality,"
            " k.series_number, k.volume FROM stacks k JOIN series s ON k.series_uid=s.series_uid"
            " WHERE s.study_uid=? ORDER BY COALESCE(k.series_number, 1 << 30), k.series_uid,"
            " k.position",
            (study_uid,),
        ).fetchall()
        warnings: dict[str, list[str]] = {}
        for key, w in self._conn.execute(
            "SELECT w.series_key, w.warning FROM series_warnings w JOIN series s"
            " ON w.series_uid=s.series_uid WHERE s.study_uid=?",
            (study_uid,),
        ):
            warnings.setdefault(key, []).append(w)
        return [
            StackRow(
                r[0],
                r[1],
                r[2],
                tuple(json.loads(r[3])),
                r[4],
                r[5],
                r[6],
                r[7],
                tuple(warnings.get(r[0], ())),
                r[8],
            )
            for r in rows
        ]

    def stack(self, series_uid: str, key: str) -> SeriesRecord | None:
        """One assembled stack by its key (parses the instance records: call off the GUI)."""
        return next((s for s in self.series(series_uid) if s.key == key), None)

    def rescan(self) -> RescanReport:
        """Check every indexed file still exists unchanged; mark missing/changed ones."""
        rows = self._conn.execute(
            "SELECT path, file_size, mtime_ns, status FROM instances"
        ).fetchall()
        missing, changed, restored = [], [], []
        for path, size, mtime, status in rows:
            try:
                st = os.stat(path)
            except OSError:
                missing.append(path)
                continue
            if st.st_size != size or st.st_mtime_ns != mtime:
                changed.append(path)
            elif status != "ok":
                restored.append(path)
        with self._tx() as c:
            c.executemany(
                "UPDATE instances SET status='missing' WHERE path=?", [(p,) for p in missing]
            )
            c.executemany(
                "UPDATE instances SET status='changed' WHERE path=?", [(p,) for p in changed]
            )
            c.executemany("UPDATE instances SET status='ok' WHERE path=?", [(p,) for p in restored])
        affected = missing + changed + restored
        if affected:
            marks = ",".join("?" * len(affected))
            uids = [
                r[0]
                for r in self._conn.execute(
                    f"SELECT DISTINCT series_uid FROM instances WHERE path IN ({marks})", affected
                )
            ]
            self._refresh_warnings(uids)
        return RescanReport(len(rows), missing, changed, restored)

    def forget_missing(self) -> int:
        with self._tx() as c:
            n = c.execute("DELETE FROM instances WHERE status='missing'").rowcount
            c.execute(
                "DELETE FROM series WHERE series_uid NOT IN "
                "(SELECT DISTINCT series_uid FROM instances)"
            )
            c.execute(
                "DELETE FROM studies WHERE study_uid NOT IN (SELECT DISTINCT study_uid FROM series)"
            )
            c.execute("DELETE FROM patients WHERE id NOT IN (SELECT DISTINCT patient FROM studies)")
            c.execute(
                "DELETE FROM risk_results WHERE study_uid NOT IN (SELECT study_uid FROM studies)"
            )
        return int(n)

    # -- reading ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        q = self._conn.execute
        return {
            t: int(q(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
            for t in ("patients", "studies", "series", "instances")
        }

    def search(
        self,
        text: str = "",
        *,
        modality: str = "",
        date_from: str = "",
        date_to: str = "",
    ) -> list[StudyRow]:
        """Studies whose patient name/ID, description or accession contain ``text``
        (case-insensitive), optionally filtered by modality and study date (YYYYMMDD)."""
        where, args = ["1=1"], []
        if text:
            like = f"%{text.replace('%', '').replace('_', '')}%"
            where.append(
                "(p.patient_name LIKE ? OR p.patient_id LIKE ? OR st.description LIKE ?"
                " OR st.accession LIKE ? OR EXISTS (SELECT 1 FROM series s2 WHERE "
                "s2.study_uid=st.study_uid AND s2.description LIKE ?))"
            )
            args += [like] * 5
        if modality:
            where.append(
                "EXISTS (SELECT 1 FROM series s3 WHERE s3.study_uid=st.study_uid AND s3.modality=?)"
            )
            args.append(modality.upper())
        if date_from:
            where.append("st.study_date >= ?")
            args.append(date_from)
        if date_to:
            where.append("st.study_date <= ?")
            args.append(date_to)
        sql = f"""
        SELECT st.study_uid, p.patient_id, p.patient_name, st.study_date, st.description,
               st.accession,
               (SELECT GROUP_CONCAT(DISTINCT s.modality) FROM series s
                 WHERE s.study_uid=st.study_uid),
               (SELECT COUNT(*) FROM series s WHERE s.study_uid=st.study_uid),
               (SELECT COUNT(*) FROM instances i JOIN series s ON i.series_uid=s.series_uid
                 WHERE s.study_uid=st.study_uid),
               (SELECT COUNT(*) FROM instances i JOIN series s ON i.series_uid=s.series_uid
                 WHERE s.study_uid=st.study_uid AND i.status!='ok')
        FROM studies st JOIN patients p ON st.patient=p.id
        WHERE {" AND ".join(where)}
        ORDER BY st.study_date DESC, p.patient_name"""
        return [
            StudyRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                tuple(sorted(filter(None, (r[6] or "").split(",")))),
                r[7],
                r[8],
                r[9],
            )
            for r in self._conn.execute(sql, args)
        ]

    def paths_of_instances(self, sop_instance_uids: Iterable[str]) -> dict[str, list[str]]:
        """Indexed files (present ones) of each SOP Instance UID asked about."""
        uids = list(dict.fromkeys(sop_instance_uids))
        found: dict[str, list[str]] = {}
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for uid, path in self._conn.execute(
                "SELECT sop_instance_uid, path FROM instances "
                f"WHERE status='ok' AND sop_instance_uid IN ({marks})",
                chunk,
            ):
                found.setdefault(uid, []).append(path)
        return found

    def records(self, series_uid: str, include_missing: bool = False) -> list[InstanceRecord]:
        sql = "SELECT record FROM instances WHERE series_uid=?"
        if not include_missing:
            sql += " AND status='ok'"
        return [
            InstanceRecord.from_dict(json.loads(r[0]))
            for r in self._conn.execute(sql, (series_uid,))
        ]

    def series(self, series_uid: str) -> list[SeriesRecord]:
        """The assembled stacks of one Series Instance UID (ready for `load_series`)."""
        return assemble_series(self.records(series_uid))

    def study_series(self, study_uid: str) -> list[SeriesRecord]:
        uids = [
            r[0]
            for r in self._conn.execute(
                "SELECT series_uid FROM series WHERE study_uid=? ORDER BY series_number",
                (study_uid,),
            )
        ]
        return [s for uid in uids for s in self.series(uid)]

    def warnings(self, series_uid: str) -> list[str]:
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT warning FROM series_warnings WHERE series_uid=?", (series_uid,)
            )
        ]
