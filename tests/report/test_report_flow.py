"""The reading closed in the workstation: a report written from a template on the demo CT with
a measurement and a clicked nodule (a real AI segment), live fields, signed, an addendum, the
app restarted (a second session on the same database), then exported. The PDF's text, the
Encapsulated PDF and the TID 2000 SR are checked as a reader and a PACS would read them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.conftest import DEMO_CT, REPO, require_tool

READER, CREDENTIALS, ORGANIZATION = "Dr Ada Reader", "MD, FRCR", "MedView Hospital"


def tumour_centre(volume):  # type: ignore[no-untyped-def]
    """The demo tumour's centre (LPS mm), from the shipped reference mask."""
    ref = np.asarray(nib.load(REPO / "resources/reference/lung2_tumour_label.nii.gz").dataobj)
    zyx = np.argwhere(np.transpose(ref, (2, 1, 0)) > 0).mean(axis=0)
    return volume.geometry.index_to_lps(zyx)


def read_the_study(db_path: Path):  # type: ignore[no-untyped-def]
    """Open the demo CT, measure, click the nodule model, and write the report from the CT
    chest template; returns the session."""
    from medview.inference.manifest import read_manifest
    from medview.io.database import StudyDatabase
    from medview.io.scan import scan
    from medview.report.templates import templates
    from medview.segedit.nodule import take_nodule
    from medview.session import StudySession, reporting
    from medview.viewer.annotations import Kind, Measurement
    from medview.viewer.mpr import View

    db = StudyDatabase(db_path)
    db.import_paths([str(DEMO_CT)])
    series = scan([str(DEMO_CT)]).series[0]
    session = StudySession(db)
    volume = session.open(series)
    g = volume.geometry
    a, b = (g.index_to_lps(np.array(p, float)) for p in ((30, 200, 150), (30, 260, 210)))
    session.add_measurement(Measurement(Kind.RULER, View.AXIAL, (tuple(a), tuple(b)), "hilar node"))
    manifest = read_manifest(REPO / "models" / "lung-nodule-segmentation")
    result = session.run_click(manifest, [tumour_centre(volume)], device="cpu")
    session.edit(take_nodule, result)
    template = templates().best(volume.modality, "CHEST")
    assert template.id == "ct-chest"
    reporting.start_report(session, template)
    return session, db, series


def brute_axes(mask2d: np.ndarray, sx: float, sy: float) -> tuple[float, float]:
    """Longest distance between any two pixel centres (mm) and the extent perpendicular to it,
    each plus one pixel, by checking every pair: no convex hull."""
    rows, cols = np.nonzero(mask2d)
    pts = np.stack([cols * sx, rows * sy], axis=1)
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    i, j = np.unravel_index(np.argmax(d), d.shape)
    u = (pts[j] - pts[i]) / d[i, j]
    perp = pts @ np.array([-u[1], u[0]])
    pixel = (sx + sy) / 2
    return float(d[i, j]) + pixel, float(perp.max() - perp.min()) + pixel


