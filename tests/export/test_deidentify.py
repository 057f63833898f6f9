"""De-identified export (PS3.15 Annex E basic profile): a study whose identifying attributes
hold unique sentinels leaves zero sentinel hits in any output file, file name, PDF text or
metadata, printed output or log; UIDs are remapped consistently across the copy, SEG and SR."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import require_tool
from tests.export.conftest import META, NESTED, PRIVATE, SENTINELS, Study, cli_args


def _needles(study: Study) -> list[bytes]:
    words = [*SENTINELS.values(), NESTED, PRIVATE, META, *study.uids]
    out = []
    for w in words:
        out.append(w.encode())
        for part in w.split("^"):  # PDF and reports print names without the caret
            if len(part) > 6:
                out.append(part.encode())
    return out


def _all_text(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data += gzip.decompress(data)
    return data.lower()


def test_deidentified_bundle_has_no_sentinel(study: Study, tmp_path: Path, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    from medview.cli import main

    caplog.set_level(logging.DEBUG)
    rc = main(cli_args(study, tmp_path, "out", "--deidentify", "--json"))
    printed = capsys.readouterr()
    assert rc == 0
    result = json.loads(printed.out)
    bundle = Path(result["path"])
    needles = _needles(study)
    # every file's bytes (decompressed too), every name, the PDF's text and metadata, the output
    haystacks: dict[str, bytes] = {}
    for p in sorted((tmp_path / "out").rglob("*")):
        haystacks[f"name {p.relative_to(tmp_path)}"] = str(p.relative_to(tmp_path)).lower().encode()
        if p.is_file():
            haystacks[str(p)] = _all_text(p)
    pdf = bundle / "report.pdf"
    haystacks["pdftotext"] = subprocess.run(
        [require_tool("pdftotext"), str(pdf), "-"], capture_output=True, check=True
    ).stdout.lower()
    haystacks["pdfinfo"] = subprocess.run(
        [require_tool("pdfinfo"), str(pdf)], capture_output=True, check=True
    ).stdout.lower()
    haystacks["stdout+stderr"] = (printed.out + printed.err).lower().encode()
    haystacks["log"] = caplog.text.lower().encode()
    hits = [
        (where, n.decode()) for where, hay in haystacks.items() for n in needles if n.lower() in hay
    ]
    assert hits == []
    checked = [k for k in haystacks if k.endswith(".dcm") and not k.startswith("name ")]
    # the copies, the SEG, the RT structure set, the SR
    assert len(checked) == len(study.series.instances) + 3

    # the copy: pseudonymous names, basic-profile markers, zero preamble, no private tags
    copies = sorted((bundle / "dicom").rglob("*.dcm"))
    assert len(copies) == len(study.series.instances)
    seg = pydicom.dcmread(bundle / "seg.dcm")
    sr = pydicom.dcmread(bundle / "sr.dcm")
    rt = pydicom.dcmread(bundle / "rtstruct.dcm")
    study_uids = {seg.StudyInstanceUID, sr.StudyInstanceUID, rt.StudyInstanceUID}
    copied_uids = set()
    for p in copies:
        raw = p.read_bytes()
        assert raw[:128] == b"\0" * 128 and raw[128:132] == b"DICM"
        ds = pydicom.dcmread(p)
        assert ds.PatientIdentityRemoved == "YES"
        assert "Basic" in ds.DeidentificationMethod
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.PatientName == seg.PatientName and ds.PatientID == seg.PatientID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert _private_tags(ds) == []
        # the nested reference to the image itself was remapped with the same map
        assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
        study_uids.add(ds.StudyInstanceUID)
        copied_uids.add(ds.SOPInstanceUID)
    assert len(study_uids) == 1  # one study: copies, SEG and SR
    referenced = {
        r.ReferencedSOPInstanceUID
        for s in seg.ReferencedSeriesSequence
        for r in s.ReferencedInstanceSequence
    }
    assert referenced <= copied_uids and referenced  # the SEG points at the copies
    contoured = {
        i.ReferencedSOPInstanceUID
        for f in rt.ReferencedFrameOfReferenceSequence
        for st in f.RTReferencedStudySequence
        for s in st.RTReferencedSeriesSequence
        for i in s.ContourImageSequence
    }
    assert contoured <= copied_uids and contoured  # so does the structure set
    assert seg.FrameOfReferenceUID == pydicom.dcmread(copies[0]).FrameOfReferenceUID
    # validity of what left: every copy, the SEG and the SR
    exe = require_tool("dciodvfy")
    for p in [*copies, bundle / "seg.dcm", bundle / "rtstruct.dcm", bundle / "sr.dcm"]:
        r = subprocess.run([exe, str(p)], capture_output=True, text=True)
        errors = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]
        assert errors == [], p.name


def _private_tags(ds: pydicom.Dataset) -> list[object]:
    found: list[object] = []
    ds.walk(lambda d, e: found.append(e.tag) if e.tag.is_private else None)
    return found


def test_deidentified_copy_opens_with_the_same_pixels(study: Study, tmp_path: Path) -> None:
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent, ExportOptions
    from medview.io.loader import load_series
    from medview.io.scan import scan

    result = export_bundle(
        study.series,
        study.volume,
        ExportContent(),
        tmp_path / "out",
        ExportOptions(deidentify=True),
        study_series=[study.series],
    )
    (copy,) = scan([str(result.path / "dicom")]).series
    volume = load_series(copy)
    assert np.array_equal(volume.array, study.volume.array)
    assert volume.geometry.almost_equal(study.volume.geometry)
    assert copy.patient_id.startswith("ANON-")


def test_burned_in_annotation_is_not_copied(tmp_path: Path) -> None:
    from medview.core.errors import ExportError
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent, ExportOptions
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from tests.conftest import edit, write_ct

    for p in write_ct(tmp_path / "ct", n=4):
        edit(p, BurnedInAnnotation="YES")
    series = scan([str(tmp_path / "ct")]).series[0]
    with pytest.raises(ExportError, match="burned-in"):
        export_bundle(
            series,
            load_series(series),
            ExportContent(),
            tmp_path / "out",
            ExportOptions(deidentify=True),
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_profile_actions_come_from_the_standard_table() -> None:
    from medview.export.deid import action_for

    assert action_for(0x0010, 0x0010) == "Z"  # Patient's Name
    assert action_for(0x0020, 0x000D) == "U"  # Study Instance UID
    assert action_for(0x0008, 0x0080) in ("X", "Z", "D")  # Institution Name
    assert action_for(0x0010, 0x1000) == "X"  # Other Patient IDs
    assert action_for(0x6002, 0x3000) == "X"  # overlay data, a repeating group
    assert action_for(0x0028, 0x0010) is None  # Rows: kept
