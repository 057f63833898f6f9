"""Diffusion encoding of MR images: each image's b-value and gradient direction, from the
standard attributes (Diffusion b-value, Diffusion Gradient Orientation; top level or in the
enhanced MR Diffusion functional group) or, where the scanner writes only its own, from the
Siemens, GE and Philips private elements dcm2niix reads; and the volumes' FSL ``.bval`` /
``.bvec`` in dcm2niix's convention.

Directions are kept in patient coordinates (LPS), unit length. GE writes its directions in
the image frame with the first two axes pointing the other way; they are turned into LPS
here. Private elements count only under their own private creator, so another vendor's use
of the same element numbers is never read as a b-value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

import numpy as np

from medview.core.records import SeriesRecord

Vec3 = tuple[float, float, float]
Encoding = tuple[float, Vec3 | None]  # (b-value s/mm², unit direction in LPS or None)

B_VALUE = 0x00189087  # FD
DIRECTION = 0x00189089  # FD x 3
SIEMENS = (0x00190010, "SIEMENS MR HEADER", 0x0019100C, 0x0019100E)  # IS, FD x 3
GE_B = (0x00430010, "GEMS_PARM_01", 0x00431039)  # IS, first value, 1e9 may be added
GE_DIRECTION = (0x00190010, "GEMS_ACQU_01", (0x001910BB, 0x001910BC, 0x001910BD))  # DS
PHILIPS_B = (0x20010010, "Philips Imaging DD 001", 0x20011003)  # FL
PHILIPS_DIRECTION = (0x20050010, "Philips MR Imaging DD 001", (0x200510B0, 0x200510B1, 0x200510B2))

TAGS = frozenset(
    {
        B_VALUE,
        DIRECTION,
        SIEMENS[0],
        SIEMENS[2],
        SIEMENS[3],
        GE_B[0],
        GE_B[2],
        *GE_DIRECTION[2],
        PHILIPS_B[0],
        PHILIPS_B[2],
        PHILIPS_DIRECTION[0],
        *PHILIPS_DIRECTION[2],
    }
)


def unit(v: Sequence[float] | None) -> Vec3 | None:
    """A direction of unit length, or None for none (zero, missing, not finite). Plain
    arithmetic: it runs once per image while indexing, where numpy's call overhead showed."""
    if v is None or len(v) != 3:
        return None
    x, y, z = (float(c) for c in v)
    n = math.sqrt(x * x + y * y + z * z)
    if not math.isfinite(n) or n < 1e-6:
        return None
    return (x / n, y / n, z / n)


def read_encoding(
    text: Callable[[int], str],
    binary: Callable[[int, str], tuple[float, ...] | None],
    orientation: Sequence[float] | None,
) -> Encoding | None:
    """The b-value and direction of one image from its element values: ``text(tag)`` gives a
    text value, ``binary(tag, "d" or "f")`` a binary float one. None when the image carries
    no diffusion encoding."""
    b = binary(B_VALUE, "d")
    if b:
        return float(b[0]), unit(binary(DIRECTION, "d"))
    if SIEMENS[1] in text(SIEMENS[0]):
        sb = _number(text(SIEMENS[2]))
        if sb is not None:
            return sb, unit(binary(SIEMENS[3], "d"))
    if GE_B[1] in text(GE_B[0]):
        gb = _number(text(GE_B[2]))
        if gb is not None:
            direction = None
            if GE_DIRECTION[1] in text(GE_DIRECTION[0]) and orientation:
                parts = [_number(text(t)) for t in GE_DIRECTION[2]]
                if all(p is not None for p in parts):
                    direction = _ge_to_lps(parts, orientation)  # type: ignore[arg-type]
            # some GE releases add 10^9 to the b-value
            return float(gb % 1_000_000_000), direction
    if PHILIPS_B[1] in text(PHILIPS_B[0]):
        pb = binary(PHILIPS_B[2], "f")
        if pb:
            direction = None
            if PHILIPS_DIRECTION[1] in text(PHILIPS_DIRECTION[0]):
                parts3 = [binary(t, "f") for t in PHILIPS_DIRECTION[2]]
                if all(parts3):
                    direction = unit([p[0] for p in parts3 if p])
            return float(pb[0]), direction
    return None


