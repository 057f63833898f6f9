"""Report text as data: sign-off and addenda rules, live fields, templates (shipped, the
user's, malformed, with markup), and hostile text that is stored and exported intact or
refused with a message, never interpreted."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from medview.core.errors import ReportError
from medview.report.model import MAX_SECTION, Report, resolve
from medview.report.templates import parse_template, templates
from tests.conftest import require_tool

RTL = "שלום עולם، مرحبا بالعالم"  # Hebrew and Arabic
COMBINING = "Ångström e\u0301 n\u0303 Z\u0335\u0321a\u0336lgo"
MARKUP = '<para><font color="red">x</font></para> <script>alert(1)</script> &amp; {0} %s ${HOME}'


def test_sign_freezes_fields_and_addenda_keep_the_original() -> None:
    r = Report()
    r.set_section("findings", "Nodule {{lesion:1}}; {{measurement:3}}; {{nonsense:x}}")
    values = {"lesion:1": "8 x 6 mm", "measurement:1": "(1) ruler: 3 mm"}
    text = r.text(values)["findings"]
    assert text == "Nodule 8 x 6 mm; [measurement:3: none]; [unknown field nonsense:x]"
    with pytest.raises(ReportError, match="Preferences"):
        r.sign("  ", "", values)
    with pytest.raises(ReportError, match="signed report"):
        r.add_addendum("too early", "Dr A", "", values)
    r.sign("Dr A", "MD", values, when="2026-12-04T10:00:00")
    assert r.final and r.sections["findings"] == text
    assert r.text({"lesion:1": "changed"})["findings"] == text  # frozen
    with pytest.raises(ReportError, match="addendum"):
        r.set_section("findings", "rewritten")
    a = r.add_addendum("Size {{lesion:1}} confirmed.", "Dr B", "", {"lesion:1": "9 mm"})
    assert a.text == "Size 9 mm confirmed." and r.sections["findings"] == text
    back = Report.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r


def test_hostile_text_is_kept_intact_or_refused_with_a_reason() -> None:
    r = Report()
    for text in (RTL, COMBINING, MARKUP, "{{__import__('os').system('touch /tmp/x')}}"):
        r.set_section("findings", text)
        assert r.sections["findings"] == text
    # a field name is a lower-case word: code in braces is not a field, it stays text
    assert resolve("{{__import__('os')}}", {}) == "{{__import__('os')}}"
    r.set_section("clinical", "line one\r\nline two\rthree")
    assert r.sections["clinical"] == "line one\nline two\nthree"
    for bad, code in (("a\x00b", "U+0000"), ("bell\x07", "U+0007"), ("esc\x1b[31m", "U+001B")):
        with pytest.raises(ReportError, match=re.escape(code)):
            r.set_section("findings", bad)
    with pytest.raises(ReportError, match="at most"):
        r.set_section("findings", "x" * (1_000_000))
    assert r.sections["findings"] == "{{__import__('os').system('touch /tmp/x')}}"  # unchanged


def test_hostile_text_renders_in_the_pdf(tmp_path: Path) -> None:
    from medview.export.pdf import ReportData, write_pdf

    big = ("Longest paragraph of findings without a break " * 4000)[: MAX_SECTION - 10]
    sections = [("Findings", f"{RTL}\n{COMBINING}\n{MARKUP}"), ("Impression", big)]
    t0 = time.perf_counter()
    write_pdf(
        tmp_path / "r.pdf",
        ReportData(header=[("Patient", "X")], narrative=sections, status="PRELIMINARY"),
    )
    seconds = time.perf_counter() - t0
    exe = require_tool("pdftotext")
    text = subprocess.run(
        [exe, str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True
    ).stdout
    flat = " ".join(text.split())
    assert "<script>alert(1)</script> &amp; {0} %s ${HOME}" in flat  # shown as written
    assert "Ångström" in flat
    for word in ("שלום", "مرحبا"):  # logical order in the text layer
        assert word in text or word[::-1] in text
    assert flat.count("Longest paragraph") > 3000
    ppm = require_tool("pdftoppm")
    subprocess.run(
        [
            ppm,
            "-r",
            "40",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            str(tmp_path / "r.pdf"),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    assert any(tmp_path.glob("p*.png"))
    print(f"PDF with a {len(big):,}-character section: {seconds:.1f} s")


def test_shipped_templates_load_and_pick_by_series(tmp_path: Path) -> None:
    ts = templates(tmp_path / "none")
    assert {"generic", "ct-chest", "ct-abdomen", "mr-brain"} <= set(ts.by_id)
    assert ts.refused == []
    assert ts.best("CT", "CHEST").id == "ct-chest"
    assert ts.best("CT", "ABDOMEN").id == "ct-abdomen"
    assert ts.best("MR", "HEAD").id == "mr-brain"
    assert ts.best("US", "").id == "generic"
    for t in ts.by_id.values():
        for text in t.sections.values():
            Report().set_section("findings", text)  # every default text is storable


def test_user_templates_are_data_and_bad_ones_are_refused_with_a_reason(tmp_path: Path) -> None:
    folder = tmp_path / "user"
    folder.mkdir()
    mine = {
        "format": "medview-report-template/1",
        "id": "ct-chest",  # the user's own version of a shipped one
        "name": "My <b>chest</b>",
        "modalities": ["CT"],
        "body_parts": ["CHEST"],
        "sections": {"findings": MARKUP + " {{lesions}}"},
        "choices": {"impression": ["No change.", RTL]},
    }
    (folder / "mine.json").write_text(json.dumps(mine))
    (folder / "broken.json").write_text("{not json")
    (folder / "code.json").write_text(
        json.dumps({**mine, "id": "x", "sections": {"findings": "a\x07"}})
    )
    (folder / "extra.json").write_text(json.dumps({**mine, "id": "y", "sections": {"eval": "1"}}))
    (folder / "big.json").write_bytes(b" " * (600 * 1024))
    ts = templates(folder)
    t = ts.by_id["ct-chest"]
    assert (
        t.source == "user"
        and t.name == "My <b>chest</b>"
        and t.sections["findings"].startswith("<para>")
    )
    assert t.choices["impression"] == ("No change.", RTL)
    reasons = dict(ts.refused)
    assert set(reasons) == {"broken.json", "code.json", "extra.json", "big.json"}
    assert "U+0007" in reasons["code.json"] and "unknown section" in reasons["extra.json"]
    assert "KB" in reasons["big.json"]
    with pytest.raises(ReportError, match="format"):
        parse_template({"id": "x"})


def test_lesion_field_values_come_from_the_reading() -> None:
    from medview.core.geometry import Geometry
    from medview.core.results import Segment, Segmentation
    from medview.core.volume import Volume
    from medview.report.fields import Reading, field_values

    g = Geometry((10, 40, 40), (0.0, 0.0, 0.0), (0.5, 0.5, 2.0))
    image = Volume(np.full(g.shape, 40, np.int16), g, modality="CT", units="HU")
    labels = np.zeros(g.shape, np.uint8)
    labels[4:6, 10:30, 15:25] = 1  # 10 x 5 mm in plane
    seg = Segmentation(
        Volume(labels, g), (Segment(1, "Lung nodule", finding=True), Segment(2, "liver"))
    )
    values = field_values(Reading(image, (), seg))
    # the long axis of a rectangle is its diagonal between pixel centres, plus a pixel; the
    # short axis is the rectangle's extent across that diagonal
    long = np.hypot(9.5, 4.5)
    short = 2 * 9.5 * 4.5 / long
    assert values["lesion:1"].startswith(
        f"Lesion 1, Lung nodule: {long + 0.5:.1f} x {short + 0.5:.1f} mm"
    )
    assert "mean 40 HU" in values["lesion:1"] and "Lung-RADS size band 4A" in values["lesion:1"]
    assert values["segment:lung nodule"].startswith("Lung nodule 0.2 mL")
    assert values["ai"] == "no AI result" and values["measurements"] == "no measurements"
    assert resolve("{{segment:LUNG NODULE}}", values) == values["segment:lung nodule"]


def test_technique_comes_from_real_scanner_headers(tmp_path: Path) -> None:
    """Siemens and GE MR series (dcm_qa_nih): field strength, sequence, TR/TE, images and
    thickness, as their headers record them; the demo CT: kVp-free headers say what they have."""
    import pydicom

    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.report.technique import technique_text
    from tests.conftest import DEMO_CT, extract_realdata

    data = extract_realdata(("dcm_qa_nih",), tmp_path)
    seen = 0
    for s in scan([str(data / "dcm_qa_nih" / "In")]).series[:4]:
        ds = pydicom.dcmread(s.instances[0].path, stop_before_pixels=True)
        text = technique_text(s, load_series(s))
        assert text.startswith("MR") and f"{len(s.instances)} images" in text
        assert f"{float(ds.MagneticFieldStrength):g} T" in text
        seq = str(ds.get("SequenceName", "") or ds.get("ScanningSequence", ""))
        assert seq in text
        assert f"TR {float(ds.RepetitionTime):g} ms, TE {float(ds.EchoTime):g} ms" in text
        seen += 1
    assert seen >= 2
    s = scan([str(DEMO_CT)]).series[0]
    text = technique_text(s, load_series(s))
    assert text.startswith("CT of the chest") and "5 mm" in text
    assert "No contrast agent recorded" in text  # the demo CT records none
