"""The Technique section, filled from the series' headers: modality, body part, images and
slice thickness, contrast agent where recorded, kVp and kernel (CT), field strength and
sequence names (MR). No patient data is read into it."""

from __future__ import annotations

from typing import Any

from medview.core.records import SeriesRecord
from medview.core.volume import Volume

MODALITY_NAMES = {
    "CT": "CT",
    "MR": "MR",
    "PT": "PET",
    "NM": "Nuclear medicine",
    "US": "Ultrasound",
    "CR": "Radiograph",
    "DX": "Radiograph",
    "MG": "Mammogram",
    "XA": "Angiogram",
}


def _header(series: SeriesRecord) -> Any:
    import pydicom

    import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)

    for record in series.instances:
        try:
            return pydicom.dcmread(record.path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError, ValueError):
            continue
    return None


def _num(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return ""


def technique_text(series: SeriesRecord, volume: Volume) -> str:
    """One paragraph describing how the series was acquired, from its headers."""
    ds = _header(series)

    def get(key: str) -> str:
        return str(ds.get(key, "") or "").strip() if ds is not None else ""

    modality = get("Modality") or volume.modality
    parts = [MODALITY_NAMES.get(modality, modality or "Imaging")]
    body = get("BodyPartExamined")
    if body:
        parts[0] += f" of the {body.lower()}"
    desc = get("SeriesDescription") or get("ProtocolName")
    sentences = [" ".join(parts) + (f" ({desc})" if desc else "") + "."]
    n = volume.shape[0] if volume.array.ndim >= 3 else 1
    thick = _num(get("SliceThickness"))
    spacing = " x ".join(f"{float(v):.3g}" for v in volume.geometry.spacing[:2])
    sentences.append(
        f"{n} images"
        + (f", slice thickness {thick} mm" if thick else "")
        + f", pixel spacing {spacing} mm."
    )
    agent = get("ContrastBolusAgent")
    route = get("ContrastBolusRoute")
    if agent:
        sentences.append(f"Contrast: {agent}" + (f", {route.lower()}" if route else "") + ".")
    elif modality in ("CT", "MR") and ds is not None and "ContrastBolusAgent" not in ds:
        sentences.append("No contrast agent recorded in the images.")
    if modality == "CT":
        kvp, kernel = _num(get("KVP")), get("ConvolutionKernel")
        extra = [f"{kvp} kVp"] if kvp else []
        if kernel:
            extra.append(f"kernel {kernel}")
        if extra:
            sentences.append(", ".join(extra) + ".")
    if modality == "MR":
        field = _num(get("MagneticFieldStrength"))
        seq = get("SequenceName") or get("ScanningSequence")
        extra = [f"{field} T"] if field else []
        if seq:
            extra.append(f"sequence {seq}")
        tr, te = _num(get("RepetitionTime")), _num(get("EchoTime"))
        if tr and te:
            extra.append(f"TR {tr} ms, TE {te} ms")
        if extra:
            sentences.append(", ".join(extra) + ".")
    return " ".join(t[:1].upper() + t[1:] for t in sentences)