def _number(t: str) -> float | None:
    try:
        return float(t.split("\\")[0])
    except ValueError:
        return None


def _ge_to_lps(v: Sequence[float], orientation: Sequence[float]) -> Vec3 | None:
    """GE's direction (image frame, first two axes reversed) in patient coordinates."""
    r, c = orientation[:3], orientation[3:6]
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    a, b, d = -v[0], -v[1], v[2]
    return unit([a * r[i] + b * c[i] + d * n[i] for i in range(3)])


def stack_encoding(series: SeriesRecord) -> tuple[Encoding | None, bool]:
    """The encoding of one volume (a stack of a 4-D series) and whether all of its images
    agree on it (a volume mixing b-values was split wrongly)."""
    found: list[Encoding | None] = []
    for s in series.slices:
        rec = series.instances[s.instance]
        if rec.frame_diffusion is not None and s.frame < len(rec.frame_diffusion):
            found.append(rec.frame_diffusion[s.frame])
        else:
            found.append(rec.diffusion)
    if not found or found[0] is None:
        return None, all(f is None for f in found)
    b0, d0 = found[0]
    same = all(
        f is not None
        and abs(f[0] - b0) < 0.5
        and (f[1] is None) == (d0 is None)
        and (d0 is None or float(np.dot(f[1], d0)) > 0.9999)  # type: ignore[arg-type]
        for f in found
    )
    return found[0], same


def diffusion_labels(encodings: Sequence[Encoding | None]) -> list[str] | None:
    """Labels "b=1000, dir 7/30" (or "b=0") for the volumes of a series, in order; None when
    the series is not a diffusion series (no volume with b > 0, or a volume without an
    encoding)."""
    if not encodings or any(e is None for e in encodings):
        return None
    if not any(e[0] > 0 for e in encodings if e is not None):
        return None
    directions: list[Vec3] = []
    index: list[int | None] = []
    for e in encodings:
        assert e is not None
        if e[0] <= 0 or e[1] is None:
            index.append(None)
            continue
        d = e[1]
        k = next(
            (i for i, o in enumerate(directions) if abs(float(np.dot(o, d))) > 0.9999),
            None,
        )
        if k is None:
            directions.append(d)
            k = len(directions) - 1
        index.append(k)
    out = []
    for e, k in zip(encodings, index, strict=True):
        assert e is not None
        b = f"b={e[0]:g}"
        out.append(b if k is None else f"{b}, dir {k + 1}/{len(directions)}")
    return out


def fsl_bvals_bvecs(
    encodings: Sequence[Encoding | None], direction: np.ndarray, affine_ras: np.ndarray
) -> tuple[str, str]:
    """FSL's ``.bval`` and ``.bvec`` text for the volumes of a 4-D NIfTI whose voxel axes are
    the columns of ``direction`` (LPS) and whose affine is ``affine_ras``: directions in voxel
    coordinates, the first one negated when the affine's determinant is positive (the
    convention FSL and dcm2niix use)."""
    flip = -1.0 if np.linalg.det(affine_ras[:3, :3]) > 0 else 1.0
    bvals, vecs = [], []
    for e in encodings:
        b, d = e if e is not None else (0.0, None)
        bvals.append(f"{b:g}")
        if d is None:
            vecs.append((0.0, 0.0, 0.0))
            continue
        v = np.asarray(direction, dtype=np.float64).T @ np.asarray(d)
        vecs.append((flip * float(v[0]), float(v[1]), float(v[2])))
    bvec = "\n".join(" ".join(f"{v[i]:.6g}" for v in vecs) for i in range(3))
    return " ".join(bvals) + "\n", bvec + "\n"


def binary_floats(value: object, fmt: str, little: bool = True) -> tuple[float, ...] | None:
    """Floats of a binary FD/FL value (raw bytes as stored, or pydicom's converted value)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        size = struct.calcsize(fmt)
        if not value or len(value) % size:
            return None
        return struct.unpack(("<" if little else ">") + fmt * (len(value) // size), value)
    if isinstance(value, (int, float)):
        return (float(value),)
    try:
        return tuple(float(x) for x in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
