"""Writing a grey volume as a standard single-frame CT or MR DICOM series.

The files carry every module `dciodvfy` checks for these IODs (SimpleITK's own writer misses
several), in explicit VR little endian or a lossless compressed transfer syntax. Output file
names are ``IM00001.dcm``... and never come from DICOM values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview import __version__
from medview.core.atomic import atomic_path
from medview.core.geometry import Geometry

# derived under pydicom's UID root, so it is unique without a root of our own
IMPLEMENTATION_UID = generate_uid(entropy_srcs=["MedView implementation class"])
COMPRESSED = {"jpeg-ls": JPEGLSLossless, "rle": RLELossless, "jpeg2000": JPEG2000Lossless}


@dataclass(frozen=True)
class SeriesInfo:
    """Identifying and descriptive values for a written series. UIDs are derived from ``seed``
    so that regenerating the same data gives byte-identical files."""

    seed: str
    modality: str = "CT"
    patient_name: str = "Anonymous"
    patient_id: str = "ANON"
    patient_sex: str = "O"
    patient_birth_date: str = ""
    study_description: str = ""
    series_description: str = ""
    body_part: str = ""
    study_date: str = "20000101"
    study_time: str = "120000"
    series_number: int = 1
    accession_number: str = ""
    window: tuple[float, float] | None = None
    institution: str = ""
    patient_position: str = "HFS"  # Patient Position (0018,5100): HFS, HFP, HFDL, ...


def _uid(seed: str, what: str) -> str:
    return str(generate_uid(entropy_srcs=[seed, what]))


def write_series(
    values: np.ndarray,
    geometry: Geometry,
    out_dir: str | os.PathLike[str],
    info: SeriesInfo,
    *,
    transfer_syntax: str = "explicit",
    rescale_intercept: float = 0.0,
) -> list[str]:
    """Write ``values`` (z, y, x modality values: HU for CT) as one file per slice.

    Stored values are ``values - rescale_intercept`` (slope 1). Returns the written paths.
    """
    if values.ndim != 3 or values.shape != geometry.shape:
        raise ValueError("values must be (z, y, x) and match the geometry")
    stored = np.asarray(values) - rescale_intercept
    lo, hi = int(stored.min()), int(stored.max())
    signed = lo < 0
    if (signed and (lo < -32768 or hi > 32767)) or (not signed and hi > 65535):
        raise ValueError("values do not fit 16-bit storage")
    stored = stored.astype(np.int16 if signed else np.uint16)
    bits_stored = 16
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    ts: str = COMPRESSED.get(transfer_syntax, ExplicitVRLittleEndian)
    sop_class: str = CTImageStorage if info.modality == "CT" else MRImageStorage
    study_uid = _uid(info.seed, "study")
    series_uid = _uid(info.seed, f"series{info.series_number}")
    for_uid = _uid(info.seed, "frame-of-reference")
    row_dir = geometry.direction[:, 0]
    col_dir = geometry.direction[:, 1]
    sx, sy, sz = geometry.spacing
    paths = []
    for z in range(geometry.shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
        sop_uid = _uid(info.seed, f"{info.series_number}/{z}")
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = IMPLEMENTATION_UID
        ds.file_meta.ImplementationVersionName = f"MEDVIEW_{__version__}"[:16]
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = (
            ["ORIGINAL", "PRIMARY", "AXIAL"]
            if info.modality == "CT"
            else ["ORIGINAL", "PRIMARY", "OTHER"]
        )
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = info.study_date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = info.study_time
        ds.AccessionNumber = info.accession_number
        ds.Modality = info.modality
        ds.Manufacturer = "MedView"
        ds.InstitutionName = info.institution
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = info.study_description
        ds.SeriesDescription = info.series_description
        ds.ManufacturerModelName = "MedView series writer"
        ds.PatientName = info.patient_name
        ds.PatientID = info.patient_id
        ds.PatientBirthDate = info.patient_birth_date
        ds.PatientSex = info.patient_sex
        ds.BodyPartExamined = info.body_part
        ds.SliceThickness = f"{sz:.6g}"
        ds.SoftwareVersions = __version__
        ds.PatientPosition = info.patient_position
        if info.modality == "CT":
            ds.KVP = ""
        else:
            ds.ScanningSequence = "RM"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTime = ""
            ds.EchoTrainLength = ""
            ds.RepetitionTime = ""
            ds.ImagingFrequency = ""
            ds.MagneticFieldStrength = ""
            ds.SpacingBetweenSlices = f"{sz:.6g}"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = info.series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = z + 1
        pos = geometry.index_to_lps(np.array([z, 0, 0]))
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{float(np.dot(pos, geometry.direction[:, 2])):.6f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = geometry.shape[1], geometry.shape[2]
        ds.PixelSpacing = [f"{sy:.6g}", f"{sx:.6g}"]
        ds.BitsAllocated = 16
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 1 if signed else 0
        if info.window:
            ds.WindowCenter = f"{info.window[0]:g}"
            ds.WindowWidth = f"{info.window[1]:g}"
        if info.modality == "CT" or rescale_intercept:
            ds.RescaleIntercept = f"{rescale_intercept:g}"
            ds.RescaleSlope = "1"
            ds.RescaleType = "HU" if info.modality == "CT" else "US"
        ds.PixelData = np.ascontiguousarray(stored[z]).tobytes()
        if ts != ExplicitVRLittleEndian:
            # keep our derived UID: pydicom would otherwise mint a random one
            ds.compress(
                ts,
                encoding_plugin="pyjpegls" if ts == JPEGLSLossless else "",
                generate_instance_uid=False,
            )
        path = os.path.join(out_dir, f"IM{z + 1:05d}.dcm")
        with atomic_path(path, ".dcm") as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths.append(path)
    return paths
