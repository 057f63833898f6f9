"""What happens to one series of a cohort, in three steps that may run in three processes on
three machines: `load` (a CPU task: retrieve when it comes from a PACS, read, assemble),
`Models.run` (inference, in a worker that loaded each model once and holds it) and `finish`
(a CPU task: figures, risk, the per-series files, the send back, the results row).

The steps are the session's own operations (`StudySession.read`, `compute`, `export`), so a
series gives the same label map and figures here as in ``medview run-model`` and the window.
A step never raises for a bad series: it returns a `Failed` that travels on and becomes the
series' error row, and the cohort goes on. Transient failures (I/O, the network) are retried
a bounded number of times first.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.batch.inputs import WorkItem
from medview.batch.pipeline import Pipeline
from medview.core.errors import MedviewError, PacsError
from medview.core.notices import RESEARCH_USE
from medview.core.records import SeriesRecord
from medview.core.results import Classification, Segmentation
from medview.core.volume import Volume

log = logging.getLogger(__name__)
RETRIES = 2  # a transient failure is tried this many times more
TRANSIENT = (OSError, TimeoutError, ConnectionError, PacsError)
WORK = ".medview-batch"


@dataclass
class Failed:
    """A series that could not be done: where and why (one line a reader can act on)."""

    key: str
    stage: str
    error: str
    attempts: int = 1


@dataclass
class Loaded:
    item: WorkItem
    series: SeriesRecord
    volume: Volume
    facts: Any  # medview.risk.study.StudyFacts, for the risk models
    seconds: float
    attempts: int = 1


@dataclass
class Ran:
    results: list[tuple[str, Segmentation | Classification | None, str]]  # (model, result, error)
    seconds: float
    where: str = ""  # the worker: node id and process


def where_am_i() -> str:
    """The Ray node (when under Ray) and process that ran a step, for the results table."""
    try:
        import ray

        if ray.is_initialized():
            return f"{ray.get_runtime_context().get_node_id()[:12]}/{os.getpid()}"
    except ImportError:
        pass
    return f"local/{os.getpid()}"


def _reason(e: BaseException) -> str:
    text = str(e) if isinstance(e, MedviewError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split())[:500]


def load(item: WorkItem, out: Path) -> Loaded | Failed:
    """Read the series (retrieving it first when it lives on a PACS)."""
    from medview.session import StudySession

    t0 = time.perf_counter()
    for attempt in range(1, RETRIES + 2):
        try:
            series = item.series if item.series is not None else _retrieve(item, out)
            opened = StudySession().read(series)
            return Loaded(
                item, series, opened.volume, _facts(series), time.perf_counter() - t0, attempt
            )
        except TRANSIENT as e:
            if attempt > RETRIES:
                return Failed(item.key, "load", _reason(e), attempt)
            log.warning("series %s: %s; trying again", item.key, type(e).__name__)
            time.sleep(0.5 * attempt)
        except MedviewError as e:
            return Failed(item.key, "load", _reason(e), attempt)
        except Exception as e:  # a broken file must not stop the cohort: it is this row's error
            log.exception("series %s could not be loaded", item.key)
            return Failed(item.key, "load", _reason(e), attempt)
    raise AssertionError("unreachable")


def _retrieve(item: WorkItem, out: Path) -> SeriesRecord:
    from medview.io.scan import pick_series, scan
    from medview.pacs.nodes import load_nodes
    from medview.pacs.service import retrieve
    from medview.pacs.store import ReceivedStore

    assert item.pacs is not None
    nodes = {n.name: n for n in load_nodes()}
    if item.pacs.node not in nodes:
        raise MedviewError(f"no PACS node named {item.pacs.node!r} is configured here")
    folder = out / WORK / "retrieved" / item.key
    shutil.rmtree(folder, ignore_errors=True)  # a killed worker's partial retrieval
    retrieve(
        nodes[item.pacs.node],
        item.pacs.study_uid,
        item.pacs.series_uid,
        method=item.pacs.method,
        store=ReceivedStore(folder),
        index=False,
    )
    chosen = pick_series(scan([folder]).series, item.pacs.series_uid)
    if chosen is None:
        raise MedviewError("the PACS sent no readable image of this series")
    return chosen


def _facts(series: SeriesRecord) -> Any:
    from medview.risk.study import facts_from_file

    try:
        return facts_from_file(series.first.path)
    except (OSError, ValueError, MedviewError):
        return None


class Models:
    """The pipeline's models, each loaded once (weights verified) and held: one per worker."""

    def __init__(self, pipeline: Pipeline, *, device: str = "auto", threads: int = 0) -> None:
        from medview.inference.loading import load_model, set_threads
        from medview.inference.registry import find_model

        if threads:
            set_threads(threads)
        self.pipeline = pipeline
        self.device = device
        self.loaded = {}
        for step in pipeline.models:
            manifest = find_model(step.id)
            self.loaded[step.id] = (manifest, load_model(manifest))

    def run(self, loaded: Loaded | Failed) -> Ran | Failed:
        from medview.session import StudySession

        if isinstance(loaded, Failed):
            return loaded
        t0 = time.perf_counter()
        session = StudySession()
        out: list[tuple[str, Segmentation | Classification | None, str]] = []
        for step in self.pipeline.models:
            if not step.applies(loaded.volume.modality or loaded.item.modality):
                continue
            manifest, net = self.loaded[step.id]
            options: dict[str, Any] = {"network": net}
            if manifest.task != "classification":
                options["uncertainty"] = step.uncertainty
            try:
                result = session.compute(
                    manifest,
                    volume=loaded.volume,
                    series=loaded.series,
                    device=self.device,
                    anyway=step.run_anyway,
                    **options,
                )
                out.append((step.id, result, ""))
            except MedviewError as e:
                out.append((step.id, None, _reason(e)))
            except Exception as e:  # one model's internal error is this row's, not the cohort's
                log.exception("model %s failed on series %s", step.id, loaded.item.key)
                out.append((step.id, None, _reason(e)))
        return Ran(out, time.perf_counter() - t0, where_am_i())


