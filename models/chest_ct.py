"""Chest CT training data shared by the chest CT segmentation and lesion classifier models:
the two pyradiomics chest CTs, classical body / lung / bone labels, the real tumour labels and
synthetic lesions inserted into real lung parenchyma.

Classical label pipeline (per case, on the CT's own grid; SimpleITK filters):

1. **Body**: HU > -500, opened with a 3 mm in-plane ball to cut the table and cables off,
   the largest 3-D connected component, holes filled slice by slice.
2. **Airways**: lumen air (HU < -900) followed from the trachea down. The trachea is the
   small (1-6 cm^2) air component nearest the body's centre on the first slice that has one;
   on each further slice the airway is the lumen components that overlap the airway above
   (dilated by 2 mm) and are small (< 6 cm^2). A component that grew larger has joined the
   lung and is not followed further. The airway is then dilated by 2 mm in-plane to take the
   partial-volume wall along.
3. **Lungs**: air inside the body (HU < -400) minus the airways, the 3-D components of at
   least 50 mL and a tenth of the largest (bowel gas is smaller), closed with a 2 mm in-plane
   ball and holes filled slice by slice so vessels and nodules inside the lung count as lung.
   The airways are taken out before that hole filling, so bronchi enclosed by lung count as
   lung while the trachea and main bronchi do not.
4. **Bone**: HU > 200 inside the body, 3-D components of at least 0.5 mL, holes filled slice by
   slice (marrow).
5. **Lesion**: the case's real tumour label (pyradiomics), which wins over the others.

Priority where labels overlap: lesion > bone > lung > body. The result was checked by eye on
``python models/chest_ct.py montage OUT.png`` (every fourth slice of both cases).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import medview_training as mt

BODY, LUNG, BONE, LESION = 1, 2, 3, 4
CASES = ("lung1", "lung2")


def _fill_slices(mask: Any) -> Any:
    import numpy as np
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(mask).astype(np.uint8)
    out = np.zeros_like(arr)
    for z in range(arr.shape[0]):
        if arr[z].any():
            out[z] = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(arr[z])))
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(mask)
    return img


def _big_components(mask: Any, min_ml: float, of_largest: float = 0.0) -> Any:
    """Components of at least ``min_ml`` and of at least ``of_largest`` times the largest."""
    import numpy as np
    import SimpleITK as sitk

    voxel_ml = float(np.prod(mask.GetSpacing())) / 1000.0
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(mask))
    sizes = np.bincount(sitk.GetArrayViewFromImage(cc).ravel())[1:] * voxel_ml
    if len(sizes) == 0:
        return cc > 0
    keep = int(np.sum(sizes >= max(min_ml, of_largest * sizes[0])))
    return (cc > 0) & (cc <= keep)


def _airways(hu: Any, body: Any, spacing: tuple[float, float, float]) -> Any:
    """Trachea and main bronchi followed slice by slice from the top (see module docstring)."""
    import numpy as np
    import SimpleITK as sitk

    area_mm2 = spacing[0] * spacing[1]
    lumen = (hu < -900) & body
    out = np.zeros_like(lumen)
    grow = max(1, round(2.0 / spacing[0]))
    above = None
    # slices from head to feet: LPS +z is superior, arrays are (z, y, x) with z increasing
    for z in range(hu.shape[0] - 1, -1, -1):
        labels = sitk.GetArrayFromImage(
            sitk.ConnectedComponent(sitk.GetImageFromArray(lumen[z].astype(np.uint8)))
        )
        n = int(labels.max())
        if n == 0:
            continue
        areas = np.bincount(labels.ravel(), minlength=n + 1) * area_mm2
        if above is None:
            ys, xs = np.nonzero(body[z])
            if len(ys) == 0:
                continue
            cy, cx = ys.mean(), xs.mean()
            best, best_d = 0, 1e9
            for k in range(1, n + 1):
                if not 80 <= areas[k] <= 600:  # a trachea is 1-6 cm^2
                    continue
                ky, kx = np.nonzero(labels == k)
                d = float(np.hypot((ky.mean() - cy) * spacing[1], (kx.mean() - cx) * spacing[0]))
                if d < best_d and d < 40:
                    best, best_d = k, d
            if best:
                out[z] = labels == best
                above = out[z]
            continue
        near = sitk.GetArrayFromImage(
            sitk.BinaryDilate(sitk.GetImageFromArray(above.astype(np.uint8)), [grow, grow])
        ).astype(bool)
        keep = [k for k in np.unique(labels[near]) if k and areas[k] < 600]
        if not keep:
            break
        out[z] = np.isin(labels, keep)
        above = out[z]
    return out


def classical_labels(ct: Any, tumour: Any | None = None) -> Any:
    """Body / lung / bone (and lesion from ``tumour``) label map for a CT ``Volume`` in HU."""
    import numpy as np
    import SimpleITK as sitk

    hu = np.asarray(ct.array)
    spacing = tuple(float(s) for s in ct.geometry.spacing)
    ref = sitk.GetImageFromArray(hu.astype(np.int16))
    ref.SetSpacing(spacing)

    def img(a: Any) -> Any:
        i = sitk.GetImageFromArray(a.astype(np.uint8))
        i.CopyInformation(ref)
        return i

    def arr(i: Any) -> Any:
        return sitk.GetArrayFromImage(i).astype(bool)

    r3 = max(1, round(3.0 / spacing[0]))
    body = sitk.BinaryMorphologicalOpening(img(hu > -500), [r3, r3, 0])
    body = sitk.RelabelComponent(sitk.ConnectedComponent(body)) == 1
    body_a = arr(_fill_slices(body))

    airway = _airways(hu, body_a, spacing)
    r2 = max(1, round(2.0 / spacing[0]))
    airway = arr(sitk.BinaryDilate(img(airway), [r2, r2, 0]))  # with the partial-volume wall
    air = (hu < -400) & body_a & ~airway
    lung = _big_components(img(air), 50.0, of_largest=0.1)
    lung = sitk.BinaryMorphologicalClosing(lung, [r2, r2, 0])
    lung_a = arr(_fill_slices(lung & (img(airway) == 0))) & body_a

    bone = _big_components(img((hu > 200) & body_a), 0.5)
    bone_a = arr(_fill_slices(bone)) & body_a

    out = np.zeros(hu.shape, dtype=np.uint8)
    out[body_a] = BODY
    out[lung_a] = LUNG
    out[bone_a] = BONE
    if tumour is not None:
        out[np.asarray(tumour) > 0] = LESION
    return out


def load_case(name: str) -> tuple[Any, Any]:
    """(CT ``Volume`` in HU, its label map: classical body/lung/bone plus the real lesion)."""
    import numpy as np

    paths = mt.fetch([f"{name}_image.nrrd", f"{name}_label.nrrd"])
    ct = mt.read_nifti(paths[f"{name}_image.nrrd"], "CT")
    tumour = mt.read_nifti(paths[f"{name}_label.nrrd"], "CT").array > 0
    return ct, classical_labels(ct, tumour).astype(np.uint8)


def insert_lesion(
    image: Any,
    label: Any,
    centre: tuple[int, ...],
    radius_mm: float,
    spacing: tuple[float, ...],
    value: float,
    rng: Any,
    lesion: int = LESION,
) -> None:
    """Write a synthetic lesion into ``image`` (values) and ``label`` in place: a soft-edged,
    slightly irregular ellipsoid of solid-tissue ``value`` with texture, centred at ``centre``
    (array index), any number of dimensions. Both arrays share axes and ``spacing`` (mm)."""
    import numpy as np

    radii = [
        radius_mm * f / s
        for f, s in zip(rng.uniform(0.75, 1.25, len(spacing)), spacing, strict=True)
    ]
    lo = [max(0, int(c - r - 2)) for c, r in zip(centre, radii, strict=True)]
    hi = [min(n, int(c + r + 3)) for c, r, n in zip(centre, radii, image.shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij")
    d = np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)))
    # lobulated edge: the radius varies with direction by up to +-15 %
    angle = np.arctan2(grids[-1] - centre[-1], grids[-2] - centre[-2])
    k, phase = int(rng.integers(2, 6)), rng.uniform(0, 2 * np.pi)
    d = d / (1.0 + 0.15 * rng.uniform(0, 1) * np.cos(k * angle + phase))
    alpha = np.clip((1.0 - d) * max(radii) + 0.5, 0.0, 1.0)  # about one voxel of soft edge
    texture = value * (1 + 0.04 * rng.standard_normal(alpha.shape))
    image[box] = image[box] * (1 - alpha) + texture * alpha
    label[box] = np.where(alpha >= 0.5, lesion, label[box])


def montage(out: Path, step: int = 4) -> None:
    """Every ``step``-th slice of both cases with the classical labels, as one PNG (for a
    person to check the pipeline). Needs PySide6 (in the app's environment)."""
    import numpy as np
    from PySide6.QtGui import QImage

    colours = np.array(
        [[0, 0, 0], [230, 160, 120], [80, 160, 255], [60, 230, 60], [255, 40, 40]], np.float32
    )
    rows = []
    for name in CASES:
        ct, lab = load_case(name)
        hu = np.asarray(ct.array, np.float32)
        tiles = []
        for z in range(hu.shape[0] - 1, -1, -step):
            g = np.clip((hu[z] + 1000) / 1400, 0, 1)[..., None] * 255
            a = np.where(lab[z][..., None] > 1, 0.55, np.where(lab[z][..., None] > 0, 0.25, 0.0))
            rgb = g * (1 - a) + colours[lab[z]] * a
            tiles.append(rgb[::2, ::2])
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        for i in range(0, len(tiles), 8):
            rows.append(np.concatenate(tiles[i : i + 8], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    rgb = np.ascontiguousarray(np.concatenate(rows, axis=0).astype(np.uint8))
    h, w, _ = rgb.shape
    QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).save(str(out))


if __name__ == "__main__":
    if sys.argv[1:2] == ["montage"]:
        sys.path.insert(0, str(mt.REPO))
        montage(Path(sys.argv[2]))
