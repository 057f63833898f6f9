"""Header-only parsing of one DICOM file into an `InstanceRecord` (no pixel data is read).

Every failure becomes a `MedviewError` subclass naming the file and the reason. Declared sizes
are checked against caps and against the file's real size before anything is allocated.
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

from medview.core.errors import (
    DicomReadError,
    MedviewError,
    NotAnImageError,
    NotDicomError,
    ResourceLimitError,
)
from medview.core.records import InstanceRecord
from medview.io import diffusion
from medview.io.fastheader import read_fast_header
from medview.io.mosaic import mosaic_layout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
from medview.io.header_values import (
    TEXT_TAGS,  # noqa: F401  (re-exported)
    WANTED_TAGS,
    T,
    _Accessor,
    _f,
    _Fast,
    _positive,
    _Raw,
)
from medview.io.multiframe import _frame_diffusion, _functional, _item, _multiframe_geometry

# pydicom is imported only where a file needs it (the fallback path, mosaics, enhanced
# multi-frame): its import costs about 0.25 s, more than indexing a 300-file CT takes on the
# fast path, so `medview load` of ordinary files never pays for it.
DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
ImplicitVRLittleEndian = "1.2.840.10008.1.2"

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_PIXEL_DATA = 0x7FE00009
# Elements larger than this stay on disk during header parsing (pixel data, big private blobs),
# so a forged length never makes us read or allocate it.
DEFER_SIZE = 2048
# Decoded pixel data above this is refused before allocation (a 2,000-slice 512x512 float32
# stack is 2 GiB; nothing a workstation shows legitimately comes near this).
MAX_DECODED_BYTES = 16 * 1024**3
MAX_FRAMES = 100_000
# A deflated dataset is inflated whole by pydicom: bound it first (deflate bombs).
MAX_INFLATED_BYTES = 1024**3
MEDIA_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"
DEFLATED_UID = DeflatedExplicitVRLittleEndian.encode()
HEAD_BYTES = 1024  # preamble + file meta of ordinary files
EXECUTABLE_PREAMBLES = {b"MZ": "Windows executable (MZ)", b"\x7fELF": "ELF executable"}


def check_preamble(head: bytes) -> tuple[str, ...]:
    """Flags for a preamble that is also an executable header (CVE-2019-11687 polyglots)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        for magic, what in EXECUTABLE_PREAMBLES.items():
            if head.startswith(magic):
                return (f"preamble holds a {what} header: file may be a polyglot; not executed",)
    return ()


def _check_inflated_size(path: str, fp: BinaryIO) -> None:
    """Refuse a deflated dataset whose inflated size exceeds `MAX_INFLATED_BYTES`."""
    from medview.io.dicom import pydicom

    meta = pydicom.filereader.read_file_meta_info(path)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return
    if "FileMetaInformationGroupLength" not in meta:  # Type 1: required to find the stream
        raise DicomReadError("deflated file without File Meta Information Group Length", path=path)
    fp.seek(132 + 12 + int(meta.FileMetaInformationGroupLength))
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while chunk := fp.read(1 << 20):
        while chunk:
            total += len(inflater.decompress(chunk, 1 << 24))
            if total > MAX_INFLATED_BYTES:
                raise ResourceLimitError(
                    f"deflated dataset inflates beyond {MAX_INFLATED_BYTES // 1024**2} MiB",
                    path=path,
                )
            chunk = inflater.unconsumed_tail
    fp.seek(0)


def _may_be_raw(head: bytes) -> bool:
    """Whether a file without the DICM marker may be a bare dataset (old ACR-NEMA style files
    start with an element of a low group, usually 0008, little or big endian): anything else
    is not DICOM and never reaches pydicom's forced parse."""
    if len(head) < 8:
        return False
    little, big = int.from_bytes(head[:2], "little"), int.from_bytes(head[:2], "big")
    return min(little, big) <= 0x0008


def _open_dataset(fp: BinaryIO, path: str, head: bytes) -> Dataset:
    from medview.io.dicom import pydicom

    has_preamble = len(head) >= 132 and head[128:132] == b"DICM"
    try:
        if has_preamble and DEFLATED_UID in head:
            _check_inflated_size(path, fp)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(fp, defer_size=DEFER_SIZE, force=not has_preamble)
        for w in caught:
            text = str(w.message)
            if "End of file reached" in text or "truncated" in text.lower():
                raise DicomReadError(f"truncated: {text}", path=path)
        return ds
    except pydicom.errors.InvalidDicomError as e:
        raise NotDicomError(f"not a DICOM file ({e})", path=path) from e
    except (
        EOFError,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        MemoryError,
        RecursionError,
        NotImplementedError,
    ) as e:
        if has_preamble:
            raise DicomReadError(
                f"unreadable DICOM header: {type(e).__name__}: {e}", path=path
            ) from e
        raise NotDicomError(
            "not a DICOM file (no DICM marker and no parseable header)", path=path
        ) from e