@dataclass
class Finish:
    """Where the per-series files go and what the row may say."""

    out: Path
    pipeline_hash: str
    include_identifiers: bool = False
    risk_rows: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def finish(
    pipeline: Pipeline, job: Finish, loaded: Loaded | Failed, ran: Ran | Failed, item: WorkItem
) -> dict[str, Any]:
    """The series' results row, after writing its files (each atomically)."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"key": item.key, "pipeline": job.pipeline_hash}
    if job.include_identifiers:
        row |= {
            "patient_id": item.patient_id,
            "accession": item.accession,
            "study_uid": item.study_uid,
            "series_uid": item.series_uid,
            "source": item.source,
        }
    row |= {"modality": item.modality, "images": item.images}
    failed = loaded if isinstance(loaded, Failed) else ran if isinstance(ran, Failed) else None
    if failed is not None:
        return row | _end(
            "error", f"{failed.stage}: {failed.error}", [], t0, where_am_i(), failed.attempts
        )
    assert isinstance(loaded, Loaded) and isinstance(ran, Ran)
    row |= {
        "shape": "x".join(str(n) for n in loaded.volume.shape),
        "spacing_mm": "x".join(f"{v:.4g}" for v in loaded.volume.geometry.spacing),
        "load_s": round(loaded.seconds, 3),
        "infer_s": round(ran.seconds, 3),
        "research_use": RESEARCH_USE,
    }
    warnings = list(loaded.volume.warnings)
    errors = [f"{mid}: {err}" for mid, result, err in ran.results if result is None]
    try:
        row |= _figures(pipeline, job, loaded, ran, warnings)
    except MedviewError as e:
        errors.append(f"export: {_reason(e)}")
    except OSError as e:
        errors.append(f"export: {_reason(e)}")
    finally:
        if item.pacs is not None:  # the retrieved copy was needed until the export
            shutil.rmtree(job.out / WORK / "retrieved" / item.key, ignore_errors=True)
    status = "error" if errors else "done"
    return row | _end(status, "; ".join(errors), warnings, t0, ran.where, loaded.attempts)


def _end(
    status: str, error: str, warnings: list[str], t0: float, where: str, attempts: int
) -> dict[str, Any]:
    return {
        "status": status,
        "error": error,
        "warnings": "; ".join(dict.fromkeys(warnings)),
        "export_s": round(time.perf_counter() - t0, 3),
        "worker": where,
        "finisher": where_am_i(),
        "attempts": attempts,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
    }


def _figures(
    pipeline: Pipeline, job: Finish, loaded: Loaded, ran: Ran, warnings: list[str]
) -> dict[str, Any]:
    from medview.export.nifti import write_nifti
    from medview.export.summary import (
        classification_summary,
        segmentation_summary,
        write_summary,
    )
    from medview.risk.study import SegmentStat

    row: dict[str, Any] = {}
    folder = job.out / "series" / loaded.item.key
    segments = []
    for mid, result, _ in ran.results:
        if result is None:
            continue
        prov = result.provenance
        assert prov is not None
        row |= {
            f"{mid}:version": prov.version,
            f"{mid}:weights_sha256": prov.weights_sha256,
            f"{mid}:device": prov.device,
            f"{mid}:seconds": round(prov.seconds, 3),
        }
        warnings += [f"{mid}: {n}" for n in result.notes]
        if isinstance(result, Segmentation):
            summary = segmentation_summary(result, loaded.series, loaded.volume)
            for s in result.stats:
                row |= {
                    f"{mid}:{s.name}:voxels": s.voxels,
                    f"{mid}:{s.name}:volume_ml": round(s.volume_ml, 3),
                    f"{mid}:{s.name}:mean": s.mean,
                    f"{mid}:{s.name}:sd": s.sd,
                }
                segments.append(SegmentStat(s.name, s.volume_ml, s.mean))
        else:
            summary = classification_summary(result, loaded.series)
            row |= {f"{mid}:finding": result.finding}
            row |= {f"{mid}:probability": round(result.finding_probability, 6)}
            row |= {f"{mid}:p:{k}": round(v, 6) for k, v in result.probabilities.items()}
        if "summary" in pipeline.exports or "nifti" in pipeline.exports:
            (folder / mid).mkdir(parents=True, exist_ok=True)
        if "summary" in pipeline.exports:
            write_summary(folder / mid, summary)
        if "nifti" in pipeline.exports and isinstance(result, Segmentation):
            write_nifti(result.labels, folder / mid / "labels.nii.gz")
            if result.uncertainty is not None:
                write_nifti(result.uncertainty, folder / mid / "uncertainty.nii.gz")
    risks = _risk(pipeline, job, loaded, segments)
    warnings += [f"{k.rsplit(':', 1)[0]}: {v}" for k, v in risks.items() if k.endswith(":error")]
    row |= risks
    if "bundle" in pipeline.exports:
        row |= _bundle(pipeline, loaded, ran, folder, risks)
    if folder.is_dir():
        row["outputs"] = f"series/{loaded.item.key}"
    return row


def _risk(pipeline: Pipeline, job: Finish, loaded: Loaded, segments: list[Any]) -> dict[str, Any]:
    from medview.risk.predict import predict
    from medview.risk.registry import find_risk_model
    from medview.risk.study import prefill

    row: dict[str, Any] = {}
    item = loaded.item
    for step in pipeline.risk:
        model = find_risk_model(step.id)
        values: dict[str, object] = {
            k: v.value for k, v in prefill(model, loaded.facts, segments).values.items()
        }
        wanted = {"accession": item.accession, "study_uid": item.study_uid}
        wanted["patient_id"] = item.patient_id
        given = job.risk_rows.get(step.id, {}).get(wanted[step.match])
        if given:
            names = {f.name for f in model.features}
            values |= {k: v for k, v in given.items() if k in names and v.strip()}
        try:
            r = predict(model, values)
        except MedviewError as e:
            row[f"{step.id}:error"] = _reason(e)
            continue
        row |= {
            f"{step.id}:probability": round(r.probability, 6),
            f"{step.id}:low": round(r.low, 6),
            f"{step.id}:high": round(r.high, 6),
            f"{step.id}:band": r.band,
            f"{step.id}:missing": ", ".join(r.missing),
        }
    return row


def _bundle(
    pipeline: Pipeline, loaded: Loaded, ran: Ran, folder: Path, risks: dict[str, Any]
) -> dict[str, Any]:
    """The report bundle (SEG, SR, RTSTRUCT, NIfTI, key images, PDF), through the session's
    own export, and its DICOM objects sent back when the pipeline says so."""
    from medview.export.content import ExportOptions
    from medview.session import Opened, StudySession

    session = StudySession()
    session.show(Opened(loaded.series, loaded.volume))
    for _, result, _ in ran.results:
        if result is not None:
            session.accept(result)
    bundle = session.export(folder / "bundle", ExportOptions(validate=False))
    row: dict[str, Any] = {"bundle": str(bundle.path.relative_to(folder.parent.parent))}
    if pipeline.send_node:
        from medview.pacs.nodes import load_nodes
        from medview.pacs.service import send

        node = next(n for n in load_nodes() if n.name == pipeline.send_node)
        objects = [bundle.path / f for f in bundle.files if f.endswith(".dcm") and "/" not in f]
        sent = send(node, objects)
        row["sent"] = sent.sent
        if sent.failed:
            raise PacsError(
                f"{pipeline.send_node} refused {len(sent.failed)} object(s): {sent.failed[0][1]}"
            )
    return row
