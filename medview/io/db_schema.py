"""The study database's schema, migration by migration, and the rows its queries answer with."""

from __future__ import annotations

from dataclasses import dataclass

from medview.core.records import SkippedFile

SCHEMA_VERSION = 10

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL,
        patient_name TEXT NOT NULL,
        birth_date TEXT NOT NULL DEFAULT '',
        sex TEXT NOT NULL DEFAULT '',
        UNIQUE (patient_id, patient_name)
    );
    CREATE TABLE studies (
        study_uid TEXT PRIMARY KEY,
        patient INTEGER NOT NULL REFERENCES patients(id),
        study_date TEXT NOT NULL DEFAULT '',
        study_time TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        accession TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE series (
        series_uid TEXT PRIMARY KEY,
        study_uid TEXT NOT NULL REFERENCES studies(study_uid),
        modality TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        series_number INTEGER
    );
    CREATE TABLE instances (
        path TEXT PRIMARY KEY,
        sop_instance_uid TEXT NOT NULL,
        series_uid TEXT NOT NULL REFERENCES series(series_uid),
        file_size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX instances_series ON instances(series_uid);
    CREATE INDEX studies_patient ON studies(patient);
    CREATE INDEX series_study ON series(study_uid);
    """,
    2: """
    ALTER TABLE instances ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
    CREATE TABLE series_warnings (
        series_key TEXT NOT NULL,
        series_uid TEXT NOT NULL,
        warning TEXT NOT NULL
    );
    CREATE INDEX series_warnings_uid ON series_warnings(series_uid);
    CREATE INDEX patients_name ON patients(patient_name);
    CREATE INDEX studies_date ON studies(study_date);
    """,
    3: """
    CREATE TABLE measurements (
        series_key TEXT NOT NULL,
        id TEXT NOT NULL,
        position INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (series_key, id)
    );
    """,
    4: """
    CREATE TABLE stacks (
        key TEXT PRIMARY KEY,
        series_uid TEXT NOT NULL,
        position INTEGER NOT NULL,
        slices INTEGER NOT NULL,
        shape TEXT NOT NULL,
        kind TEXT NOT NULL,
        description TEXT NOT NULL,
        modality TEXT NOT NULL,
        series_number INTEGER
    );
    CREATE INDEX stacks_series ON stacks(series_uid);
    """,
    5: """
    CREATE TABLE risk_results (
        study_uid TEXT NOT NULL,
        model_id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (study_uid, model_id)
    );
    """,
    6: """
    CREATE INDEX instances_sop ON instances(sop_instance_uid);
    """,
    7: """
    CREATE TABLE ai_results (
        series_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        arrays BLOB NOT NULL,
        PRIMARY KEY (series_key, kind)
    );
    """,
    # the volume label of one volume of a 4-D series in its own column (version 7 kept it
    # at the end of the description, " [volume 3 of 10 (...)]": moved out here)
    8: """
    ALTER TABLE stacks ADD COLUMN volume TEXT NOT NULL DEFAULT '';
    UPDATE stacks
       SET volume = substr(description, instr(description, ' [volume ') + 2,
                           length(description) - instr(description, ' [volume ') - 2),
           description = substr(description, 1, instr(description, ' [volume ') - 1)
     WHERE instr(description, ' [volume ') > 0 AND description LIKE '%]';
    """,
    # SEG, RTSTRUCT and SR objects, indexed beside the series they reference
    9: """
    CREATE TABLE derived (
        sop_instance_uid TEXT PRIMARY KEY,
        study_uid TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX derived_study ON derived(study_uid);
    """,
    # the reader's report, one per study
    10: """
    CREATE TABLE reports (
        study_uid TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    """,
}


@dataclass(frozen=True)
class StudyRow:
    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str
    accession: str
    modalities: tuple[str, ...]
    series_count: int
    instance_count: int
    missing_count: int


@dataclass(frozen=True)
class StackRow:
    """Summary of one assembled stack, read without parsing instance records (browser)."""

    key: str
    series_uid: str
    slices: int
    shape: tuple[int, int, int]
    kind: str
    description: str
    modality: str
    series_number: int | None
    warnings: tuple[str, ...]
    volume: str = ""  # one volume of a 4-D series: "volume 3 of 10 (...)"


@dataclass(frozen=True)
class ImportResult:
    """What an import indexed: instance count, skipped files, and the Series Instance UIDs
    seen, in the order they were first met."""

    count: int
    skipped: list[SkippedFile]
    series_uids: list[str]


@dataclass(frozen=True)
class RescanReport:
    checked: int
    missing: list[str]
    changed: list[str]
    restored: list[str]
