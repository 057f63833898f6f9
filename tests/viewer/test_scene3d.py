"""The 3-D scene (VTK, offscreen: EGL or OSMesa without a display): orientation in patient
space, the silhouette of a sphere against its analytic projection, picking, surfaces that
enclose their segment's volume (on real LIDC-IDRI nodules), and the demo CT rendered."""

from __future__ import annotations

import colorsys
import sys

import numpy as np
import pytest

from medview.core.volume import Volume
from medview.viewer.scene3d import Scene3D, reduced
from medview.viewer.surfaces import enclosed_volume, segment_surfaces
from medview.viewer.transfer import PRESETS, TransferFunction, presets_for
from tests.conftest import DEMO_CT, REPO, missing_outside_ci
from tests.viewer.phantoms3d import ball, grid, lit, lps_of, project

SIZE = 400
BONE = next(p for p in PRESETS if p.name == "CT bone")


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    s = Scene3D((SIZE, SIZE))
    yield s
    s.close()


@pytest.fixture(scope="module")
def gpu_scene():  # type: ignore[no-untyped-def]
    """The GPU ray caster (on Mesa's software OpenGL here: slow, but the same shaders a
    graphics card runs), which MedView picks on hardware OpenGL."""
    s = Scene3D((SIZE, SIZE), mapper="gpu")
    yield s
    s.close()


MAPPERS = ["scene", "gpu_scene"]


@pytest.mark.parametrize("which", MAPPERS)
@pytest.mark.parametrize("flipped", [False, True])
def test_left_marker_renders_on_the_patients_left(request, which: str, flipped: bool) -> None:  # type: ignore[no-untyped-def]
    """A bone marker on the patient's left, anterior and superior: from the front (A) it is
    on the screen's right and at the top; from the left (L), anterior is on the screen's
    left. The same holds for a grid stored with its x and y axes reversed (the placement
    in LPS decides, not the storage order), and for both ray casters."""
    scene = request.getfixturevalue(which)
    centre = np.array([10.0, -20.0, 30.0])
    direction = np.diag([-1.0, -1.0, 1.0]) if flipped else np.eye(3)
    g = grid((60, 60, 60), 2.0, centre, direction)
    marker = centre + np.array([35.0, -35.0, 35.0])  # left, anterior, superior
    arr = ball(g, marker, 12.0)
    scene.set_volume(Volume(arr, g, modality="CT"), TransferFunction.of(BONE))
    seen = {}
    for side in "ALP":
        scene.reset_camera(side)
        shown = lit(scene.render())
        assert shown.sum() > 200, f"the marker is not drawn from {side}"
        ys, xs = np.nonzero(shown)
        seen[side] = (xs.mean() / SIZE, ys.mean() / SIZE)
    assert seen["A"][0] > 0.6 and seen["A"][1] < 0.4  # patient's left on the right, top
    assert seen["L"][0] < 0.4 and seen["L"][1] < 0.4  # anterior on the left
    assert seen["P"][0] < 0.4  # from behind, the left is on the screen's left


@pytest.mark.parametrize("which", MAPPERS)
def test_sphere_silhouette_matches_its_projection(request, which: str) -> None:  # type: ignore[no-untyped-def]
    scene = request.getfixturevalue(which)
    centre = np.array([-12.0, 25.0, -40.0])
    g = grid((100, 110, 120), 1.0, np.array([0.0, 20.0, -30.0]), np.eye(3))
    radius = 22.0
    scene.set_volume(Volume(ball(g, centre, radius), g, modality="CT"), TransferFunction.of(BONE))
    for side in "ALS":
        scene.reset_camera(side)
        shown = lit(scene.render())
        want_x, want_y, px_per_mm = project(scene, centre)
        want_r = radius * px_per_mm
        ys, xs = np.nonzero(shown)
        got_r = np.sqrt(shown.sum() / np.pi)
        assert abs(xs.mean() - want_x) < 2 and abs(ys.mean() - want_y) < 2, side
        assert abs(got_r - want_r) < 2, (side, got_r, want_r)
        # the edge, not only the area: the farthest lit pixel from the centre
        far = np.sqrt((xs - want_x) ** 2 + (ys - want_y) ** 2).max()
        assert abs(far - want_r) < 2, (side, far, want_r)

    # picking the rendered sphere's centre puts the point on its surface facing the camera
    scene.reset_camera("A")
    scene.render()
    cam = scene.renderer.GetActiveCamera()
    x, y, _ = project(scene, centre)
    picked = scene.pick(x, y)
    assert picked is not None
    front = centre - radius * np.array(cam.GetDirectionOfProjection())
    assert np.linalg.norm(picked - front) <= 1.0, (picked, front)
    assert scene.pick(3, 3) is None  # the background


