"""The job's journal: every finished series is committed to a SQLite file in the output folder
the moment its row arrives, so a killed driver loses no finished result and ``--resume`` knows
what is done (same key, same pipeline hash). The results table (Parquet, and CSV beside it) is
written from the journal, atomically, at the end of a run and whenever it is asked for."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medview.core.atomic import atomic_path

# the columns every table starts with, in this order; the rest follow sorted
FIRST = (
    "key",
    "status",
    "error",
    "warnings",
    "pipeline",
    "patient_id",
    "accession",
    "study_uid",
    "series_uid",
    "source",
    "modality",
    "images",
    "shape",
    "spacing_mm",
)


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "journal.sqlite"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed row survives a power cut
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, pipeline TEXT NOT NULL, "
            "status TEXT NOT NULL, row TEXT NOT NULL, committed REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS runs (started REAL, pipeline TEXT, series INTEGER, "
            "skipped INTEGER, computed INTEGER)"
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self, pipeline: str) -> set[str]:
        """Keys finished (not failed) under ``pipeline``."""
        q = "SELECT key FROM rows WHERE pipeline=? AND status='done'"
        return {r[0] for r in self._db.execute(q, (pipeline,))}

    def count(self, pipeline: str | None = None) -> int:
        if pipeline is None:
            return int(self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
        q = "SELECT COUNT(*) FROM rows WHERE pipeline=?"
        return int(self._db.execute(q, (pipeline,)).fetchone()[0])

    def commit(self, row: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?)",
            (row["key"], row["pipeline"], row["status"], json.dumps(row), time.time()),
        )

    def start_run(self, pipeline: str, series: int, skipped: int) -> int:
        cur = self._db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, 0)", (time.time(), pipeline, series, skipped)
        )
        return int(cur.lastrowid or 0)

    def computed(self, run: int, n: int) -> None:
        self._db.execute("UPDATE runs SET computed=? WHERE rowid=?", (n, run))

    def rows(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        if pipeline is None:
            cur = self._db.execute("SELECT row FROM rows ORDER BY committed")
        else:
            q = "SELECT row FROM rows WHERE pipeline=? ORDER BY committed"
            cur = self._db.execute(q, (pipeline,))
        return [json.loads(r[0]) for r in cur]


def columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r))
    return [c for c in FIRST if c in seen] + sorted(c for c in seen if c not in FIRST)


def write_table(rows: list[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    """``results.parquet`` and ``results.csv``: one row per series, the same columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = columns(rows)
    data = {}
    for c in names:
        values = [r.get(c) for r in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds == {int, float} or kinds == {float}:
            values = [None if v is None else float(v) for v in values]
        elif len(kinds) > 1:  # a column of mixed kinds is text, not a failed table
            values = [None if v is None else str(v) for v in values]
        data[c] = values
    table = pa.table(data) if names else pa.table({"key": pa.array([], pa.string())})
    parquet, text = folder / "results.parquet", folder / "results.csv"
    with atomic_path(parquet, ".parquet") as tmp:
        pq.write_table(table, tmp)
    with atomic_path(text, ".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=names or ["key"])
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r[c] for c in names})
    return parquet, text
