"""Safe model loading: SHA-256 first, then safetensors or ``torch.load(weights_only=True)``,
then an allow-listed MONAI network built from literal arguments, weights loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medview.core.errors import ModelError
from medview.core.paths import sha256_file
from medview.inference.manifest import (
    ALLOWED_NETWORKS,
    OWN_NETWORKS,
    ModelManifest,
    check_literal,
)


def read_weights(path: Path) -> dict[str, Any]:
    """A state dict from safetensors or a weights-only torch file (never unpickles code)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as e:  # a corrupt file is refused, whatever the library raises
            raise ModelError(f"{path.name}: not a readable safetensors file ({e})") from e
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle payloads fail here, by design of weights_only
        raise ModelError(
            f"{path.name}: refused, not a weights-only file ({type(e).__name__}: {str(e)[:200]})"
        ) from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path.name}: does not hold a state dict of tensors")
    return obj


def verified_weights(manifest: ModelManifest) -> dict[str, Any]:
    path = manifest.weights_path
    if not path.is_file():
        raise ModelError(f"model {manifest.id}: weights file {manifest.weights_file} is missing")
    digest = sha256_file(path)
    if digest != manifest.weights_sha256:
        raise ModelError(
            f"model {manifest.id}: weights SHA-256 {digest[:16]}... does not match "
            f"the manifest ({manifest.weights_sha256[:16]}...): refused"
        )
    return read_weights(path)


def build_network(class_name: str, args: dict[str, Any]) -> Any:
    """An untrained allow-listed network (`monai.networks.nets`, or one of MedView's own)
    from literal arguments."""
    if class_name not in ALLOWED_NETWORKS:
        raise ModelError(f"network class {class_name!r} is not allowed")
    args = check_literal(args, f"{class_name} arguments")
    if class_name in OWN_NETWORKS:
        import importlib

        cls = getattr(importlib.import_module(OWN_NETWORKS[class_name]), class_name)
        try:
            return cls(**args)
        except (TypeError, ValueError, ModelError) as e:
            raise ModelError(f"{class_name}: invalid arguments: {e}") from e
    import monai.networks.nets as nets

    cls = getattr(nets, class_name, None)
    if cls is None:
        raise ModelError(f"this MONAI has no network {class_name!r}")
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{class_name}: invalid arguments: {e}") from e


def load_model(manifest: ModelManifest) -> Any:
    """The network with its verified weights, in eval mode, on the CPU."""
    state = verified_weights(manifest)
    net = build_network(manifest.network_class, manifest.network_args)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(
            f"model {manifest.id}: weights do not fit the network: {str(e)[:300]}"
        ) from e
    return net.eval()


def set_threads(n: int) -> None:
    """Torch's CPU threads in this process: a cohort worker runs one series at a time on its
    share of the cores, beside the others (``n`` >= 1)."""
    import torch

    torch.set_num_threads(max(1, int(n)))
