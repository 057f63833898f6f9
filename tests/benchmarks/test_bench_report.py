"""The report on the demo chest CT (61 x 512 x 512): the whole bundle with and without a signed
report (the difference is the report's part: its PDF pages, the Encapsulated PDF and the
TID 2000 SR, dciodvfy on both when installed); MedView's TID 2000 SR against highdicom's bare
Enhanced SR holding the same text; and the live fields (lesion table, segment volumes) on a
300 x 512 x 512 CT with 10 segments, which the window measures in a worker."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.common import median_time, print_table

pytestmark = pytest.mark.benchmark
DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "lung2"


def test_bench_report() -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from medview.core.geometry import Geometry
    from medview.core.results import Segment, Segmentation, segment_stats
    from medview.core.volume import Volume
    from medview.export.bundle import export_bundle
    from medview.export.content import ExportContent
    from medview.export.dicom_objects import read_sources
    from medview.export.report_objects import build_encapsulated_pdf, build_report_sr
    from medview.io.loader import load_series
    from medview.io.scan import scan
    from medview.report.fields import Reading, field_values
    from medview.report.model import SECTIONS, Report

    series = scan([str(DEMO)]).series[0]
    volume = load_series(series)
    labels = np.zeros(volume.shape, np.uint8)
    labels[20:30, 150:220, 330:400] = 1
    seg = Segmentation(
        Volume(labels, volume.geometry, volume.frame_of_reference_uid),
        (Segment(1, "lung lesion", (255, 0, 0), finding=True),),
    )
    report = Report()
    for k in SECTIONS:
        report.set_section(k, f"{k} text. " * 40 + "{{lesions}}")
    report.sign("Dr Bench", "MD", field_values(Reading(volume, (), seg)))
    plain = ExportContent(segmentation=seg)
    with_report = ExportContent(segmentation=seg, report=report)
    with tempfile.TemporaryDirectory() as tmp:
        without = median_time(lambda: export_bundle(series, volume, plain, tmp), repeats=5)
        whole = median_time(lambda: export_bundle(series, volume, with_report, tmp), repeats=5)
        bundle = export_bundle(series, volume, with_report, tmp)
        pdf = (bundle.path / "report.pdf").read_bytes()
        sources = read_sources(series)
        sections = report.text({})
        ours = median_time(
            lambda: build_report_sr(sources, report, sections, None, [25]), repeats=5
        )
        encapsulated = median_time(
            lambda: build_encapsulated_pdf(pdf, sources[0], report, sources[20:30]), repeats=5
        )

    def bare() -> None:
        items = [
            hd.sr.TextContentItem(codes.DCM.Finding, sections[k], relationship_type="CONTAINS")
            for k in SECTIONS
        ]
        root = hd.sr.ContainerContentItem(codes.LN.DiagnosticImagingReport, template_id="2000")
        root.ContentSequence = hd.sr.ContentSequence(items)
        hd.sr.EnhancedSR(sources, root, generate_uid(), 1, generate_uid(), 1, "x")

    peer = median_time(bare, repeats=5)

    g = Geometry((300, 512, 512), (0.0, 0.0, 0.0), (0.7, 0.7, 1.0))
    rng = np.random.default_rng(0)
    big = Volume(rng.integers(-1000, 1000, g.shape, dtype=np.int16), g, modality="CT", units="HU")
    lab = np.zeros(g.shape, np.uint8)
    segments = []
    for i in range(10):
        z, y, x = rng.integers(30, 270), rng.integers(60, 450), rng.integers(60, 450)
        lab[z - 15 : z + 15, y - 20 : y + 20, x - 20 : x + 20] = i + 1
        segments.append(Segment(i + 1, f"lesion {i + 1}", finding=i < 5))
    big_seg = Segmentation(Volume(lab, g), tuple(segments))
    big_seg = Segmentation(
        Volume(lab, g), tuple(segments), stats=tuple(segment_stats(big, lab, big_seg.segments))
    )
    fields = median_time(lambda: field_values(Reading(big, (), big_seg)), repeats=3)
    print_table(
        "Report (median s)",
        [
            ["bundle without a report (demo CT)", f"{without:.2f}", "-", "-"],
            ["bundle with a signed report", f"{whole:.2f}", "-", "-"],
            [
                f"Encapsulated PDF of the {len(pdf) // 1024} KB report",
                f"{encapsulated:.4f}",
                "-",
                "-",
            ],
            [
                "TID 2000 SR, 5 sections, 61 sources",
                f"{ours:.3f}",
                f"{peer:.3f}",
                f"{ours / peer:.2f}x",
            ],
            ["live fields, 300x512x512, 10 segments (worker)", f"{fields:.3f}", "-", "-"],
        ],
        ["case", "MedView", "highdicom bare EnhancedSR", "ratio / extra"],
    )
