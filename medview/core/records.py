"""Records produced by header indexing and series assembly (no pixel data in them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Vec3 = tuple[float, float, float]
Vec6 = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class InstanceRecord:
    """What MedView knows about one DICOM file after reading its header only.

    ``pixel_offset``/``pixel_length`` locate the Pixel Data value in the file
    (``pixel_length == -1`` for encapsulated data; ``pixel_offset == -1`` when there is no pixel
    data, ``-2`` when it is reachable only by parsing the whole dataset, as in deflated files).
    Positions are LPS mm.
    """

    path: str
    file_size: int
    mtime_ns: int
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series_uid: str = ""
    series_number: int | None = None
    series_description: str = ""
    modality: str = ""
    body_part: str = ""
    frame_of_reference_uid: str = ""
    instance_number: int | None = None
    acquisition_number: int | None = None
    # what tells the volumes of a 4-D series apart (images repeating the same positions)
    temporal_position: int | None = None
    trigger_time: float | None = None
    echo_number: int | None = None
    # diffusion: (b-value s/mm², unit gradient direction in LPS or None), for the image or,
    # in an enhanced multi-frame image, for each frame
    diffusion: tuple[float, Vec3 | None] | None = None
    frame_diffusion: tuple[tuple[float, Vec3 | None] | None, ...] | None = None
    image_type: tuple[str, ...] = ()
    rows: int = 0
    columns: int = 0
    frames: int = 1
    samples_per_pixel: int = 1
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0
    photometric: str = ""
    planar_configuration: int = 0
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    rescale_type: str = ""
    window_center: float | None = None
    window_width: float | None = None
    pixel_spacing: tuple[float, float] | None = None  # (row spacing, column spacing) mm
    slice_thickness: float | None = None
    image_position: Vec3 | None = None
    image_orientation: Vec6 | None = None
    gantry_tilt: float = 0.0
    # enhanced multi-frame: one position per frame; shared orientation/spacing above
    frame_positions: tuple[Vec3, ...] | None = None
    frame_rescale: tuple[tuple[float, float], ...] | None = None
    # a Siemens mosaic: (slices, stored rows, stored columns); rows/columns above are a tile's
    mosaic: tuple[int, int, int] | None = None
    pixel_offset: int = -1
    pixel_length: int = 0
    little_endian: bool = True
    implicit_vr: bool = False
    flags: tuple[str, ...] = ()  # header-level anomalies (e.g. executable preamble)

    @property
    def has_pixels(self) -> bool:
        return self.pixel_offset != -1 and self.rows > 0 and self.columns > 0

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel * (self.bits_allocated // 8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InstanceRecord:
        d = dict(d)
        for key in ("image_type", "flags"):
            d[key] = tuple(d.get(key) or ())
        for key in ("pixel_spacing", "image_position", "image_orientation"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        if d.get("frame_positions") is not None:
            d["frame_positions"] = tuple(tuple(p) for p in d["frame_positions"])
        if d.get("mosaic") is not None:
            d["mosaic"] = tuple(d["mosaic"])
        if d.get("diffusion") is not None:
            b, v = d["diffusion"]
            d["diffusion"] = (b, tuple(v) if v is not None else None)
        if d.get("frame_diffusion") is not None:
            d["frame_diffusion"] = tuple(
                None if e is None else (e[0], tuple(e[1]) if e[1] is not None else None)
                for e in d["frame_diffusion"]
            )
        if d.get("frame_rescale") is not None:
            d["frame_rescale"] = tuple(tuple(p) for p in d["frame_rescale"])
        return cls(**d)


@dataclass(frozen=True)
class SliceRef:
    """One 2-D image of a series: ``frame`` of ``instance`` (index into the series'
    instances) at ``position`` (LPS mm of its first pixel), or None when unknown."""

    instance: int
    frame: int
    position: Vec3 | None


@dataclass(frozen=True)
class SeriesRecord:
    """A stackable group of 2-D images: one volume, one 2-D image or one frame sequence.

    ``key`` is unique per assembled stack (the Series Instance UID, plus a suffix when MedView
    split a series that mixed orientations, sizes or localizers).
    """

    key: str
    series_uid: str
    study_uid: str
    patient_id: str
    modality: str
    description: str
    series_number: int | None
    instances: tuple[InstanceRecord, ...]
    slices: tuple[SliceRef, ...]
    kind: str  # "volume" | "image" | "frames"
    warnings: tuple[str, ...] = ()
    # one volume of a 4-D series: e.g. "volume 3 of 10 (time point 3)"; "" otherwise
    volume_label: str = ""

    @property
    def first(self) -> InstanceRecord:
        return self.instances[self.slices[0].instance]

    @property
    def shape(self) -> tuple[int, int, int]:
        f = self.first
        return (len(self.slices), f.rows, f.columns)

    @property
    def is_color(self) -> bool:
        return self.first.samples_per_pixel == 3 or self.first.photometric == "PALETTE COLOR"


@dataclass(frozen=True)
class SkippedFile:
    """A file the import could not use, with the reason a person can read."""

    path: str
    reason: str
    error: str  # error class name, e.g. "NotDicomError"


@dataclass(frozen=True)
class StudyRecord:
    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    study_description: str
    accession_number: str
    series: tuple[SeriesRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    studies: tuple[StudyRecord, ...] = field(default_factory=tuple)


# the derived objects MedView indexes beside the images they annotate (never as images)
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SR_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
        "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
        "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
        "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
        "1.2.840.10008.5.1.4.1.1.88.35",  # Extensible SR
    }
)


def derived_kind(sop_class_uid: str) -> str:
    """ "SEG", "RTSTRUCT" or "SR" for a derived object's SOP class; "" for anything else."""
    if sop_class_uid == SEG_CLASS:
        return "SEG"
    if sop_class_uid == RTSTRUCT_CLASS:
        return "RTSTRUCT"
    return "SR" if sop_class_uid in SR_CLASSES else ""


