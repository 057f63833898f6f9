"""The series of a cohort: from folders (files, zips, DICOMDIRs), from a search of the study
database, or from a PACS query (retrieved later, by the worker that processes the series).
Each series the pipeline selects becomes a `WorkItem` with a pseudonymous key: an HMAC of its
UIDs under a secret kept in the output folder, so the key is stable across runs (``--resume``)
and says nothing of the patient to anyone without that folder."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from medview.batch.pipeline import Pipeline
from medview.core.records import SeriesRecord


@dataclass(frozen=True)
class PacsSource:
    """A series to retrieve from a configured node when it is processed."""

    node: str
    study_uid: str
    series_uid: str
    method: str = "get"  # get, move or wado (`medview.pacs.service.RETRIEVE_METHODS`)


@dataclass(frozen=True)
class WorkItem:
    """One series of the cohort. Identifiers travel with it for the risk models' feature rows
    and ``--include-identifiers``; the results table carries only ``key`` otherwise."""

    key: str
    modality: str
    images: int
    series: SeriesRecord | None = None
    pacs: PacsSource | None = None
    study_uid: str = ""
    series_uid: str = ""
    accession: str = ""
    patient_id: str = ""
    source: str = ""  # the first file, or node name


@dataclass
class Cohort:
    items: list[WorkItem] = field(default_factory=list)
    not_selected: int = 0  # series the pipeline's rules did not take
    not_volumes: int = 0  # single images, videos: no model runs on them
    unreadable: int = 0  # files the index skipped (not DICOM, broken)

    keys: set[str] = field(default_factory=set, repr=False)

    def add(self, item: WorkItem) -> None:
        """``item``, unless the same series is already in (two input folders, a folder and
        the database): each series is one row."""
        if item.key not in self.keys:
            self.keys.add(item.key)
            self.items.append(item)

    def merged(self, other: Cohort) -> Cohort:
        for item in other.items:
            self.add(item)
        self.not_selected += other.not_selected
        self.not_volumes += other.not_volumes
        self.unreadable += other.unreadable
        return self


def secret_of(folder: Path) -> bytes:
    """The output folder's key secret, made once (owner-only) and kept with the results."""
    path = folder / ".medview-batch" / "secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return bytes.fromhex(value)


def series_key(secret: bytes, series_uid: str, volume_label: str = "") -> str:
    digest = hmac.new(secret, f"{series_uid}\x00{volume_label}".encode(), hashlib.sha256)
    return digest.hexdigest()[:24]


def from_series(
    series: Iterable[SeriesRecord], pipeline: Pipeline, secret: bytes, cohort: Cohort
) -> Cohort:
    for s in series:
        first = s.first
        if s.kind != "volume":
            cohort.not_volumes += 1
            continue
        images = len(s.slices) or len(s.instances)
        if not pipeline.takes(s.modality, s.description, images, first.body_part):
            cohort.not_selected += 1
            continue
        cohort.add(
            WorkItem(
                series_key(secret, s.series_uid, s.volume_label),
                s.modality,
                images,
                series=s,
                study_uid=s.study_uid,
                series_uid=s.series_uid,
                accession=first.accession_number,
                patient_id=s.patient_id,
                source=first.path,
            )
        )
    return cohort


def from_folders(
    paths: Iterable[str | os.PathLike[str]], pipeline: Pipeline, secret: bytes, extract_dir: Path
) -> Cohort:
    """Index ``paths`` (zips are extracted into ``extract_dir``, which must outlive the job)."""
    from medview.io.scan import scan

    extract_dir.mkdir(parents=True, exist_ok=True)
    found = scan(list(paths), extract_dir=str(extract_dir))
    cohort = Cohort(unreadable=len(found.skipped))
    return from_series(found.series, pipeline, secret, cohort)


def from_database(
    pipeline: Pipeline,
    secret: bytes,
    *,
    database: str | None = None,
    text: str = "",
    modality: str = "",
    date_from: str = "",
    date_to: str = "",
) -> Cohort:
    """The series of the studies a study-database search finds (the window's search)."""
    from medview.io.database import StudyDatabase

    cohort = Cohort()
    with StudyDatabase(database) as db:
        for study in db.search(text, modality=modality, date_from=date_from, date_to=date_to):
            from_series(db.study_series(study.study_uid), pipeline, secret, cohort)
    return cohort


def from_pacs(
    node_name: str,
    keys: object,
    pipeline: Pipeline,
    secret: bytes,
    *,
    method: str = "get",
) -> Cohort:
    """The series of the studies a C-FIND (or QIDO-RS) query finds; selected by the series'
    own modality, description and image count, retrieved later by the workers."""
    from dataclasses import replace

    from medview.core.errors import PacsError
    from medview.pacs.nodes import load_nodes
    from medview.pacs.query import QueryKeys, SeriesMatch
    from medview.pacs.service import search

    nodes = {n.name: n for n in load_nodes()}
    if node_name not in nodes:
        raise PacsError(f"no PACS node named {node_name!r} is configured")
    node = nodes[node_name]
    assert isinstance(keys, QueryKeys)
    cohort = Cohort()
    for study in search(node, keys, "study"):
        for s in search(node, replace(QueryKeys(), study_uid=study.study_uid), "series"):
            assert isinstance(s, SeriesMatch)
            images = s.instance_count or 0
            if not pipeline.takes(s.modality, s.description, images or 10**6, s.body_part):
                cohort.not_selected += 1
                continue
            cohort.add(
                WorkItem(
                    series_key(secret, s.series_uid),
                    s.modality,
                    images,
                    pacs=PacsSource(node_name, s.study_uid, s.series_uid, method),
                    study_uid=s.study_uid,
                    series_uid=s.series_uid,
                    accession=getattr(study, "accession", ""),
                    patient_id=getattr(study, "patient_id", ""),
                    source=node_name,
                )
            )
    return cohort
