"""The report's lesion table: one row per finding segment and per ruler.

A segment row has its volume, the longest in-plane diameter and the perpendicular short axis
on the slice where the long axis is longest (RECIST 1.1 style, `medview.core.lesion`), the
mean image value, and its location (that slice, and the centre in LPS mm). A lung lesion gets
a Lung-RADS size band as a suggestion: Lung-RADS v2022 bands a baseline solid nodule by its
mean diameter (long + short axis) / 2; the category itself also depends on attenuation,
growth and prior studies, which a mask does not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.lesion import measure_mask
from medview.core.results import Segmentation
from medview.core.volume import Volume

# (upper bound of the mean diameter in mm, category, band) for a baseline solid nodule
LUNG_RADS_SOLID = (
    (6.0, "2", "< 6 mm"),
    (8.0, "3", "6 to < 8 mm"),
    (15.0, "4A", "8 to < 15 mm"),
    (float("inf"), "4B", ">= 15 mm"),
)
LUNG_WORDS = ("nodule", "lung lesion", "lung tumour", "lung tumor", "pulmonary")
# SNOMED CT codes of a lung nodule or lung mass
LUNG_CODES = ("427359005", "786838002", "126713003", "39607008")


@dataclass(frozen=True)
class LesionRow:
    number: int
    name: str
    kind: str  # "segment" or "ruler"
    long_axis_mm: float
    short_axis_mm: float  # NaN for a ruler
    volume_ml: float  # NaN for a ruler
    mean: float  # NaN for a ruler
    slice_number: int  # 1-based, in the series' slice order
    centre_lps: tuple[float, float, float]
    lung_rads: str = ""  # the suggestion, plainly labelled, for a lung lesion

    def line(self, units: str = "") -> str:
        """One line for the report's text."""
        u = f" {units}" if units else ""
        where = (
            f"slice {self.slice_number}, LPS ({', '.join(f'{v:.1f}' for v in self.centre_lps)}) mm"
        )
        if self.kind == "ruler":
            return f"{self.name}: {self.long_axis_mm:.1f} mm ({where})"
        text = (
            f"{self.name}: {self.long_axis_mm:.1f} x {self.short_axis_mm:.1f} mm (long x short "
            f"axis), volume {self.volume_ml:.2f} mL"
        )
        if np.isfinite(self.mean):
            text += f", mean {self.mean:.0f}{u}"
        text += f" ({where})"
        if self.lung_rads:
            text += f". {self.lung_rads}"
        return text


def is_lung_lesion(name: str, code: str = "") -> bool:
    low = name.lower()
    return code in LUNG_CODES or any(w in low for w in LUNG_WORDS)


def lung_rads_band(long_mm: float, short_mm: float) -> str:
    """The Lung-RADS v2022 size band of a baseline solid nodule, as a suggestion."""
    mean = round((long_mm + short_mm) / 2, 1)
    for bound, category, band in LUNG_RADS_SOLID:
        if mean < bound:
            return (
                f"Suggested Lung-RADS size band {category} (baseline solid nodule {band}; mean "
                f"diameter {mean:.1f} mm). A suggestion only: the category also depends on "
                "attenuation, growth and prior studies."
            )
    return ""


def lesion_rows(
    volume: Volume, segmentation: Segmentation | None, measurements: Sequence[dict[str, Any]] = ()
) -> list[LesionRow]:
    """The lesion table of a reading: finding segments first, then rulers."""
    rows: list[LesionRow] = []
    if segmentation is not None:
        from scipy import ndimage

        labels = segmentation.labels.array
        findings = [s for s in segmentation.segments if s.finding]
        boxes = ndimage.find_objects(labels, max_label=max((s.value for s in findings), default=0))
        for s in findings:
            box = boxes[s.value - 1] if s.value - 1 < len(boxes) else None
            if box is None:
                continue
            mask = labels[box] == s.value
            offset = tuple(int(b.start) for b in box)
            m = measure_mask(volume.array[box], mask, volume.geometry, offset)  # type: ignore[arg-type]
            band = ""
            if is_lung_lesion(s.name, s.snomed_code) and volume.modality == "CT":
                band = lung_rads_band(m.long_axis_mm, m.short_axis_mm)
            rows.append(
                LesionRow(
                    len(rows) + 1,
                    s.name,
                    "segment",
                    m.long_axis_mm,
                    m.short_axis_mm,
                    m.volume_ml,
                    m.mean if volume.array.ndim == 3 else float("nan"),
                    m.slice_index + 1,
                    m.centre_lps,
                    band,
                )
            )
    g = volume.geometry
    for i, d in enumerate(measurements):
        if d.get("kind") != "ruler":
            continue
        a, b = (np.asarray(p, dtype=np.float64) for p in d["points"][:2])
        centre = (a + b) / 2
        k = round(float(g.lps_to_index(centre)[0]))
        name = f"measurement {i + 1}" + (f" ({d['text']})" if d.get("text") else "")
        rows.append(
            LesionRow(
                len(rows) + 1,
                name,
                "ruler",
                float(np.linalg.norm(b - a)),
                float("nan"),
                float("nan"),
                float("nan"),
                k + 1,
                tuple(float(v) for v in centre),  # type: ignore[arg-type]
            )
        )
    return rows