def test_reduced_copy_lies_where_the_volume_does() -> None:
    g = grid((40, 64, 64), 0.7, np.array([5.0, -3.0, 12.0]), np.diag([-1.0, 1.0, 1.0]))
    centre = np.array([14.0, -9.0, 16.0])
    vol = Volume(ball(g, centre, 6.0), g, modality="CT")
    small = reduced(vol, 40 * 64 * 64 // 4)
    assert int(np.prod(small.shape)) == 40 * 64 * 64 // 4  # two axes halved
    for v in (vol, small):
        w = v.array.astype(np.float64) + 1000
        com = (np.stack(np.indices(v.shape), axis=-1) * w[..., None]).sum((0, 1, 2)) / w.sum()
        assert np.linalg.norm(v.geometry.index_to_lps(com) - centre) < 0.3
    assert reduced(vol, 10**9) is vol


def test_surfaces_enclose_real_nodules_volumes() -> None:
    """Every real LIDC-IDRI nodule mask: its smoothed surface encloses the mask's volume
    within 3 % (all of those of 100 voxels or more), and within 5 % for the smallest."""
    sys.path.insert(0, str(REPO / "models"))
    import lidc

    if not lidc.available():
        missing_outside_ci(f"{lidc.ARCHIVE} (LIDC-IDRI crops beside the project)")
    errors, sizes = [], []
    for nodule in lidc.nodules():
        volume, mask = lidc.read(nodule)
        (surface,) = segment_surfaces(mask.astype(np.uint8), volume.geometry, [1])
        voxels = int(mask.sum())
        want = voxels * float(np.prod(volume.geometry.spacing))
        errors.append(enclosed_volume(surface.points, surface.triangles) / want - 1)
        sizes.append(voxels)
    errors_a, sizes_a = np.abs(np.array(errors)), np.array(sizes)
    assert len(errors) > 700
    assert errors_a[sizes_a >= 100].max() < 0.03
    assert errors_a.max() < 0.05
    assert np.median(errors_a) < 0.01


def test_surface_colour_and_visibility_follow_the_overlay(scene) -> None:  # type: ignore[no-untyped-def]
    g = grid((50, 60, 60), 1.0, np.zeros(3), np.eye(3))
    vol = Volume(np.full(g.shape, -1000, np.int16), g, modality="CT")
    scene.set_volume(vol, TransferFunction.of(BONE))  # nothing opaque: only the surface shows
    labels = np.zeros(g.shape, np.uint8)
    d = np.linalg.norm(lps_of(g), axis=-1)
    labels[d < 15] = 3
    surfaces = segment_surfaces(labels, g, [3])
    colour = (40, 200, 90)
    scene.set_surfaces(surfaces, {3: colour})
    scene.reset_camera("A")
    rgb = scene.render()
    shown = lit(rgb)
    assert shown.sum() > 1000
    # off the centre, away from the specular highlight: the segment's hue
    ys, xs = np.nonzero(shown)
    cy, cx = int(ys.mean()), int(xs.mean())
    r, g_, b = rgb[cy + 20, cx - 20].astype(float) / 255
    want = colorsys.rgb_to_hsv(*(c / 255 for c in colour))[0]
    assert abs(colorsys.rgb_to_hsv(r, g_, b)[0] - want) < 0.04
    scene.style_surfaces({3: colour}, 1.0, {3})  # hidden as in the 2-D overlay
    assert lit(scene.render()).sum() == 0


def test_demo_ct_renders_with_every_preset(scene) -> None:  # type: ignore[no-untyped-def]
    from medview.io.loader import load_series
    from medview.io.scan import scan

    volume = load_series(scan([str(DEMO_CT)]).series[0])
    presets = presets_for("CT")
    assert [p.name for p in presets][:4] == [
        "CT bone",
        "CT soft tissue",
        "CT lung",
        "CT angiography (MIP)",
    ]
    for preset in presets:
        scene.set_volume(volume, TransferFunction.of(preset, volume.array))
        scene.set_cursor((np.array(volume.shape) - 1) / 2)
        rgb = scene.render()
        shown = lit(rgb)
        assert shown.mean() > 0.15 and rgb.std() > 20, preset.name
    # a right-drag's adjustment moves the transfer function as a window would: shifted by
    # the level, stretched about its centre by the width
    tf = scene.tf
    wider = tf.adjusted(100.0, 0.5)
    before, after = tf.placed(), wider.placed()
    assert after[-1][0] - after[0][0] == pytest.approx(1.5 * (before[-1][0] - before[0][0]))
    assert wider.opacity_at(tf.centre + 100.0) == pytest.approx(tf.opacity_at(tf.centre))


def test_clip_box_hides_what_lies_outside(scene) -> None:  # type: ignore[no-untyped-def]
    """The left marker is drawn; a box over the patient's right half hides it; the whole
    volume again shows it. The box is in the series' grid even when the CPU caster draws a
    reduced copy."""
    centre = np.zeros(3)
    g = grid((60, 60, 60), 2.0, centre, np.eye(3))
    marker = centre + np.array([35.0, 0.0, 0.0])  # the patient's left: high x index
    scene.set_volume(Volume(ball(g, marker, 12.0), g, modality="CT"), TransferFunction.of(BONE))
    scene.reset_camera("A")
    assert lit(scene.render()).sum() > 200
    scene.set_clip([(0.0, 29.0), (0.0, 59.0), (0.0, 59.0)])  # x: the right half only
    assert lit(scene.render()).sum() == 0
    scene.set_clip([(30.0, 59.0), (0.0, 59.0), (0.0, 59.0)])  # the left half
    assert lit(scene.render()).sum() > 200
    scene.set_clip(None)
    assert lit(scene.render()).sum() > 200


def test_moving_frames_are_coarser_and_still_ones_full(scene) -> None:  # type: ignore[no-untyped-def]
    g = grid((40, 40, 40), 1.5, np.zeros(3), np.eye(3))
    scene.set_volume(
        Volume(ball(g, np.zeros(3), 20.0), g, modality="CT"), TransferFunction.of(BONE)
    )
    mapper = scene.prop.GetMapper()
    scene.interactive(True)
    assert mapper.GetImageSampleDistance() == 2.0 and mapper.GetSampleDistance() == 3.0
    scene.interactive(False)
    assert mapper.GetImageSampleDistance() == 1.0 and mapper.GetSampleDistance() == 1.5
