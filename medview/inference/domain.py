"""Is this series what the model was made for, and is its answer plausible?

Checked from the manifest (`medview.inference.manifest.Domain`): modality, body part where the
header gives one, localizers and 2-D images, a minimum number of slices and a plausible voxel
spacing before a run; the volume of each label against a plausible range after it. A model
run outside its domain is refused; the reader can run it anyway, and the result then says so
wherever it goes (the panel, the SEG, the report).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medview.core.errors import InferenceError
from medview.core.notices import IMPLAUSIBLE, OUTSIDE_DOMAIN
from medview.core.records import SeriesRecord
from medview.core.volume import Volume
from medview.inference.manifest import ModelManifest

# Body Part Examined values that name the same region (DICOM PS3.16 CID 4031 and scanner habits)
SYNONYMS = {
    "CHEST": (
        "CHEST",
        "THORAX",
        "LUNG",
        "LUNGS",
        "CHEST_ABDOMEN",
        "CHESTABDOMEN",
        "CHEST_TO_PELVIS",
    ),
    "HEAD": ("HEAD", "BRAIN", "SKULL", "HEAD_NECK", "HEADNECK"),
}


@dataclass(frozen=True)
class SeriesFacts:
    """What the checks need from the header, beyond the volume itself."""

    body_part: str = ""
    image_type: tuple[str, ...] = ()
    kind: str = "volume"

    @classmethod
    def of(cls, series: SeriesRecord | None) -> SeriesFacts:
        if series is None:
            return cls()
        f = series.first
        return cls(f.body_part, tuple(f.image_type), series.kind)


def input_problems(volume: Volume, manifest: ModelManifest, facts: SeriesFacts) -> list[str]:
    """Why ``volume`` is outside ``manifest``'s domain, in sentences; empty when it is in."""
    d = manifest.domain
    problems = []
    modalities = d.modalities or ((manifest.modality.upper(),) if manifest.modality else ())
    if modalities and volume.modality.upper() not in modalities:
        problems.append(
            f"it is made for {'/'.join(modalities)}; this series is "
            f"{volume.modality or 'of unknown modality'}"
        )
    parts = d.body_parts or SYNONYMS.get(manifest.body_part.upper(), ())
    if parts and facts.body_part and facts.body_part.upper() not in parts:
        problems.append(
            f"it is made for the {manifest.body_part.lower()}; the header says {facts.body_part}"
        )
    if "LOCALIZER" in (t.upper() for t in facts.image_type):
        problems.append("this series is a localizer (scout), not a diagnostic volume")
    elif facts.kind != "volume" and manifest.dimensions == 3:
        problems.append("this series is a 2-D image, not a volume")
    if volume.shape[0] < d.min_slices:
        problems.append(
            f"it needs at least {d.min_slices} slices; this series has {volume.shape[0]}"
        )
    if d.spacing_mm is not None:
        lo, hi = d.spacing_mm
        spacing = [float(v) for v in volume.geometry.spacing]
        if volume.shape[0] < 2:
            spacing = spacing[:2]  # a lone slice has no spacing between slices
        if any(not lo <= s <= hi for s in spacing):
            shown = " x ".join(f"{s:.2g}" for s in spacing)
            problems.append(f"voxel spacing {shown} mm is outside the expected {lo:g}-{hi:g} mm")
    return problems


def output_problems(volumes_ml: dict[int, float], manifest: ModelManifest) -> list[str]:
    """Labels whose volume lies outside the manifest's plausible range."""
    names = {lb.value: lb.name for lb in manifest.labels}
    out = []
    for value, lo, hi in manifest.domain.plausible_ml:
        ml = volumes_ml.get(value, 0.0)
        if not lo <= ml <= hi:
            out.append(
                f"{IMPLAUSIBLE}: {names.get(value, value)} {ml:.0f} mL is outside the "
                f"plausible {lo:g}-{hi:g} mL"
            )
    return out


def outside_note(problems: list[str]) -> str:
    return f"{OUTSIDE_DOMAIN}, run anyway: " + "; ".join(problems)


class OutsideDomainError(InferenceError):
    """The series is not what the model was made for (the reader may run it anyway)."""


def run_in_domain(
    run: Callable[..., Any],
    volume: Volume,
    manifest: ModelManifest,
    facts: SeriesFacts,
    *,
    anyway: bool = False,
    **kwargs: Any,
) -> Any:
    """``run(volume, manifest, **kwargs)`` after the input checks; the result's notes say
    when it ran outside the domain (``anyway``) or gave an implausible answer."""
    problems = input_problems(volume, manifest, facts)
    if problems and not anyway:
        raise OutsideDomainError(
            f"{manifest.name} refused this series: " + "; ".join(problems) + "."
        )
    result = run(volume, manifest, **kwargs)
    notes = [outside_note(problems)] if problems else []
    stats = getattr(result, "stats", None)
    if stats is not None:
        notes += output_problems({s.value: s.volume_ml for s in stats}, manifest)
    if not notes:
        return result
    return dataclasses.replace(result, notes=(*notes, *result.notes))