def pdf_text(path: Path) -> str:
    exe = require_tool("pdftotext")
    return subprocess.run(
        [exe, "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def without_times(text: str) -> str:
    """The PDF's text less the export's own clock (creation time, page footers)."""
    text = re.sub(r"Report created\s+\S+ \S+", "", text)
    return re.sub(r"MedView \S+ \d{4}-\d\d-\d\d \d\d:\d\d\s+page \d+", "", text)


def test_a_report_is_written_signed_amended_kept_and_exported(tmp_path: Path) -> None:
    from medview.core.notices import RESEARCH_USE
    from medview.export.content import ExportOptions
    from medview.io.database import StudyDatabase
    from medview.session import StudySession, reporting

    session, db, series = read_the_study(tmp_path / "study.db")
    report = session.report
    assert report is not None and report.status == "preliminary"
    technique = report.sections["technique"]
    assert technique.startswith("CT") and "61 images" in technique and "5 mm" in technique
    # fields stay live: a measurement added now shows in the fields
    reporting.edit_section(session, "clinical", "Cough for three months. Former smoker.")
    reporting.edit_section(
        session,
        "impression",
        "1. Left lung mass, {{lesion:1}}\n2. Hilar node {{measurement:1}}.\n{{ai}}",
    )
    before = reporting.values(session)
    assert "lung nodule 1" in before["lesion:1"] and "research use only" in before["ai"].lower()
    assert "{{lesions}}" in session.report.sections["findings"]  # still a live field
    reporting.sign_report(session, READER, CREDENTIALS, organization=ORGANIZATION)
    assert session.report.final and "{{" not in "".join(session.report.sections.values())
    from medview.core.errors import ReportError

    with pytest.raises(ReportError, match="signed"):
        reporting.edit_section(session, "findings", "changed after signing")
    reporting.add_addendum(
        session, "Result discussed with the referring physician.", READER, CREDENTIALS
    )
    signed_sections = dict(session.report.sections)
    before_restart = session.export(tmp_path / "out0", ExportOptions(validate=False))
    session.keep.wait()
    db.close()

    # the app restarts: a new session on the same database gets the signed report back
    db2 = StudyDatabase(tmp_path / "study.db")
    again = StudySession(db2)
    volume = again.open(series)
    kept = again.report
    assert kept is not None and kept.final and kept.reader == READER
    assert kept.sections == signed_sections and len(kept.addenda) == 1
    first = again.export(tmp_path / "out1", ExportOptions())
    second = again.export(tmp_path / "out2", ExportOptions())
    bundle = first.path
    assert {"report.pdf", "report-pdf.dcm", "report-sr.dcm", "sr.dcm"} <= set(first.files)

    # the PDF: findings, impression, the lesion table with the diameters, reader and status
    text = pdf_text(bundle / "report.pdf")
    assert "Imaging report (FINAL)" in text
    for heading in ("Clinical information", "Technique", "Comparison", "Findings", "Impression"):
        assert heading in text
    assert "Cough for three months" in text and "Left lung mass" in text
    assert f"Signed by {READER}, {CREDENTIALS}" in text
    assert "Result discussed with the referring physician" in text and "Addendum" in text
    assert RESEARCH_USE in text
    # the lesion table's diameters equal a direct computation on the segment's own mask
    seg = again.segmentation
    nodule = next(s for s in seg.segments if s.name == "lung nodule 1")
    mask = np.asarray(seg.labels.array) == nodule.value
    sx, sy, _ = volume.geometry.spacing
    best = max(
        ((*brute_axes(mask[k], sx, sy), k) for k in np.flatnonzero(mask.any(axis=(1, 2)))),
        key=lambda t: t[0],
    )
    row = re.search(
        r"^\s*1\s+lung nodule 1\s+([\d.]+) x ([\d.]+)\s+([\d.]+)\s+(-?\d+)\s+(\d+)", text, re.M
    )
    assert row is not None, text
    assert float(row.group(1)) == pytest.approx(best[0], abs=0.05)
    assert float(row.group(2)) == pytest.approx(best[1], abs=0.05)
    assert int(row.group(5)) == best[2] + 1
    assert float(row.group(3)) == pytest.approx(
        mask.sum() * np.prod(volume.geometry.spacing) / 1000, abs=0.005
    )
    assert "Suggested Lung-RADS size band" in text

    # reproducible: the same content and figures before the restart and in two exports after
    assert without_times(pdf_text(second.path / "report.pdf")) == without_times(text)
    assert without_times(pdf_text(before_restart.path / "report.pdf")) == without_times(text)

    # the Encapsulated PDF carries the PDF; the SR holds the sections and the references
    enc = pydicom.dcmread(bundle / "report-pdf.dcm")
    assert enc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
    assert (
        bytes(enc.EncapsulatedDocument)[: int(enc.EncapsulatedDocumentLength)]
        == (bundle / "report.pdf").read_bytes()
    )
    ct = pydicom.dcmread(series.instances[0].path, stop_before_pixels=True)
    assert enc.StudyInstanceUID == ct.StudyInstanceUID and enc.PatientID == ct.PatientID
    check_report_sr(bundle, signed_sections, ct)
    for name in ("report-pdf.dcm", "report-sr.dcm"):
        verdict = first.validation.get(name)
        if verdict is None:  # dciodvfy not installed: require_tool skips or fails in CI
            require_tool("dciodvfy")
        assert verdict is not None and verdict["errors"] == [], verdict


def check_report_sr(bundle: Path, sections: dict[str, str], ct) -> None:  # type: ignore[no-untyped-def]
    """highdicom reads the TID 2000 SR back: title, sections with the text as signed, the
    verifying reader, and the references to the TID 1500 SR and the CT images."""
    import highdicom as hd

    doc = hd.sr.srread(bundle / "report-sr.dcm")
    measurement_sr = pydicom.dcmread(bundle / "sr.dcm", stop_before_pixels=True)
    assert doc.VerificationFlag == "VERIFIED" and doc.CompletionFlag == "COMPLETE"
    assert str(doc.VerifyingObserverSequence[0].VerifyingObserverName).startswith(READER)
    assert doc.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    assert doc.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    found: dict[str, str] = {}
    composite, images = [], []
    for item in doc.ContentSequence:
        if item.ValueType != "CONTAINER":
            continue
        heading = item.ConceptNameCodeSequence[0].CodeMeaning
        for child in item.ContentSequence:
            if child.ValueType == "TEXT":
                found[heading] = found.get(heading, "") + child.TextValue
            elif child.ValueType == "COMPOSITE":
                composite.append(child.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            elif child.ValueType == "IMAGE":
                images.append(child.ReferencedSOPSequence[0])
    assert found["Findings"] == sections["findings"].strip()
    assert found["Impressions"] == sections["impression"].strip()
    assert found["Clinical Information"] == sections["clinical"].strip()
    assert "Result discussed" in found["Addendum"]
    assert composite == [measurement_sr.SOPInstanceUID]
    assert images and all(r.ReferencedSOPClassUID == ct.SOPClassUID for r in images)
    evidence = {
        r.ReferencedSOPInstanceUID
        for study in doc.CurrentRequestedProcedureEvidenceSequence
        for s in study.ReferencedSeriesSequence
        for r in s.ReferencedSOPSequence
    }
    assert measurement_sr.SOPInstanceUID in evidence
    assert {r.ReferencedSOPInstanceUID for r in images} <= evidence


def test_a_deidentified_export_leaves_the_narrative_out_unless_confirmed(tmp_path: Path) -> None:
    from medview.export.content import ExportOptions
    from medview.export.report_objects import NARRATIVE_LEFT_OUT
    from medview.session import reporting

    session, _db, series = read_the_study(tmp_path / "study.db")
    reporting.edit_section(session, "clinical", "Referred by Dr Quentin Identifiable.")
    plain = session.export(tmp_path / "deid", ExportOptions(deidentify=True, validate=False))
    text = pdf_text(plain.path / "report.pdf")
    assert "Quentin" not in text and NARRATIVE_LEFT_OUT.split(":")[0] in " ".join(text.split())
    assert "report-sr.dcm" not in plain.files and "report-pdf.dcm" not in plain.files
    assert "Lesions" in text  # the measured lesion table is not free text
    confirmed = session.export(
        tmp_path / "deid2", ExportOptions(deidentify=True, narrative_confirmed=True, validate=False)
    )
    assert "Quentin" in pdf_text(confirmed.path / "report.pdf")
    sr = pydicom.dcmread(confirmed.path / "report-sr.dcm")
    ct = pydicom.dcmread(series.instances[0].path, stop_before_pixels=True)
    assert sr.PatientID != ct.PatientID and sr.StudyInstanceUID != ct.StudyInstanceUID
    # a preliminary report is written as such
    assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "PARTIAL"
    assert sr.PreliminaryFlag == "PRELIMINARY" and "VerifyingObserverSequence" not in sr
