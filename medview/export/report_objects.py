"""The report as DICOM objects: an Encapsulated PDF of the rendered report, and a Basic
Diagnostic Imaging Report (TID 2000) in an Enhanced SR whose sections hold the report's text,
referencing the TID 1500 measurement SR and the images the report is about.

A preliminary report is written UNVERIFIED and PARTIAL; a signed one VERIFIED and COMPLETE,
with its reader as the verifying observer. Addenda are sections of their own, after the
original text, which stays as signed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medview import __version__
from medview.core.errors import ExportError
from medview.export.dicom_common import MANUFACTURER, PATIENT_STUDY, device_observer
from medview.export.dicom_objects import _quiet_names
from medview.report.fields import Reading, field_values
from medview.report.lesions import LesionRow, lesion_rows
from medview.report.model import SECTIONS, TITLES, Report

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
PDF_SERIES_NUMBER = 903
REPORT_SR_SERIES_NUMBER = 904
TITLE = "Diagnostic imaging report"


def _pn(name: str) -> str:
    """A reader's name as a Person Name value: 64 characters per component group."""
    name = name.replace("\\", "/").replace("=", "-")[:63]
    # a name written as one string goes whole into the family name component (a PN with no
    # component separator is the retired form)
    return name if "^" in name else name + "^"


def build_encapsulated_pdf(
    pdf: bytes, source: Dataset, report: Report | None, references: Sequence[Dataset] = ()
) -> Dataset:
    """The rendered report PDF as a DICOM Encapsulated PDF of the source's study."""
    now = _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for key in PATIENT_STUDY:
        ds.add_new(key, pydicom.datadict.dictionary_VR(key), source.get(key, ""))
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = PDF_SERIES_NUMBER
    ds.SeriesDescription = "MedView report (PDF)"
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = f"MedView {__version__}"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF names the patient
    ds.DocumentTitle = TITLE + (" (final)" if report is not None and report.final else "")
    ds.ConceptNameCodeSequence = DicomSequence(
        [_code("18748-4", "LN", "Diagnostic Imaging Report")]
    )
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    if references:
        ds.SourceInstanceSequence = DicomSequence(
            [_ref(r.SOPClassUID, r.SOPInstanceUID) for r in references]
        )
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    r = Dataset()
    r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = sop_class, sop_instance
    return r


def images_at(
    sources: Sequence[Dataset], slices: Sequence[int]
) -> list[tuple[Dataset, int | None]]:
    """The source images (and frame numbers of a multi-frame image) of volume slices."""
    out: list[tuple[Dataset, int | None]] = []
    seen: set[tuple[str, int | None]] = set()
    for k in slices:
        if len(sources) == 1 and int(sources[0].get("NumberOfFrames", 1) or 1) > 1:
            ds, frame = sources[0], int(k) + 1
        elif 0 <= k < len(sources):
            ds, frame = sources[int(k)], None
        else:
            continue
        key = (str(ds.SOPInstanceUID), frame)
        if key not in seen:
            seen.add(key)
            out.append((ds, frame))
    return out


