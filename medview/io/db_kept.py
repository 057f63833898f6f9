"""What a reading keeps in the study database: measurements and AI results with their series,
risk results and the report with their study (a mixin of `StudyDatabase`)."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np


class KeptStore:
    _conn: sqlite3.Connection
    _lock: threading.RLock

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def save_measurements(self, series_key: str, items: Iterable[dict[str, object]]) -> None:
        """Replace the stored measurements of one series (plain dicts, stored as JSON)."""
        with self._tx() as c:
            c.execute("DELETE FROM measurements WHERE series_key=?", (series_key,))
            c.executemany(
                "INSERT INTO measurements VALUES (?,?,?,?)",
                [(series_key, str(d["id"]), i, json.dumps(d)) for i, d in enumerate(items)],
            )

    def load_measurements(self, series_key: str) -> list[dict[str, object]]:
        rows = self._conn.execute(
            "SELECT data FROM measurements WHERE series_key=? ORDER BY position", (series_key,)
        )
        return [json.loads(r[0]) for r in rows]

    def save_risk_result(self, study_uid: str, model_id: str, data: dict[str, object]) -> None:
        """Keep a risk-panel result (inputs, their origins and the prediction) with a study:
        the latest one per model."""
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO risk_results VALUES (?,?,?)",
                (study_uid, model_id, json.dumps(data)),
            )

    def risk_results(self, study_uid: str) -> dict[str, dict[str, object]]:
        """The kept risk results of a study, by model id (what reports include)."""
        rows = self._conn.execute(
            "SELECT model_id, data FROM risk_results WHERE study_uid=? ORDER BY model_id",
            (study_uid,),
        )
        return {r[0]: json.loads(r[1]) for r in rows}

    def save_ai_result(
        self, series_key: str, kind: str, data: dict[str, object], arrays: dict[str, np.ndarray]
    ) -> None:
        """Keep the latest AI result of one kind ("segmentation", "classification") with a
        series: its description as JSON and its images (label map, heat map) as one
        compressed ``.npz`` blob, written in one transaction (a crash keeps the old one)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO ai_results VALUES (?,?,?,?)",
                (series_key, kind, json.dumps(data), buffer.getvalue()),
            )

    def ai_results(
        self, series_key: str
    ) -> dict[str, tuple[dict[str, object], dict[str, np.ndarray]]]:
        """The kept AI results of a series, by kind: (description, images)."""
        out = {}
        rows = self._conn.execute(
            "SELECT kind, data, arrays FROM ai_results WHERE series_key=?", (series_key,)
        )
        for kind, data, blob in rows.fetchall():
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            out[kind] = (json.loads(data), arrays)
        return out

    def forget_ai_result(self, series_key: str, kind: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM ai_results WHERE series_key=? AND kind=?", (series_key, kind))

    def save_report(self, study_uid: str, data: dict[str, Any]) -> None:
        """Keep a study's report (`medview.report.model.Report` as a dict): the latest."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO reports VALUES (?,?)", (study_uid, json.dumps(data)))

    def report(self, study_uid: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT data FROM reports WHERE study_uid=?", (study_uid,)
        ).fetchone()
        return json.loads(row[0]) if row else None
