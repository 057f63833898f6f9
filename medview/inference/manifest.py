"""Model packages are data: a manifest (JSON), weights (safetensors or a weights-only torch
file) with their SHA-256, and a model card. Nothing in a package is ever executed.

``models/<id>/manifest.json``::

    {"id": "lung-seg", "name": "...", "version": "1.0.0", "task": "segmentation",
     "modality": "CT", "body_part": "CHEST", "dimensions": 3,
     "network": {"class": "UNet", "args": {"spatial_dims": 3, ...}},
     "preprocessing": {"orientation": "RAS", "spacing": [1.5, 1.5, 2.0],
                       "intensity": {"kind": "window", "a_min": -1000, "a_max": 400,
                                     "b_min": 0.0, "b_max": 1.0, "clip": true}},
     "inference": {"roi_size": [96, 96, 96], "overlap": 0.25, "sw_batch_size": 2},
     "postprocessing": {"largest_component": [1],          # optional, on the source grid
                        "min_component_ml": {"1": 0.2},    # smaller components given away
                        "must_touch": {"1": [2]},          # components touching no label 2 too
                        "must_not_touch": {"2": [0]}},     # and those lying against label 0
     "labels": [{"value": 1, "name": "lung", "color": [80, 160, 255],
                 "snomed": {"code": "39607008", "meaning": "Lung"}}],
     "weights": {"file": "weights.safetensors", "sha256": "..."},
     "card": "MODEL_CARD.md"}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.core.errors import ModelError

# networks written in MedView a package may name (class name -> module)
OWN_NETWORKS = {"HDBet": "medview.inference.hdbet"}
# monai.networks.nets classes a package may name, and ours; anything else is refused
ALLOWED_NETWORKS = frozenset(
    {
        *OWN_NETWORKS,
        "UNet",
        "BasicUNet",
        "SegResNet",
        "AttentionUnet",
        "UNETR",
        "SwinUNETR",
        "DynUNet",
        "DenseNet121",
        "DenseNet169",
        "DenseNet201",
        "ResNet",
        "EfficientNetBN",
        "Classifier",
        "Regressor",
    }
)
# a click task segments (or classifies) what the reader clicked on: ``prompt`` says how
TASKS = ("segmentation", "classification", "click-segmentation", "click-classification")
# the brain label of MedView's brain-extraction packages (shipped and HD-BET)
BRAIN_LABEL = {
    "value": 1,
    "name": "brain",
    "color": [255, 196, 64],
    "snomed": {"code": "12738006", "meaning": "Brain"},
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EXPRESSION = re.compile(r"^[$@%]")  # MONAI bundle expression / reference syntax


def check_literal(value: Any, where: str) -> Any:
    """``value`` if it is plain JSON data (no expressions); else `ModelError`."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if _EXPRESSION.match(value):
            raise ModelError(f"{where}: expressions are not allowed ({value[:40]!r})")
        return value
    if isinstance(value, (list, tuple)):
        return [check_literal(v, where) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k.startswith("_"):
                raise ModelError(f"{where}: key {k!r} is not a plain argument name")
            out[k] = check_literal(v, f"{where}.{k}")
        return out
    raise ModelError(f"{where}: {type(value).__name__} is not plain data")


@dataclass(frozen=True)
class Label:
    value: int
    name: str
    color: tuple[int, int, int]
    snomed_code: str = ""
    snomed_meaning: str = ""
    finding: bool = False  # a finding (a lesion), not anatomy: gets automatic key images


@dataclass(frozen=True)
class Domain:
    """The inputs a model was made for (checked before a run) and the outputs it can
    plausibly give (checked after)."""

    modalities: tuple[str, ...] = ()  # empty: the manifest's modality (if any)
    body_parts: tuple[str, ...] = ()  # accepted Body Part Examined values; empty: any
    min_slices: int = 1
    spacing_mm: tuple[float, float] | None = None  # plausible voxel spacing, every axis
    # (label, min mL, max mL): a result outside this range is flagged as implausible
    plausible_ml: tuple[tuple[int, float, float], ...] = ()


@dataclass(frozen=True)
class Intensity:
    kind: str = "none"  # "window" | "percentiles" (a_min/a_max are percentiles) | "normalize"
    a_min: float = 0.0
    a_max: float = 1.0
    b_min: float = 0.0
    b_max: float = 1.0
    clip: bool = True


@dataclass(frozen=True)
class ModelManifest:
    id: str
    name: str
    version: str
    task: str
    network_class: str
    network_args: dict[str, Any]
    weights_file: str
    weights_sha256: str
    folder: Path
    modality: str = ""
    body_part: str = ""
    dimensions: int = 3
    orientation: str = "RAS"
    spacing: tuple[float, ...] | None = None
    intensity: Intensity = field(default_factory=Intensity)
    roi_size: tuple[int, ...] = (96, 96, 96)
    overlap: float = 0.25
    sw_batch_size: int = 1
    labels: tuple[Label, ...] = ()
    classes: tuple[str, ...] = ()
    gradcam_layer: str = ""  # a module name in the network, e.g. "layer4" for ResNet
    largest_component: tuple[int, ...] = ()  # labels kept only in their largest 3-D component
    # (label, mL): components of the label smaller than this are given to their surroundings
    min_component_ml: tuple[tuple[int, float], ...] = ()
    # (label, labels): components of the label touching none of those are given away too
    must_touch: tuple[tuple[int, tuple[int, ...]], ...] = ()
    # (label, labels): components of the label lying against those (over 1 % of their voxels
    # next to them) are given away, e.g. "lung" in the air around the patient
    must_not_touch: tuple[tuple[int, tuple[int, ...]], ...] = ()
    card: str = ""
    domain: Domain = field(default_factory=Domain)
    heatmap_threshold: float = 0.5  # heat-map values drawn by default (0..1)
    heatmap_note: str = ""  # how far the heat map can be trusted, shown beside it
    series_note: str = ""  # how the series probability is aggregated and calibrated
    # ids of packages this one replaces for the same task (listed and offered before them)
    supersedes: tuple[str, ...] = ()
    # click models (medview.inference.click): box_shape, box_spacing_mm (z, y, x), sigma_mm,
    # segmenter
    prompt: dict[str, Any] = field(default_factory=dict)
    # click classifiers: a logistic calibrator (medview.inference.nodule.Calibration)
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def takes_click(self) -> bool:
        return self.task.startswith("click-")

    @property
    def weights_path(self) -> Path:
        return self.folder / self.weights_file

    @property
    def card_text(self) -> str:
        try:
            return (self.folder / self.card).read_text() if self.card else ""
        except OSError:
            return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "modality": self.modality,
            "body_part": self.body_part,
            "dimensions": self.dimensions,
            "network": {"class": self.network_class, "args": self.network_args},
            "preprocessing": {
                "orientation": self.orientation,
                "spacing": list(self.spacing) if self.spacing else None,
                "intensity": self.intensity.__dict__,
            },
            "inference": {
                "roi_size": list(self.roi_size),
                "overlap": self.overlap,
                "sw_batch_size": self.sw_batch_size,
            },
            "labels": [
                {
                    "value": lb.value,
                    "name": lb.name,
                    "color": list(lb.color),
                    "snomed": {"code": lb.snomed_code, "meaning": lb.snomed_meaning},
                    "finding": lb.finding,
                }
                for lb in self.labels
            ],
            "domain": {
                "modalities": list(self.domain.modalities),
                "body_parts": list(self.domain.body_parts),
                "min_slices": self.domain.min_slices,
                "spacing_mm": list(self.domain.spacing_mm) if self.domain.spacing_mm else None,
                "plausible_ml": {str(v): [lo, hi] for v, lo, hi in self.domain.plausible_ml},
            },
            "heatmap": {"threshold": self.heatmap_threshold, "note": self.heatmap_note},
            "series_note": self.series_note,
            "supersedes": list(self.supersedes),
            "prompt": self.prompt,
            "calibration": self.calibration,
            "classes": list(self.classes),
            "gradcam_layer": self.gradcam_layer,
            "postprocessing": {
                "largest_component": list(self.largest_component),
                "min_component_ml": {str(k): v for k, v in self.min_component_ml},
                "must_touch": {str(k): list(v) for k, v in self.must_touch},
                "must_not_touch": {str(k): list(v) for k, v in self.must_not_touch},
            },
            "weights": {"file": self.weights_file, "sha256": self.weights_sha256},
            "card": self.card,
        }


