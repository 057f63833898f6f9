"""Image grid geometry in DICOM patient coordinates (LPS, millimetres).

Conventions (shared by every array in MedView):

* arrays are indexed ``[z, y, x]`` (slice, row, column);
* ``spacing`` and ``origin`` are given in ``(x, y, z)`` order, like ITK/SimpleITK;
* ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the x (along a row),
  y (down a column) and z (slice) axes;
* ``affine`` maps a homogeneous index ``(x, y, z, 1)`` to LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Geometry:
    """A regular grid: ``shape`` (z, y, x), ``origin`` (LPS mm of voxel [0,0,0]), ``spacing``
    (x, y, z mm), ``direction`` (3x3, columns are axis unit vectors in LPS)."""

    shape: tuple[int, int, int]
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "origin", _frozen(self.origin).reshape(3))
        object.__setattr__(self, "spacing", _frozen(self.spacing).reshape(3))
        object.__setattr__(self, "direction", _frozen(self.direction).reshape(3, 3))
        if len(self.shape) != 3:
            raise ValueError("Geometry.shape must be (z, y, x)")
        if np.any(self.spacing <= 0):
            raise ValueError(f"spacing must be positive, got {self.spacing.tolist()}")

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping index (x, y, z, 1) to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing[np.newaxis, :]
        a[:3, 3] = self.origin
        return a

    def index_to_lps(self, zyx: np.ndarray) -> np.ndarray:
        """LPS mm of array indices given as ``(..., 3)`` in (z, y, x) order."""
        zyx = np.asarray(zyx, dtype=np.float64)
        xyz = zyx[..., ::-1]
        return xyz @ (self.direction * self.spacing).T + self.origin

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """Continuous array indices (z, y, x) of LPS points given as ``(..., 3)``."""
        lps = np.asarray(lps, dtype=np.float64)
        m = np.linalg.inv(self.direction * self.spacing)
        xyz = (lps - self.origin) @ m.T
        return xyz[..., ::-1]

    def almost_equal(self, other: Geometry, tol: float = 1e-4) -> bool:
        return (
            self.shape == other.shape
            and bool(np.allclose(self.origin, other.origin, atol=tol))
            and bool(np.allclose(self.spacing, other.spacing, atol=tol))
            and bool(np.allclose(self.direction, other.direction, atol=tol))
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "shape": list(self.shape),
            "origin": self.origin.tolist(),
            "spacing": self.spacing.tolist(),
            "direction": self.direction.tolist(),
        }
