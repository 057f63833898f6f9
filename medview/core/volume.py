"""`Volume`: a read-only image array plus its geometry: the one image type of MedView."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medview.core.geometry import Geometry


@dataclass(frozen=True, eq=False)
class Volume:
    """Pixel data on a grid.

    ``array`` is ``(z, y, x)`` for grey images or ``(z, y, x, 3)`` RGB for colour. Values are
    modality values (rescale slope/intercept applied: HU for CT). MONOCHROME1 data keeps its
    stored values and sets ``invert_display``; the viewer inverts the grey scale.
    """

    array: np.ndarray
    geometry: Geometry
    frame_of_reference_uid: str = ""
    series_uid: str = ""
    modality: str = ""
    description: str = ""
    units: str = ""
    photometric: str = "MONOCHROME2"
    invert_display: bool = False
    window: tuple[float, float] | None = None  # (center, width) from the header
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # one volume of a 4-D series: which ("volume 8 of 31 (b=1000, dir 7/30)"), else ""
    volume_label: str = ""

    def __post_init__(self) -> None:
        if self.array.shape[:3] != self.geometry.shape:
            raise ValueError(
                f"array shape {self.array.shape} does not match geometry {self.geometry.shape}"
            )
        if self.array.flags.writeable:
            self.array.setflags(write=False)

    @property
    def is_color(self) -> bool:
        return self.array.ndim == 4

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)
