"""A cohort pipeline: a small declarative file (TOML or JSON) saying which series of each study
to take, which models to run, which risk models to score with which clinical features, what to
write per series and where to send it. It is data: read, checked against what is installed,
never evaluated. Everything wrong is refused before any work starts, with the line at fault.

    format = "medview-pipeline/1"
    name = "chest CT"

    [[select]]                 # a series is taken when it matches any rule (every key of it)
    modality = "CT"
    description = "chest|thorax"   # a regular expression, searched, case-insensitive
    min_images = 20

    [[models]]
    id = "chest-ct-segmentation"
    modality = "CT"                # only on CT series (default: every selected series)

    [[risk]]
    id = "framingham-chd-10y"
    features = "clinical.csv"      # beside the pipeline; one row per study
    match = "accession"            # its key column: accession, study_uid or patient_id

    [export]
    formats = ["summary", "nifti"] # summary, nifti, seg, bundle (SEG, SR, RTSTRUCT, PDF)
    folder = "results"             # beside the pipeline, unless `medview batch --out`

    [send]
    node = "PACS"                  # a configured PACS node: SEG and SR go back to it
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medview.core.errors import MedviewError, PipelineError

FORMAT = "medview-pipeline/1"
EXPORTS = ("summary", "nifti", "seg", "bundle")
MATCH_KEYS = ("accession", "study_uid", "patient_id")
MAX_BYTES = 256 * 1024
_TOP = {"format", "name", "select", "models", "risk", "export", "send", "statistics"}
_RULE = {"modality", "description", "min_images", "body_part"}
_MODEL = {"id", "modality", "run_anyway", "uncertainty"}
_RISK = {"id", "features", "match"}
_EXPORT = {"formats", "folder"}
_SEND = {"node"}


@dataclass(frozen=True)
class Rule:
    """Which series of a study to take: every key given must hold (empty: any)."""

    modality: str = ""
    description: str = ""  # a regular expression, searched case-insensitively
    min_images: int = 1
    body_part: str = ""

    def matches(self, modality: str, description: str, images: int, body_part: str = "") -> bool:
        if self.modality and modality.upper() != self.modality.upper():
            return False
        if self.description and not re.search(self.description, description or "", re.I):
            return False
        if self.body_part and (body_part or "").upper() != self.body_part.upper():
            return False
        return images >= self.min_images


@dataclass(frozen=True)
class ModelStep:
    id: str
    modality: str = ""  # runs only on series of this modality ("": every selected series)
    run_anyway: bool = False
    uncertainty: bool = False

    def applies(self, modality: str) -> bool:
        return not self.modality or modality.upper() == self.modality


@dataclass(frozen=True)
class RiskStep:
    id: str
    features: str = ""  # an absolute path, checked to lie inside the allowed roots
    match: str = "accession"


@dataclass(frozen=True)
class Pipeline:
    name: str
    select: tuple[Rule, ...]
    models: tuple[ModelStep, ...]
    risk: tuple[RiskStep, ...] = ()
    exports: tuple[str, ...] = ("summary",)
    folder: str = ""  # absolute; "" when the command line gives it
    send_node: str = ""
    source: str = ""  # the file it was read from
    # the models' weights and the risk models' versions, so a new model is a new pipeline
    fingerprint: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def takes(self, modality: str, description: str, images: int, body_part: str = "") -> bool:
        return any(r.matches(modality, description, images, body_part) for r in self.select)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "select": [_nonempty(asdict(r)) for r in self.select],
            "models": [_nonempty(asdict(m)) for m in self.models],
        }
        if self.risk:
            d["risk"] = [_nonempty(asdict(r)) for r in self.risk]
        d["export"] = {"formats": list(self.exports)}
        if self.send_node:
            d["send"] = {"node": self.send_node}
        return d

    @property
    def hash(self) -> str:
        """Same hash, same results: the steps and the weights they run (not the file's
        layout, comments or output folder)."""
        body = json.dumps([self.to_dict(), list(self.fingerprint)], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def _nonempty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in ("", False, None)}


class _Where:
    """Finds the line of a fault in the file's text: the line of ``needle`` (a key or a
    quoted value), searched from the n-th ``[[table]]`` (TOML) when one is named."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def line(self, needle: str, table: str = "", index: int = 0) -> int:
        start = 0
        if table:
            seen = -1
            for i, line in enumerate(self.lines):
                if re.match(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?", line):
                    seen += 1
                    if seen == index:
                        start = i
                        break
        for candidates in (self.lines[start:], self.lines):
            for i, line in enumerate(candidates):
                if needle and needle in line:
                    return i + 1 + (start if candidates is not self.lines else 0)
        return start + 1 if table else 0

    def fail(
        self, message: str, needle: str = "", table: str = "", index: int = 0
    ) -> PipelineError:
        return PipelineError(message, path=self.path, line=self.line(needle, table, index))


def read_pipeline(
    path: str | os.PathLike[str],
    *,
    roots: tuple[str | os.PathLike[str], ...] = (),
    folder: str | os.PathLike[str] | None = None,
    check_installed: bool = True,
) -> Pipeline:
    """Read and check ``path``. Paths in it are relative to its folder and must lie inside
    the allowed roots (its folder, ``roots``). ``folder`` (the command line's ``--out``)
    overrides the export folder; it must be writable. Raises `PipelineError`."""
    path = Path(path).resolve()
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PipelineError(f"cannot read the pipeline: {e.strerror}", path=path) from e
    if len(raw) > MAX_BYTES:
        raise PipelineError(f"the pipeline is over {MAX_BYTES // 1024} KB", path=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PipelineError("the pipeline is not UTF-8 text", path=path) from e
    where = _Where(text, path)
    data = _parse(text, path)
    allowed = [path.parent, *(Path(r).resolve() for r in roots)]

    def inside(value: str, table: str, index: int = 0) -> Path:
        p = (path.parent / value).resolve()
        if not any(p.is_relative_to(r) for r in allowed):
            raise where.fail(
                f"{value!r} lies outside the allowed folders ({', '.join(map(str, allowed))}); "
                "move it beside the pipeline or allow its folder with --allow-root",
                f'"{value}"',
                table,
                index,
            )
        return p

    _keys(data, _TOP, "", where)
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise where.fail(f"format {fmt!r} is not {FORMAT!r}", "format")
    name = _string(data.get("name", path.stem), "name", where)
    rules = _tables(data, "select", where)
    if not rules:
        raise where.fail("the pipeline selects no series: add a [[select]] rule", "")
    select = tuple(_rule(r, i, where) for i, r in enumerate(rules))
    models = tuple(_model(m, i, where) for i, m in enumerate(_tables(data, "models", where)))
    risks = []
    for i, r in enumerate(_tables(data, "risk", where)):
        _keys(r, _RISK, "risk", where, i)
        rid = _string(r.get("id", ""), "id", where, "risk", i)
        match = _string(r.get("match", "accession"), "match", where, "risk", i)
        if match not in MATCH_KEYS:
            raise where.fail(
                f"risk match {match!r} is not one of {', '.join(MATCH_KEYS)}", "match", "risk", i
            )
        features = _string(r.get("features", ""), "features", where, "risk", i)
        risks.append(RiskStep(rid, str(inside(features, "risk", i)) if features else "", match))
    if not models and not risks:
        raise where.fail("the pipeline runs nothing: add [[models]] or [[risk]]", "")
    export = data.get("export", {})
    if not isinstance(export, dict):
        raise where.fail("[export] must be a table", "export")
    _keys(export, _EXPORT, "export", where)
    formats = export.get("formats", ["summary"])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise where.fail("export formats must be a list of names", "formats", "export")
    for f in formats:
        if f not in EXPORTS:
            raise where.fail(
                f"unknown export {f!r} (known: {', '.join(EXPORTS)})", f'"{f}"', "export"
            )
    out_folder = ""
    if folder is not None:
        out_folder = str(Path(folder).resolve())
        _writable(Path(out_folder), None, where)
    elif "folder" in export:
        given = _string(export["folder"], "folder", where, "export")
        out_folder = str(inside(given, "export"))
        _writable(Path(out_folder), given, where)
    send = data.get("send", {})
    if not isinstance(send, dict):
        raise where.fail("[send] must be a table", "send")
    _keys(send, _SEND, "send", where)
    node = _string(send.get("node", ""), "node", where, "send")
    pipeline = Pipeline(
        name,
        select,
        models,
        tuple(risks),
        tuple(dict.fromkeys(formats)),
        out_folder,
        node,
        str(path),
    )
    return installed(pipeline, where) if check_installed else pipeline


def installed(pipeline: Pipeline, where: _Where | None = None) -> Pipeline:
    """``pipeline`` with the fingerprint of what it runs; a model, risk model, feature file
    or PACS node that is not there is refused."""
    from dataclasses import replace

    from medview.inference.registry import find_model
    from medview.risk.registry import find_risk_model

    def fail(message: str, needle: str, table: str, index: int = 0) -> PipelineError:
        if where is None:
            return PipelineError(message, path=pipeline.source or None)
        return where.fail(message, needle, table, index)

    prints = []
    for i, m in enumerate(pipeline.models):
        try:
            manifest = find_model(m.id)
        except MedviewError as e:
            raise fail(f"{e.message} (see `medview models list`)", f'"{m.id}"', "models", i) from e
        if manifest.takes_click:
            raise fail(
                f"model {m.id} needs a click on the image; it cannot run on a cohort",
                f'"{m.id}"',
                "models",
                i,
            )
        prints.append((m.id, manifest.weights_sha256))
    for i, r in enumerate(pipeline.risk):
        try:
            model = find_risk_model(r.id)
        except MedviewError as e:
            raise fail(f"{e.message} (see `medview risk --list`)", f'"{r.id}"', "risk", i) from e
        if r.features:
            from medview.risk.rows import read_rows

            try:
                rows = read_rows(r.features)
            except MedviewError as e:
                raise fail(e.message, "features", "risk", i) from e
            if rows and r.match not in rows[0]:
                raise fail(f"the features file has no column {r.match!r}", "match", "risk", i)
        prints.append((r.id, model.version))
    if pipeline.send_node:
        from medview.pacs.nodes import load_nodes

        if not any(n.name == pipeline.send_node for n in load_nodes()):
            raise fail(
                f"no PACS node named {pipeline.send_node!r} is configured",
                f'"{pipeline.send_node}"',
                "send",
            )
    return replace(pipeline, fingerprint=tuple(prints))


def _parse(text: str, path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PipelineError(f"not valid JSON: {e.msg}", path=path, line=e.lineno) from e
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            found = re.search(r"line (\d+)", str(e))
            raise PipelineError(
                f"not valid TOML: {e}", path=path, line=int(found.group(1)) if found else 0
            ) from e
    if not isinstance(data, dict):
        raise PipelineError("the pipeline must be a table of settings", path=path, line=1)
    return data


def _keys(d: dict[str, Any], known: set[str], table: str, where: _Where, index: int = 0) -> None:
    for k in d:
        if k not in known:
            what = f"[{table}]" if table else "the pipeline"
            raise where.fail(
                f"unknown key {k!r} in {what} (known: {', '.join(sorted(known))})",
                k,
                table,
                index,
            )


def _string(value: Any, key: str, where: _Where, table: str = "", index: int = 0) -> str:
    if not isinstance(value, str) or any(ord(c) < 32 for c in value):
        raise where.fail(f"{key} must be one line of text", key, table, index)
    return value


def _tables(data: dict[str, Any], key: str, where: _Where) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise where.fail(f"{key} must be a list of tables ([[{key}]])", key)
    return items


def _rule(r: dict[str, Any], i: int, where: _Where) -> Rule:
    _keys(r, _RULE, "select", where, i)
    modality = _string(r.get("modality", ""), "modality", where, "select", i)
    if modality and not re.fullmatch(r"[A-Za-z]{2,4}", modality):
        raise where.fail(
            f"modality {modality!r} is not a DICOM modality (CT, MR, PT...)",
            "modality",
            "select",
            i,
        )
    description = _string(r.get("description", ""), "description", where, "select", i)
    try:
        re.compile(description)
    except re.error as e:
        raise where.fail(
            f"description {description!r} is not a regular expression: {e}",
            "description",
            "select",
            i,
        ) from e
    n = r.get("min_images", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise where.fail(
            "min_images must be a whole number of at least 1", "min_images", "select", i
        )
    body = _string(r.get("body_part", ""), "body_part", where, "select", i)
    return Rule(modality.upper(), description, n, body.upper())


def _model(m: dict[str, Any], i: int, where: _Where) -> ModelStep:
    _keys(m, _MODEL, "models", where, i)
    mid = _string(m.get("id", ""), "id", where, "models", i)
    if not mid:
        raise where.fail("a model needs an id", "models", "models", i)
    modality = _string(m.get("modality", ""), "modality", where, "models", i)
    if modality and not re.fullmatch(r"[A-Za-z]{2,4}", modality):
        raise where.fail(
            f"modality {modality!r} is not a DICOM modality (CT, MR, PT...)",
            "modality",
            "models",
            i,
        )
    flags = {}
    for k in ("run_anyway", "uncertainty"):
        v = m.get(k, False)
        if not isinstance(v, bool):
            raise where.fail(f"{k} must be true or false", k, "models", i)
        flags[k] = v
    return ModelStep(mid, modality.upper(), **flags)


def _writable(folder: Path, given: str | None, where: _Where) -> None:
    """Refuse an output folder that cannot be written now, not after an hour of work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".medview-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        message = f"the export folder {str(folder)!r} cannot be written: {e.strerror}"
        if given is None:
            raise PipelineError(message) from e
        raise where.fail(message, f'"{given}"', "export") from e


def pipeline_toml(p: Pipeline) -> str:
    """``p`` as a pipeline file (what "Save reading as pipeline" writes)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))  # a TOML basic string: JSON's escapes are TOML's

    d = p.to_dict()
    lines = [f"format = {value(d['format'])}", f"name = {value(d['name'])}"]
    for table in ("select", "models", "risk"):
        for item in d.get(table, []):
            lines += ["", f"[[{table}]]"] + [f"{k} = {value(v)}" for k, v in item.items()]
    for table in ("export", "send"):
        if table in d:
            lines += ["", f"[{table}]"] + [f"{k} = {value(v)}" for k, v in d[table].items()]
    return "\n".join(lines) + "\n"
