"""Reading values out of a DICOM header: the tags MedView reads, and one accessor over a pydicom
dataset or a fast-path header, so both paths read a value the same way.
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import TYPE_CHECKING

from medview.io import diffusion
from medview.io.fastheader import FastHeader

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


class _Accessor:
    """Reads of plain ASCII (UI, CS, DS, IS, DA, TM, AS) and binary (US) element values.

    Hand-written with a measured reason: pydicom's per-element conversion was ~60 % of the
    header-index time (300-file CT: 170 of 286 ms).
    """

    little = True

    def _value(self, tag: int) -> object:
        raise NotImplementedError

    def ptext(self, keyword: str) -> str:
        """Text whose decoding depends on the Specific Character Set (PN, LO, SH)."""
        raise NotImplementedError

    def text(self, tag: int) -> str:
        v = self._value(tag)
        if v is None:
            return ""
        if isinstance(v, bytes):
            return v.decode("latin-1").strip(" \x00")
        if isinstance(v, MutableSequence):  # pydicom's MultiValue
            return "\\".join(str(x) for x in v)
        return str(v).strip()

    def floats(self, tag: int) -> tuple[float, ...] | None:
        t = self.text(tag)
        if not t:
            return None
        try:
            return tuple(float(x) for x in t.split("\\"))
        except ValueError:
            return None

    def number(self, tag: int, default: float | None = None) -> float | None:
        v = self.floats(tag)
        return v[0] if v else default

    def integer(self, tag: int, default: int | None = None) -> int | None:
        v = self.floats(tag)
        if not v or v[0] != v[0] or abs(v[0]) > 2**31:
            return default
        return int(v[0]) if v[0] == int(v[0]) else default

    def us(self, tag: int, default: int = 0) -> int:
        v = self._value(tag)
        if isinstance(v, bytes):
            return (
                int.from_bytes(v[:2], "little" if self.little else "big")
                if len(v) >= 2
                else default
            )
        try:
            return int(v) if v is not None else default  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return default

    def vec(self, tag: int, n: int) -> tuple[float, ...] | None:
        v = self.floats(tag)
        return v if v is not None and len(v) == n else None

    def binary(self, tag: int, fmt: str) -> tuple[float, ...] | None:
        """A binary float value (FD: ``"d"``, FL: ``"f"``)."""
        return diffusion.binary_floats(self._value(tag), fmt, self.little)


class _Raw(_Accessor):
    """Values of a pydicom dataset, read from the raw element bytes where possible."""

    __slots__ = ("ds", "little")

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        enc = getattr(ds, "original_encoding", None)
        self.little = bool(enc[1]) if enc and enc[1] is not None else True

    def _value(self, tag: int) -> object:
        """Raw bytes of a not-yet-converted element, else pydicom's converted value."""
        try:
            elem = self.ds.get_item(tag, keep_deferred=True)
        except Exception:  # untrusted file: an unreadable element counts as absent
            return None
        return None if elem is None else elem.value

    def ptext(self, keyword: str) -> str:
        return _s(self.ds, keyword)


class _Fast(_Accessor):
    """Values collected by `medview.io.fastheader`."""

    __slots__ = ("fh",)

    def __init__(self, fh: FastHeader) -> None:
        self.fh = fh

    def _value(self, tag: int) -> object:
        return self.fh.values.get(tag)

    def ptext(self, keyword: str) -> str:
        v = self.fh.values.get(TEXT_TAGS[keyword])
        if v is None:
            return ""
        return v.decode(self.fh.text_encoding, "replace").strip(" \x00")


# tags of the keywords read (DICOM's data dictionary; tests/io/test_header.py checks them
# against pydicom's, which is not imported here)
T: dict[str, int] = {
    "SOPClassUID": 0x00080016,
    "SOPInstanceUID": 0x00080018,
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
    "FrameOfReferenceUID": 0x00200052,
    "Modality": 0x00080060,
    "PatientSex": 0x00100040,
    "PatientBirthDate": 0x00100030,
    "PatientAge": 0x00101010,
    "StudyDate": 0x00080020,
    "StudyTime": 0x00080030,
    "SeriesNumber": 0x00200011,
    "InstanceNumber": 0x00200013,
    "AcquisitionNumber": 0x00200012,
    "TemporalPositionIdentifier": 0x00200100,
    "TriggerTime": 0x00181060,
    "EchoNumbers": 0x00180086,
    "ImageType": 0x00080008,
    "Rows": 0x00280010,
    "Columns": 0x00280011,
    "NumberOfFrames": 0x00280008,
    "SamplesPerPixel": 0x00280002,
    "BitsAllocated": 0x00280100,
    "BitsStored": 0x00280101,
    "PixelRepresentation": 0x00280103,
    "PhotometricInterpretation": 0x00280004,
    "PlanarConfiguration": 0x00280006,
    "RescaleSlope": 0x00281053,
    "RescaleIntercept": 0x00281052,
    "WindowCenter": 0x00281050,
    "WindowWidth": 0x00281051,
    "PixelSpacing": 0x00280030,
    "SliceThickness": 0x00180050,
    "ImagePositionPatient": 0x00200032,
    "ImageOrientationPatient": 0x00200037,
    "GantryDetectorTilt": 0x00181120,
    "ImagerPixelSpacing": 0x00181164,
}


TEXT_TAGS: dict[str, int] = {
    "PatientID": 0x00100020,
    "PatientName": 0x00100010,
    "StudyDescription": 0x00081030,
    "SeriesDescription": 0x0008103E,
    "AccessionNumber": 0x00080050,
    "BodyPartExamined": 0x00180015,
    "RescaleType": 0x00281054,
}


WANTED_TAGS = frozenset(T.values()) | frozenset(TEXT_TAGS.values()) | diffusion.TAGS


def _s(ds: Dataset, keyword: str) -> str:
    try:
        v = ds.get(keyword)
    except Exception:  # an invalid optional value counts as absent
        return ""
    if v is None:
        return ""
    if isinstance(v, MutableSequence):  # pydicom's MultiValue
        return "\\".join(str(x) for x in v)
    return str(v).strip()


def _f(ds: Dataset, keyword: str, default: float | None = None) -> float | None:
    try:
        v = ds.get(keyword)
        if v is None or v == "":
            return default
        if isinstance(v, MutableSequence):  # pydicom's MultiValue
            v = v[0]
        return float(v)
    except Exception:  # an invalid optional value counts as absent
        return default


def _vec(ds: Dataset | None, keyword: str, n: int) -> tuple[float, ...] | None:
    if ds is None:
        return None
    try:
        v = ds.get(keyword)
        if v is None:
            return None
        vals = tuple(float(x) for x in v)
    except Exception:  # an invalid optional value counts as absent
        return None
    return vals if len(vals) == n else None


def _positive(v: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """Spacing values must be positive; anything else counts as absent."""
    return v if v is not None and all(x > 0 for x in v) else None