@_quiet_names
def build_report_sr(
    sources: Sequence[Dataset],
    report: Report,
    sections: dict[str, str],
    measurement_sr: Dataset | None,
    image_slices: Sequence[int],
) -> Dataset:
    """The report's text as a TID 2000 Basic Diagnostic Imaging Report (Enhanced SR).

    ``sections`` is the text as reported (live fields resolved); ``image_slices`` are the
    volume slices of the lesions and key images, referenced as "best illustration of
    finding"; ``measurement_sr`` (the bundle's TID 1500 SR) is referenced from Findings."""
    import highdicom.sr as sr
    from pydicom.sr.codedict import codes

    headings = {
        "clinical": (codes.LN.ClinicalInformation, codes.LN.History),
        "technique": (codes.LN.CurrentProcedureDescriptions, codes.DCM.ProcedureDescription),
        "comparison": (codes.LN.PriorProcedureDescriptions, codes.DCM.PreviousFinding),
        "findings": (codes.LN.Findings, codes.DCM.Finding),
        "impression": (codes.LN.Impressions, codes.DCM.Impression),
    }
    root = sr.ContainerContentItem(name=codes.LN.DiagnosticImagingReport, template_id="2000")
    content: list[Any] = list(
        sr.LanguageOfContentItemAndDescendants(
            sr.CodedConcept("en-US", "RFC5646", "English (United States)")
        )
    )
    person = None
    if report.reader:
        person = sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=sr.PersonObserverIdentifyingAttributes(
                name=_pn(report.reader), organization_name=report.organization[:64] or None
            ),
        )
    content.extend(
        sr.ObservationContext(
            observer_person_context=person, observer_device_context=device_observer()
        )
    )
    contains = sr.RelationshipTypeValues.CONTAINS
    for key in SECTIONS:
        text = sections.get(key, "").strip()
        heading, item = headings[key]
        section = sr.ContainerContentItem(name=heading, relationship_type=contains)
        children: list[Any] = []
        if text:
            children.append(sr.TextContentItem(name=item, value=text, relationship_type=contains))
        if key == "findings":
            if measurement_sr is not None:
                children.append(
                    sr.CompositeContentItem(
                        name=codes.DCM.ImagingMeasurementReport,
                        referenced_sop_class_uid=measurement_sr.SOPClassUID,
                        referenced_sop_instance_uid=measurement_sr.SOPInstanceUID,
                        relationship_type=contains,
                    )
                )
            for ds, frame in images_at(sources, image_slices):
                children.append(
                    sr.ImageContentItem(
                        name=codes.DCM.BestIllustrationOfFinding,
                        referenced_sop_class_uid=ds.SOPClassUID,
                        referenced_sop_instance_uid=ds.SOPInstanceUID,
                        referenced_frame_numbers=frame,
                        relationship_type=contains,
                    )
                )
        if not children:
            continue
        section.ContentSequence = sr.ContentSequence(children)
        content.append(section)
    for a in report.addenda:
        section = sr.ContainerContentItem(name=codes.LN.Addendum, relationship_type=contains)
        who = a.reader + (f", {a.credentials}" if a.credentials else "")
        section.ContentSequence = sr.ContentSequence(
            [
                sr.TextContentItem(
                    name=codes.DCM.Finding,
                    value=f"Addendum {a.date.replace('T', ' ')} by {who}:\n{a.text}",
                    relationship_type=contains,
                )
            ]
        )
        content.append(section)
    root.ContentSequence = sr.ContentSequence(content)
    evidence = list(sources) + ([measurement_sr] if measurement_sr is not None else [])
    verified = report.final
    try:
        doc = sr.EnhancedSR(
            evidence=evidence,
            content=root,
            series_instance_uid=generate_uid(),
            series_number=REPORT_SR_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=verified,
            is_final=verified,
            is_verified=verified,
            verifying_observer_name=_pn(report.reader) if verified else None,
            verifying_organization=(report.organization or "not recorded")[:64]
            if verified
            else None,
            series_description="MedView report (research use)",
        )
    except (ValueError, TypeError, AttributeError) as e:
        raise ExportError(f"cannot build the report SR: {e}") from e
    doc.SpecificCharacterSet = "ISO_IR 192"
    now = _dt.datetime.now()
    doc.ContentDate = pydicom.valuerep.DA(now.strftime("%Y%m%d"))
    doc.ContentTime = pydicom.valuerep.TM(now.strftime("%H%M%S"))
    if verified and report.signed:
        when = report.signed.replace("-", "").replace(":", "").replace("T", "")
        doc.VerifyingObserverSequence[0].VerificationDateTime = when[:14]
    return doc


NARRATIVE_LEFT_OUT = (
    "The report's narrative is not in this de-identified bundle: free text is not "
    "de-identified by the profile. Export again and confirm that it holds no identifiers "
    "to include it."
)


@dataclass
class ReportText:
    """What a bundle reports of the reader's report: the sections as they read now (live
    fields resolved), the lesion table, and whether the narrative goes in."""

    report: Report | None
    sections: dict[str, str]
    lesions: list[LesionRow]
    included: bool
    note: str = ""

    def files(self) -> list[str]:
        return ["report-pdf.dcm", "report-sr.dcm"] if self.included else []

    def objects(
        self,
        pdf: Path,
        sources: Sequence[Dataset],
        measurement_sr: Dataset | None,
        slices: Sequence[int],
    ) -> list[tuple[str, Dataset]]:
        """The Encapsulated PDF of ``pdf`` and the TID 2000 SR, by file name."""
        assert self.report is not None
        refs = [ds for ds, _ in images_at(sources, slices)]
        return [
            (
                "report-pdf.dcm",
                build_encapsulated_pdf(pdf.read_bytes(), sources[0], self.report, refs),
            ),
            (
                "report-sr.dcm",
                build_report_sr(sources, self.report, self.sections, measurement_sr, slices),
            ),
        ]

    def pdf_parts(self) -> dict[str, Any]:
        """The `ReportData` fields of the narrative."""
        r = self.report
        if r is None or not self.included:
            return {"lesions": self.lesions, "narrative_note": self.note}
        who = r.reader + (f", {r.credentials}" if r.credentials else "")
        if r.final:
            signoff = f"Signed by {who} on {r.signed.replace('T', ' ')}."
        else:
            signoff = "Preliminary report: not signed."
        return {
            "narrative": [(TITLES[k], self.sections[k]) for k in SECTIONS],
            "status": r.status.upper(),
            "signoff": signoff,
            "addenda": [
                (
                    f"Addendum, {a.date.replace('T', ' ')}, {a.reader}"
                    + (f", {a.credentials}" if a.credentials else ""),
                    a.text,
                )
                for a in r.addenda
            ],
            "lesions": self.lesions,
            "narrative_note": self.note,
        }


def report_text(
    report: Report | None, reading: Reading, deidentify: bool, confirmed: bool
) -> ReportText:
    lesions = lesion_rows(reading.volume, reading.segmentation, reading.measurements)
    if report is None:
        return ReportText(None, {}, lesions, False)
    sections = report.text(field_values(reading, lesions))
    if deidentify and not confirmed:
        return ReportText(report, sections, lesions, False, NARRATIVE_LEFT_OUT)
    return ReportText(report, sections, lesions, True)
