"""The values of a report's live fields, computed from the reading as it is now.

Fields (written ``{{kind}}`` or ``{{kind:argument}}`` in a section):

- ``measurements`` all measurements; ``measurement:N`` the N-th
- ``lesions`` the lesion table as lines; ``lesion:N`` one row
- ``segments`` segment volumes; ``segment:NAME`` one segment (by name, any case)
- ``ai`` every AI result with its model, version and the research-use notice
- ``risk`` every kept risk result, with its interval and the research-use notice

A field stays live until the report is signed: then its value is written into the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.notices import RESEARCH_USE
from medview.core.results import Classification, Segmentation, segment_stats
from medview.core.volume import Volume
from medview.report.lesions import LesionRow, lesion_rows

FIELD_HELP = {
    "measurements": "all measurements with their figures",
    "lesions": "the lesion table (diameters, volume, location)",
    "segments": "segment volumes",
    "ai": "AI results with their model and the research-use notice",
    "risk": "risk results with their interval",
}


@dataclass
class Reading:
    """What the fields are computed from: the session's objects, as export content."""

    volume: Volume
    measurements: Sequence[dict[str, Any]] = ()
    segmentation: Segmentation | None = None
    classifications: Sequence[Classification] = ()
    risk: Mapping[str, dict[str, Any]] | None = None


def _joined(lines: list[str], none: str) -> str:
    return "\n".join(lines) if lines else none


def ai_lines(reading: Reading) -> list[str]:
    out = []
    seg = reading.segmentation
    if seg is not None and seg.provenance is not None:
        made = {seg.algorithm_type_of(s) for s in seg.segments}
        if made != {"MANUAL"}:
            p = seg.provenance
            edited = " (edited by hand)" if "SEMIAUTOMATIC" in made else ""
            out.append(f"Segmentation by {p.name} {p.version}{edited}. AI result: {RESEARCH_USE}")
    own = seg.provenance.name if seg is not None and seg.provenance is not None else None
    for s in seg.segments if seg is not None else ():
        if s.algorithm_name and s.algorithm_name != own:  # a clicked nodule's own model
            out.append(
                f"Segment {s.name} by {s.algorithm_name} {s.algorithm_version}. "
                f"AI result: {RESEARCH_USE}"
            )
    for c in reading.classifications:
        p = c.provenance
        if c.finding:
            figure = f"{c.finding} {100 * c.finding_probability:.0f} %"
            if c.interval is not None:
                figure += f" (95 % interval {100 * c.interval[0]:.0f}-{100 * c.interval[1]:.0f} %)"
        else:
            top = max(c.probabilities.items(), key=lambda kv: kv[1])
            figure = f"{top[0]} {100 * top[1]:.0f} %"
        out.append(f"{p.name} {p.version}: {figure}. AI result: {RESEARCH_USE}")
    return out


def risk_lines(reading: Reading) -> list[str]:
    out = []
    for rec in (reading.risk or {}).values():
        r = rec.get("result", {})
        low, high = r.get("interval_95", [float("nan"), float("nan")])
        out.append(
            f"{rec.get('model_name', rec.get('model', 'risk model'))}: {r.get('outcome', 'risk')} "
            f"{100 * float(r.get('probability', float('nan'))):.1f} % (95 % interval "
            f"{100 * float(low):.1f}-{100 * float(high):.1f} %), band {r.get('band', '-')}. "
            f"{r.get('research_use', RESEARCH_USE)}"
        )
    return out


def field_values(reading: Reading, lesions: list[LesionRow] | None = None) -> dict[str, str]:
    """Every field's value now, by key ("lesions", "lesion:1", ...)."""
    from medview.viewer.annotations import Measurement, describe

    volume = reading.volume
    values: dict[str, str] = {}
    lines = []
    for i, d in enumerate(reading.measurements):
        line = f"({i + 1}) {describe(Measurement.from_dict(d), volume)}"
        values[f"measurement:{i + 1}"] = line
        lines.append(line)
    values["measurements"] = _joined(lines, "no measurements")
    rows = (
        lesions
        if lesions is not None
        else lesion_rows(volume, reading.segmentation, reading.measurements)
    )
    for r in rows:
        values[f"lesion:{r.number}"] = f"Lesion {r.number}, {r.line(volume.units)}"
    values["lesions"] = _joined([values[f"lesion:{r.number}"] for r in rows], "no lesion measured")
    seg = reading.segmentation
    seg_lines = []
    if seg is not None:
        stats = seg.stats or tuple(segment_stats(volume, seg.labels.array, seg.segments))
        u = f" {volume.units}" if volume.units else ""
        for st in stats:
            if not st.voxels:
                continue
            line = f"{st.name} {st.volume_ml:.1f} mL"
            if np.isfinite(st.mean):
                line += f", mean {st.mean:.0f}{u}"
            values[f"segment:{st.name.lower()}"] = line
            seg_lines.append(line)
    values["segments"] = _joined(seg_lines, "no segmentation")
    values["ai"] = _joined(ai_lines(reading), "no AI result")
    values["risk"] = _joined(risk_lines(reading), "no risk result")
    return values