@dataclass(frozen=True)
class DerivedRecord:
    """A SEG, RTSTRUCT or SR instance: what it is, who made it, and what it references
    (series and SOP instances, frame of reference), read from its header."""

    path: str
    kind: str  # "SEG" | "RTSTRUCT" | "SR"
    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    study_description: str = ""
    series_number: int | None = None
    series_description: str = ""
    date: str = ""  # content date (or series date), YYYYMMDD
    label: str = ""  # content / structure set label, or the SR's document title
    creator: str = ""  # manufacturer and model of the software that wrote it
    algorithm: str = ""  # SEG: the algorithms named by its segments
    items: int = 0  # segments, ROIs or measurement groups
    frame_of_reference_uid: str = ""
    referenced_series: tuple[str, ...] = ()
    referenced_instances: tuple[str, ...] = ()
    file_size: int = 0
    mtime_ns: int = 0

    @property
    def title(self) -> str:
        """One line for the browser and ``medview info``."""
        what = {"SEG": "Segmentation", "RTSTRUCT": "RT structure set", "SR": "Report"}[self.kind]
        count = {"SEG": "segment", "RTSTRUCT": "ROI", "SR": "measurement group"}[self.kind]
        parts = [f"{what}: {self.label or self.series_description or '(no label)'}"]
        if self.items:
            parts.append(f"{self.items} {count}{'s' if self.items != 1 else ''}")
        if self.date:
            d = self.date
            parts.append(f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 else d)
        if self.algorithm:
            parts.append(self.algorithm)
        elif self.creator:
            parts.append(self.creator)
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DerivedRecord:
        d = dict(d)
        d["referenced_series"] = tuple(d.get("referenced_series") or ())
        d["referenced_instances"] = tuple(d.get("referenced_instances") or ())
        return cls(**d)
