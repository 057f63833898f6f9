"""Import of a MONAI Model-Zoo bundle as a MedView model package, without evaluating its
configuration.

A bundle's ``inference.json`` may hold ``$`` Python expressions and arbitrary ``_target_``
classes, which MONAI's ConfigParser would execute (MONAI advisory GHSA-873f-pvrv-4x83). Here the
config is only *read*: the network ``_target_`` must be allow-listed with literal arguments
(``@name`` references are followed one level to a literal), recognised transforms are mapped to
the manifest's preprocessing (``KeepLargestConnectedComponentd`` to its post-processing),
labels and modality come from ``metadata.json``, and the weights
(``models/model.pt``) are read weights-only and stored as safetensors. Anything else is refused
with the reason. ``model.ts`` (TorchScript, which is code) is refused.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from medview.core.colours import PALETTE
from medview.core.errors import ArchiveError, ModelError
from medview.inference.loading import build_network, read_weights
from medview.inference.manifest import ModelManifest, check_literal
from medview.inference.package import save_package

# transforms that only load or reshape data: the engine does these itself
_IGNORED = {
    "LoadImaged",
    "LoadImage",
    "EnsureChannelFirstd",
    "EnsureChannelFirst",
    "AddChanneld",
    "EnsureTyped",
    "EnsureType",
    "ToTensord",
    "ToTensor",
    "Compose",
    "CastToTyped",
}


def _short(target: Any) -> str:
    if not isinstance(target, str) or target.startswith(("$", "@", "%")):
        raise ModelError(f"_target_ {str(target)[:60]!r} is an expression, not a class name")
    return target.rsplit(".", 1)[-1]


def _resolve(value: Any, config: dict[str, Any], where: str) -> Any:
    """Follow ``@name`` one level to a literal in the config; refuse anything executable."""
    if isinstance(value, str) and value.startswith("@"):
        key = value[1:]
        if not re.fullmatch(r"[A-Za-z0-9_]+", key) or key not in config:
            raise ModelError(f"{where}: reference {value!r} cannot be resolved to a literal")
        return check_literal(config[key], f"{where} ({value})")
    if isinstance(value, list):
        return [_resolve(v, config, where) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, config, f"{where}.{k}") for k, v in value.items()}
    return check_literal(value, where)


def _network(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    net = config.get("network_def")
    if not isinstance(net, dict) or "_target_" not in net:
        raise ModelError("inference.json has no network_def with a _target_")
    name = _short(net["_target_"])
    target = str(net["_target_"])
    if target not in (name, f"monai.networks.nets.{name}"):
        raise ModelError(f"network _target_ {target!r} is not a monai.networks.nets class")
    args = {k: _resolve(v, config, f"network_def.{k}") for k, v in net.items() if k != "_target_"}
    build_network(name, args)  # refuses disallowed classes and bad arguments now
    return name, args


def _preprocessing(config: dict[str, Any]) -> dict[str, Any]:
    pre = config.get("preprocessing") or {}
    transforms = pre.get("transforms", []) if isinstance(pre, dict) else []
    if not isinstance(transforms, list):
        raise ModelError("preprocessing.transforms is not a list")
    out: dict[str, Any] = {"orientation": "RAS"}
    for i, t in enumerate(transforms):
        if not isinstance(t, dict) or "_target_" not in t:
            raise ModelError(f"preprocessing transform {i} has no _target_")
        name = _short(t["_target_"])
        where = f"preprocessing transform {i} ({name})"
        if name in _IGNORED:
            continue
        args = {k: _resolve(v, config, where) for k, v in t.items() if k != "_target_"}
        if name == "Orientationd":
            out["orientation"] = str(args.get("axcodes", "RAS"))
        elif name == "Spacingd":
            pixdim = args.get("pixdim")
            out["spacing"] = [float(v) for v in pixdim] if isinstance(pixdim, list) else None
        elif name == "ScaleIntensityRanged":
            out["intensity"] = {
                "kind": "window",
                **{k: args[k] for k in ("a_min", "a_max", "b_min", "b_max", "clip") if k in args},
            }
        elif name == "ScaleIntensityRangePercentilesd":
            out["intensity"] = {
                "kind": "percentiles",
                "a_min": args.get("lower", 0.0),
                "a_max": args.get("upper", 100.0),
                **{k: args[k] for k in ("b_min", "b_max", "clip") if k in args},
            }
        elif name == "NormalizeIntensityd":
            out["intensity"] = {"kind": "normalize"}
        else:
            raise ModelError(f"{where} is not a transform MedView can reproduce; refused")
    return out


# post-processing the engine does itself: activation, inversion onto the source grid, argmax,
# saving
_POST_DONE = {"Activationsd", "Activations", "Invertd", "AsDiscreted", "AsDiscrete", "SaveImaged"}


def _postprocessing(config: dict[str, Any]) -> dict[str, Any]:
    post = config.get("postprocessing") or {}
    transforms = post.get("transforms", []) if isinstance(post, dict) else []
    if not isinstance(transforms, list):
        raise ModelError("postprocessing.transforms is not a list")
    out: dict[str, Any] = {}
    for i, t in enumerate(transforms):
        if not isinstance(t, dict) or "_target_" not in t:
            raise ModelError(f"postprocessing transform {i} has no _target_")
        name = _short(t["_target_"])
        if name in _IGNORED or name in _POST_DONE:
            continue
        where = f"postprocessing transform {i} ({name})"
        args = {k: _resolve(v, config, where) for k, v in t.items() if k != "_target_"}
        if name in ("KeepLargestConnectedComponentd", "KeepLargestConnectedComponent"):
            labels = args.get("applied_labels")
            if not isinstance(labels, list) or not all(isinstance(v, int) for v in labels):
                raise ModelError(f"{where}: applied_labels must be a list of label values")
            out["largest_component"] = labels
        else:
            raise ModelError(f"{where} is not a transform MedView can reproduce; refused")
    return out


def _inference(config: dict[str, Any]) -> dict[str, Any]:
    inferer = config.get("inferer") or {}
    if not isinstance(inferer, dict):
        return {}
    if "_target_" in inferer and _short(inferer["_target_"]) not in (
        "SlidingWindowInferer",
        "SimpleInferer",
    ):
        raise ModelError(f"inferer {inferer['_target_']!r} is not supported")
    args = {k: _resolve(v, config, f"inferer.{k}") for k, v in inferer.items() if k != "_target_"}
    return {k: args[k] for k in ("roi_size", "sw_batch_size", "overlap") if k in args}


def _labels_and_task(meta: dict[str, Any]) -> tuple[str, list[dict[str, Any]], list[str]]:
    outputs = (meta.get("network_data_format") or {}).get("outputs") or {}
    pred: dict[str, Any] = outputs.get("pred") or next(iter(outputs.values()), {}) or {}
    channel_def = pred.get("channel_def") or {}
    names = [str(channel_def[k]) for k in sorted(channel_def, key=lambda k: int(k))]
    if str(pred.get("type", "image")).lower() == "image":
        labels = [
            {"value": i, "name": n, "color": list(PALETTE[(i - 1) % len(PALETTE)])}
            for i, n in enumerate(names)
            if i > 0
        ]
        return "segmentation", labels, []
    return "classification", [], names


def _modality(meta: dict[str, Any]) -> str:
    """The input image's modality from the metadata (``CT``, ``MR``, ...), or ''."""
    inputs = (meta.get("network_data_format") or {}).get("inputs") or {}
    image: Any = inputs.get("image") or next(iter(inputs.values()), {}) or {}
    modality = str(image.get("modality", "")).upper() if isinstance(image, dict) else ""
    return modality if re.fullmatch(r"[A-Z]{2,4}", modality) else ""