def parse_header(path: str | os.PathLike[str], *, fast: bool = True) -> InstanceRecord:
    """Read the header of ``path`` and return its `InstanceRecord`.

    ``fast=False`` skips the fast walk (`medview.io.fastheader`) and always uses pydicom.

    Raises a `MedviewError` subclass (never anything else) when the file cannot be used.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
        if st.st_size == 0:
            raise NotDicomError("empty file (0 bytes)", path=p)
        with open(p, "rb") as fp:
            head = fp.read(HEAD_BYTES)
            flags = check_preamble(head)
            fh = read_fast_header(fp, st.st_size, head, WANTED_TAGS) if fast else None
            if fh is not None:
                rec = _record(
                    _Fast(fh),
                    fh.transfer_syntax,
                    fh.media_class,
                    True,
                    fh.pixel,
                    p,
                    st.st_size,
                    st.st_mtime_ns,
                    flags,
                )
                if "MOSAIC" not in rec.image_type:
                    return rec
                # a Siemens mosaic: its layout is in the private CSA header (pydicom reads it)
            if not (len(head) >= 132 and head[128:132] == b"DICM") and not _may_be_raw(head):
                # a stray README or image beside the DICOM files: told apart without pydicom
                raise NotDicomError(
                    "not a DICOM file (no DICM marker and no DICOM identifiers)", path=p
                )
            fp.seek(0)
            ds = _open_dataset(fp, p, head)
            return _from_dataset(ds, p, st.st_size, st.st_mtime_ns, flags)
    except MedviewError:
        raise
    except RecursionError as e:
        raise DicomReadError("sequences nested too deeply", path=p) from e
    except MemoryError as e:
        raise ResourceLimitError("header declares more data than memory allows", path=p) from e
    except Exception as e:  # untrusted input: every failure maps to a typed error
        raise DicomReadError(f"unreadable DICOM header: {type(e).__name__}: {e}", path=p) from e


def _is_image_storage(sop_class: str) -> bool:
    from medview.io.dicom import pydicom

    return "Image Storage" in pydicom.uid.UID(sop_class).name


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return str(ts)
    # no meta: pydicom detected the encoding while reading
    implicit = getattr(ds, "is_implicit_VR", None)
    if getattr(ds, "original_encoding", None):
        implicit, little = ds.original_encoding
        if not little:
            return "1.2.840.10008.1.2.2"
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _from_dataset(
    ds: Dataset, path: str, size: int, mtime_ns: int, flags: tuple[str, ...]
) -> InstanceRecord:
    meta = getattr(ds, "file_meta", None)
    media_class = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    pixel: tuple[int, int] | None = None
    for tag in (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA):
        if tag in ds:
            pix = ds.get_item(tag, keep_deferred=True)
            offset = int(getattr(pix, "value_tell", -1) or -1)
            length = getattr(pix, "length", None)
            if length is None:  # already read into memory (small element)
                length = len(getattr(pix, "value", b"") or b"")
            pixel = (offset, -1 if length == 0xFFFFFFFF else int(length))
            break
    return _record(
        _Raw(ds),
        _transfer_syntax(ds),
        media_class,
        meta is not None and len(meta) > 0,
        pixel,
        path,
        size,
        mtime_ns,
        flags,
        ds,
    )


def _record(
    r: _Accessor,
    ts: str,
    media_class: str,
    has_meta: bool,
    pixel: tuple[int, int] | None,
    path: str,
    size: int,
    mtime_ns: int,
    flags: tuple[str, ...],
    ds: Dataset | None = None,
) -> InstanceRecord:
    """Build the record from element values (``r``) and file-level facts. ``ds`` is the full
    pydicom dataset when there is one (enhanced multi-frame geometry needs its sequences)."""
    sop_class = r.text(T["SOPClassUID"])
    sop_inst = r.text(T["SOPInstanceUID"])
    if MEDIA_DIRECTORY_SOP_CLASS in (sop_class, media_class):
        raise NotAnImageError(
            "DICOMDIR media directory (its referenced files are imported)", path=path
        )
    if not sop_inst and not sop_class and not r.text(T["Modality"]):
        if has_meta:
            raise DicomReadError(
                "no SOP Class/Instance UID or Modality after the file meta "
                "information (truncated or incomplete file)",
                path=path,
            )
        raise NotDicomError("not a DICOM file (no DICM marker and no DICOM identifiers)", path=path)
    # pydicom inflates deflated datasets in memory: offsets refer to that stream, not the file
    in_file = ts != DeflatedExplicitVRLittleEndian
    pix = pixel
    rows = r.us(T["Rows"])
    cols = r.us(T["Columns"])
    frames = r.integer(T["NumberOfFrames"], 1) or 1
    spp = r.us(T["SamplesPerPixel"], 1) or 1
    bits_alloc = r.us(T["BitsAllocated"])
    pixel_offset, pixel_length = pixel if pixel is not None else (-1, 0)

    if pix is None and _is_image_storage(sop_class or media_class):
        raise DicomReadError(
            "truncated or incomplete: an image object without Pixel Data", path=path
        )
    if pix is not None:
        if rows <= 0 or cols <= 0 or frames <= 0 or spp not in (1, 3, 4):
            raise DicomReadError(
                f"invalid image size Rows={rows} Columns={cols} Frames={frames} "
                f"SamplesPerPixel={spp}",
                path=path,
            )
        if bits_alloc not in (1, 8, 16, 32, 64):
            raise DicomReadError(f"unsupported BitsAllocated={bits_alloc}", path=path)
        if frames > MAX_FRAMES:
            raise ResourceLimitError(f"{frames} frames exceeds the cap of {MAX_FRAMES}", path=path)
        decoded = rows * cols * frames * spp * max(bits_alloc, 8) // 8
        if decoded > MAX_DECODED_BYTES:
            raise ResourceLimitError(
                f"declared image of {decoded / 1024**3:.1f} GiB "
                f"({rows}x{cols}x{frames}) exceeds the {MAX_DECODED_BYTES // 1024**3} GiB cap",
                path=path,
            )
        photometric = r.text(T["PhotometricInterpretation"]).upper()
        if pixel_offset >= 0 and pixel_length >= 0:
            if in_file and pixel_offset + pixel_length > size:
                raise DicomReadError(
                    f"truncated: pixel data declares {pixel_length} bytes but the file ends "
                    f"{size - pixel_offset} bytes after its start",
                    path=path,
                )
            if bits_alloc == 1:
                expected = (rows * cols * frames + 7) // 8
            else:
                expected = rows * cols * frames * spp * bits_alloc // 8
                if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
                    expected = expected * 2 // 3  # chroma subsampled horizontally
            if pixel_length < expected:
                raise DicomReadError(
                    f"truncated: pixel data holds {pixel_length} bytes, "
                    f"{expected} expected for {rows}x{cols}x{frames}",
                    path=path,
                )
        elif in_file and pixel_offset >= 0 and pixel_offset >= size:
            raise DicomReadError("truncated: no encapsulated pixel data", path=path)

    pixel_spacing = _positive(r.vec(T["PixelSpacing"], 2))
    slice_thickness = r.number(T["SliceThickness"])
    position = r.vec(T["ImagePositionPatient"], 3)
    orientation = r.vec(T["ImageOrientationPatient"], 6)
    frame_positions = frame_rescale = None
    if frames > 1 and ds is not None and "PerFrameFunctionalGroupsSequence" in ds:
        sp, th, ori, frame_positions, frame_rescale, mf_flags = _multiframe_geometry(ds, frames)
        flags = flags + mf_flags
        pixel_spacing = sp or pixel_spacing
        slice_thickness = th if th is not None else slice_thickness
        orientation = ori or orientation
        if frame_positions:
            position = frame_positions[0]
    if pixel_spacing is None:
        # projection radiography: spacing at the detector is the best we have
        pixel_spacing = _positive(r.vec(T["ImagerPixelSpacing"], 2))
    mosaic = None
    image_type = tuple(x for x in r.text(T["ImageType"]).split("\\") if x)
    if "MOSAIC" in image_type and frames == 1 and ds is not None:
        layout, why = mosaic_layout(ds, rows, cols, orientation, position, pixel_spacing)
        if layout is None:
            flags = (*flags, f"{why}: shown as the stored mosaic, not unpacked")
        else:
            mosaic = (layout.tiles, rows, cols)
            rows, cols, frames = layout.tile_rows, layout.tile_cols, layout.tiles
            frame_positions = layout.positions
            position = frame_positions[0]
    slope = r.number(T["RescaleSlope"], 1.0)
    intercept = r.number(T["RescaleIntercept"], 0.0)
    window_center, window_width = r.number(T["WindowCenter"]), r.number(T["WindowWidth"])
    if window_center is None and ds is not None and "PerFrameFunctionalGroupsSequence" in ds:
        # enhanced multi-frame: the scanner's window lives in the functional groups
        try:
            first_frame = ds.PerFrameFunctionalGroupsSequence[0]
        except (IndexError, TypeError, AttributeError):
            first_frame = None
        groups = (first_frame, _item(ds, "SharedFunctionalGroupsSequence"))
        voi = _functional(groups, "FrameVOILUTSequence")
        if voi is not None:
            window_center, window_width = _f(voi, "WindowCenter"), _f(voi, "WindowWidth")
    frame_diffusion = None
    if frames > 1 and ds is not None and "PerFrameFunctionalGroupsSequence" in ds:
        frame_diffusion = _frame_diffusion(ds, frames)
    encoding = diffusion.read_encoding(r.text, r.binary, orientation)
    if frame_rescale and len(set(frame_rescale)) == 1:
        slope, intercept = frame_rescale[0]
        frame_rescale = None

    return InstanceRecord(
        path=path,
        file_size=size,
        mtime_ns=mtime_ns,
        sop_instance_uid=sop_inst,
        sop_class_uid=sop_class,
        transfer_syntax_uid=ts,
        patient_id=r.ptext("PatientID"),
        patient_name=r.ptext("PatientName"),
        patient_birth_date=r.text(T["PatientBirthDate"]),
        patient_sex=r.text(T["PatientSex"]),
        patient_age=r.text(T["PatientAge"]),
        study_uid=r.text(T["StudyInstanceUID"]),
        study_date=r.text(T["StudyDate"]),
        study_time=r.text(T["StudyTime"]),
        study_description=r.ptext("StudyDescription"),
        accession_number=r.ptext("AccessionNumber"),
        series_uid=r.text(T["SeriesInstanceUID"]),
        series_number=r.integer(T["SeriesNumber"]),
        series_description=r.ptext("SeriesDescription"),
        modality=r.text(T["Modality"]),
        body_part=r.ptext("BodyPartExamined"),
        frame_of_reference_uid=r.text(T["FrameOfReferenceUID"]),
        instance_number=r.integer(T["InstanceNumber"]),
        acquisition_number=r.integer(T["AcquisitionNumber"]),
        temporal_position=r.integer(T["TemporalPositionIdentifier"]),
        trigger_time=r.number(T["TriggerTime"]),
        echo_number=r.integer(T["EchoNumbers"]),
        diffusion=encoding,
        frame_diffusion=frame_diffusion,
        image_type=image_type,
        rows=rows,
        columns=cols,
        frames=frames,
        samples_per_pixel=spp,
        bits_allocated=bits_alloc,
        bits_stored=r.us(T["BitsStored"], bits_alloc) or bits_alloc,
        pixel_representation=r.us(T["PixelRepresentation"]),
        photometric=r.text(T["PhotometricInterpretation"]).upper(),
        planar_configuration=r.us(T["PlanarConfiguration"]),
        rescale_slope=slope if slope else 1.0,
        rescale_intercept=intercept or 0.0,
        rescale_type=r.ptext("RescaleType"),
        window_center=window_center,
        window_width=window_width,
        pixel_spacing=(pixel_spacing[0], pixel_spacing[1]) if pixel_spacing else None,
        slice_thickness=slice_thickness,
        image_position=(position[0], position[1], position[2]) if position else None,
        image_orientation=tuple(orientation) if orientation else None,  # type: ignore[arg-type]
        gantry_tilt=r.number(T["GantryDetectorTilt"], 0.0) or 0.0,
        frame_positions=frame_positions,
        frame_rescale=frame_rescale,
        mosaic=mosaic,
        pixel_offset=pixel_offset if in_file else -2,
        pixel_length=pixel_length,
        little_endian=ts != "1.2.840.10008.1.2.2",
        implicit_vr=ts == ImplicitVRLittleEndian,
        flags=flags,
    )


def require_image(rec: InstanceRecord) -> InstanceRecord:
    """Raise `NotAnImageError` for objects without pixel data (SR, RT plan, ...)."""
    if not rec.has_pixels:
        raise NotAnImageError("no image pixel data (e.g. a report or RT object)", path=rec.path)
    return rec


def iter_headers(paths: Iterable[str]) -> Iterable[InstanceRecord | MedviewError]:
    for p in paths:
        try:
            yield parse_header(p)
        except MedviewError as e:
            yield e