_INTENSITY_FIELDS = frozenset(Intensity.__dataclass_fields__)
INTENSITY_KINDS = frozenset({"none", "window", "percentiles", "normalize"})


def _req(d: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in d:
        raise ModelError(f"{where}: missing {key!r}")
    if not isinstance(d[key], kind):
        raise ModelError(f"{where}: {key!r} must be {kind.__name__}")
    return d[key]


def _label_lists(post: dict[str, Any], key: str) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """``{"4": [2]}`` in post-processing as ``((4, (2,)),)``."""
    return tuple((int(k), tuple(int(x) for x in v)) for k, v in (post.get(key) or {}).items())


def parse_manifest(data: dict[str, Any], folder: Path) -> ModelManifest:
    """Validate a manifest's content; every refusal says what is wrong."""
    where = f"manifest in {folder.name}"
    if not isinstance(data, dict):
        raise ModelError(f"{where}: not a JSON object")
    mid = _req(data, "id", str, where)
    if not _ID.match(mid):
        raise ModelError(f"{where}: id {mid!r} must be letters, digits, '.', '_' or '-'")
    task = _req(data, "task", str, where)
    if task not in TASKS:
        raise ModelError(f"{where}: task must be one of {TASKS}")
    net = _req(data, "network", dict, where)
    cls = _req(net, "class", str, f"{where}.network")
    if cls not in ALLOWED_NETWORKS:
        raise ModelError(
            f"{where}: network class {cls!r} is not allowed "
            f"(allowed: {', '.join(sorted(ALLOWED_NETWORKS))})"
        )
    args = check_literal(net.get("args", {}), f"{where}.network.args")
    weights = _req(data, "weights", dict, where)
    wfile = _req(weights, "file", str, f"{where}.weights")
    if os.path.basename(wfile) != wfile or wfile in ("", ".", ".."):
        raise ModelError(f"{where}: weights file must be a plain file name in the package")
    sha = _req(weights, "sha256", str, f"{where}.weights").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ModelError(f"{where}: weights sha256 must be 64 hex digits")
    pre = check_literal(data.get("preprocessing", {}), f"{where}.preprocessing") or {}
    inten = pre.get("intensity") or {}
    if inten.get("kind", "none") not in INTENSITY_KINDS:
        raise ModelError(
            f"{where}: intensity kind {inten.get('kind')!r} is not one of "
            f"{', '.join(sorted(INTENSITY_KINDS))}"
        )
    inf = check_literal(data.get("inference", {}), f"{where}.inference") or {}
    post = check_literal(data.get("postprocessing", {}), f"{where}.postprocessing") or {}
    labels = []
    for i, lb in enumerate(check_literal(data.get("labels", []), f"{where}.labels")):
        snomed = lb.get("snomed") or {}
        color = tuple(int(c) for c in lb.get("color", (255, 0, 0)))[:3]
        labels.append(
            Label(
                int(lb["value"]) if "value" in lb else i + 1,
                str(lb.get("name", f"label {i + 1}")),
                (color[0], color[1], color[2]),
                str(snomed.get("code", "")),
                str(snomed.get("meaning", "")),
                bool(lb.get("finding", False)),
            )
        )
    dom = check_literal(data.get("domain", {}), f"{where}.domain") or {}
    heat = check_literal(data.get("heatmap", {}), f"{where}.heatmap") or {}
    supersedes = tuple(str(v) for v in check_literal(data.get("supersedes", []), where))
    if not all(_ID.match(v) for v in supersedes):
        raise ModelError(f"{where}: supersedes must list package ids")
    card = str(data.get("card", ""))
    if card and os.path.basename(card) != card:
        raise ModelError(f"{where}: card must be a plain file name in the package")
    try:
        return ModelManifest(
            id=mid,
            name=str(data.get("name", mid)),
            version=str(data.get("version", "0")),
            task=task,
            network_class=cls,
            network_args=args,
            weights_file=wfile,
            weights_sha256=sha,
            folder=folder,
            modality=str(data.get("modality", "")),
            body_part=str(data.get("body_part", "")),
            dimensions=int(data.get("dimensions", 3)),
            orientation=str(pre.get("orientation", "RAS")),
            spacing=tuple(float(v) for v in pre["spacing"]) if pre.get("spacing") else None,
            intensity=Intensity(
                **{k: inten[k] for k in inten if k in Intensity.__dataclass_fields__}
            ),
            roi_size=tuple(int(v) for v in inf.get("roi_size", (96, 96, 96))),
            overlap=float(inf.get("overlap", 0.25)),
            sw_batch_size=int(inf.get("sw_batch_size", 1)),
            labels=tuple(labels),
            classes=tuple(
                str(c) for c in check_literal(data.get("classes", []), f"{where}.classes")
            ),
            gradcam_layer=str(data.get("gradcam_layer", "")),
            largest_component=tuple(int(v) for v in post.get("largest_component", ())),
            min_component_ml=tuple(
                (int(k), float(v)) for k, v in (post.get("min_component_ml") or {}).items()
            ),
            must_touch=_label_lists(post, "must_touch"),
            must_not_touch=_label_lists(post, "must_not_touch"),
            card=card,
            domain=Domain(
                modalities=tuple(str(m).upper() for m in dom.get("modalities") or ()),
                body_parts=tuple(str(b).upper() for b in dom.get("body_parts") or ()),
                min_slices=int(dom.get("min_slices", 1)),
                spacing_mm=(
                    (float(dom["spacing_mm"][0]), float(dom["spacing_mm"][1]))
                    if dom.get("spacing_mm")
                    else None
                ),
                plausible_ml=tuple(
                    (int(k), float(v[0]), float(v[1]))
                    for k, v in (dom.get("plausible_ml") or {}).items()
                ),
            ),
            heatmap_threshold=float(heat.get("threshold", 0.5)),
            heatmap_note=str(heat.get("note", "")),
            series_note=str(check_literal(data.get("series_note", ""), f"{where}.series_note")),
            supersedes=supersedes,
            prompt=dict(check_literal(data.get("prompt", {}), f"{where}.prompt") or {}),
            calibration=dict(
                check_literal(data.get("calibration", {}), f"{where}.calibration") or {}
            ),
        )
    except (TypeError, ValueError, KeyError) as e:
        raise ModelError(f"{where}: {type(e).__name__}: {e}") from e


def read_manifest(folder: str | os.PathLike[str]) -> ModelManifest:
    folder = Path(folder)
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except OSError as e:
        raise ModelError(f"no readable manifest.json in {folder}: {e}") from e
    except ValueError as e:
        raise ModelError(f"manifest.json in {folder} is not valid JSON: {e}") from e
    return parse_manifest(data, folder)