def _bundle_root(folder: Path) -> Path:
    hits = [p.parent.parent for p in folder.rglob("configs/metadata.json")]
    if len(hits) != 1:
        raise ModelError("not a MONAI bundle: expected one configs/metadata.json")
    return hits[0]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{path.name}: {e}") from e
    if not isinstance(data, dict):
        raise ModelError(f"{path.name}: not a JSON object")
    return data


def import_bundle(source: str | Path, dest_root: str | Path) -> ModelManifest:
    """Convert a bundle folder or zip into a package under ``dest_root``."""
    source = Path(source)
    if source.is_file():
        from medview.io.archive import extract_zip

        with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
            try:
                out = extract_zip(str(source), tmp)
            except ArchiveError as e:
                raise ModelError(f"bundle archive refused: {e.message}") from e
            if out.skipped:
                raise ModelError(
                    "bundle archive refused: "
                    + "; ".join(f"{s.path.split('!')[-1]}: {s.reason}" for s in out.skipped[:5])
                )
            return _import_folder(_bundle_root(Path(tmp)), dest_root)
    return _import_folder(_bundle_root(source), dest_root)


def _import_folder(root: Path, dest_root: str | Path) -> ModelManifest:
    meta = _read_json(root / "configs" / "metadata.json")
    config = _read_json(root / "configs" / "inference.json")
    weights = root / "models" / "model.pt"
    if not weights.is_file():
        if (root / "models" / "model.ts").is_file():
            raise ModelError(
                "only a TorchScript model.ts is present: TorchScript is executable "
                "code and is refused; provide models/model.pt weights"
            )
        raise ModelError("bundle has no models/model.pt")
    name, args = _network(config)
    task, labels, classes = _labels_and_task(meta)
    state = read_weights(weights)
    net = build_network(name, args)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"bundle weights do not fit its network_def: {str(e)[:300]}") from e
    raw_name = str(meta.get("name") or root.name)
    mid = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw_name).strip("-.").lower()[:60] or "bundle"
    manifest = {
        "id": mid,
        "name": raw_name,
        "version": str(meta.get("version", "0")),
        "task": task,
        "modality": _modality(meta),
        "dimensions": int(args.get("spatial_dims", 3)),
        "network": {"class": name, "args": args},
        "preprocessing": _preprocessing(config),
        "inference": _inference(config),
        "postprocessing": _postprocessing(config),
        "labels": labels,
        "classes": classes,
    }
    card = (
        f"# {raw_name}\n\nImported from a MONAI bundle (version "
        f"{meta.get('version', '?')}).\n\n{meta.get('description', '')}\n\n"
        f"Intended use (from the bundle): {meta.get('intended_use', 'not stated')}\n\n"
        f"Licence: {meta.get('license', meta.get('copyright', 'not stated'))}\n"
    )
    return save_package(dest_root, manifest, state, card)
