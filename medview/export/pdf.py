"""The annotated PDF report (reportlab): header, key images with overlays and measurements,
tables of measurements and segment volumes, classification with its Grad-CAM thumbnail, the
risk panel's result with its contributions, provenance of every AI result, series warnings,
and "research use only" on every page. The document metadata carries no patient data."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

from medview import __version__
from medview.core.atomic import atomic_path
from medview.core.notices import RESEARCH_USE, is_flagged
from medview.core.results import Classification, Provenance, SegmentStats

# how each segment was made, in the reader's words (from its Segment Algorithm Type)
MADE_BY = {
    "AUTOMATIC": "AI model",
    "SEMIAUTOMATIC": "AI model, edited by hand",
    "MANUAL": "drawn by hand",
}


@dataclass
class ReportData:
    header: list[tuple[str, str]]
    key_images: list[tuple[Any, str]] = field(default_factory=list)  # (PIL image, caption)
    measurements: list[tuple[str, str, str]] = field(default_factory=list)  # (#, where, figures)
    units: str = ""
    segments: list[SegmentStats] = field(default_factory=list)
    segmentation: Provenance | None = None
    segmentation_notes: list[str] = field(default_factory=list)
    # label value -> DICOM Segment Algorithm Type (AUTOMATIC, SEMIAUTOMATIC, MANUAL)
    made_by: dict[int, str] = field(default_factory=dict)
    # label value -> "model version" of a segment made by another model than the
    # segmentation's (a clicked nodule)
    segment_models: dict[int, str] = field(default_factory=dict)
    classifications: list[tuple[Classification, Any]] = field(default_factory=list)
    risk: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    created: str = ""
    # the reader's report: sections (title, text) as reported, status, sign-off, addenda
    narrative: list[tuple[str, str]] = field(default_factory=list)
    status: str = ""  # "PRELIMINARY", "FINAL" or "" (no report written)
    signoff: str = ""
    addenda: list[tuple[str, str]] = field(default_factory=list)  # (heading, text)
    narrative_note: str = ""  # why a narrative is not in this PDF
    lesions: list[Any] = field(default_factory=list)  # medview.report.lesions.LesionRow


def _esc(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lines(text: str) -> str:
    """Free text as paragraph markup: escaped, line breaks kept."""
    return "<br/>".join(_esc(line) for line in text.split("\n"))


def _fonts() -> tuple[str, str]:
    """The shipped DejaVu Sans (regular, bold): free text in any script it covers renders;
    Helvetica (Latin only) where the files are missing."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    from medview.core.shipped import shipped

    if "MedViewSans" in pdfmetrics.getRegisteredFontNames():
        return "MedViewSans", "MedViewSans-Bold"
    folder = shipped("resources") / "fonts"
    try:
        pdfmetrics.registerFont(TTFont("MedViewSans", str(folder / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("MedViewSans-Bold", str(folder / "DejaVuSans-Bold.ttf")))
    except Exception:  # reportlab raises TTFError or OSError for a missing or bad font file
        return "Helvetica", "Helvetica-Bold"
    addMapping("MedViewSans", 0, 0, "MedViewSans")
    addMapping("MedViewSans", 1, 0, "MedViewSans-Bold")
    addMapping("MedViewSans", 0, 1, "MedViewSans")
    addMapping("MedViewSans", 1, 1, "MedViewSans-Bold")
    return "MedViewSans", "MedViewSans-Bold"


def write_pdf(path: str | os.PathLike[str], data: ReportData) -> None:
    """Write the report to ``path`` atomically."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    regular, bold = _fonts()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        if hasattr(style, "fontName"):
            heading = style.name.startswith(("Heading", "Title"))
            style.fontName = bold if heading or "Bold" in style.fontName else regular
    body = styles["BodyText"]
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    h1, h2 = styles["Title"], styles["Heading2"]
    h3 = ParagraphStyle("section", parent=styles["Heading4"], spaceBefore=6, spaceAfter=2)
    warn = ParagraphStyle("warn", parent=body, textColor=colors.HexColor("#b00020"), fontSize=11)
    width = A4[0] - 4 * cm
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("FONTNAME", (0, 0), (-1, -1), regular),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )

    def table(rows: list[list[Any]], widths: list[float] | None = None, header: bool = True) -> Any:
        cells = [[Paragraph(_esc(c), small) if isinstance(c, str) else c for c in r] for r in rows]
        t = Table(cells, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
        t.setStyle(grid if header else TableStyle([("FONTSIZE", (0, 0), (-1, -1), 9)]))
        return t

    def image(img: Any, max_w: float, max_h: float) -> Any:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        buf.seek(0)
        w, h = img.size
        s = min(max_w / w, max_h / h)
        return Image(buf, width=w * s, height=h * s)

    title = "Imaging report" if data.narrative else "MedView report"
    story: list[Any] = [Paragraph(title + (f" ({data.status})" if data.status else ""), h1)]
    story.append(Paragraph(_esc(RESEARCH_USE) + " AI results are labelled as such.", warn))
    story.append(Spacer(1, 0.3 * cm))
    header = list(data.header)
    if data.status:
        header.append(("Report status", data.status))
    story.append(table([[k, v] for k, v in header], [5 * cm, width - 5 * cm], header=False))

    # the reader's report leads: its sections, the sign-off and the addenda
    for heading, text in data.narrative:
        story.append(Paragraph(_esc(heading), h3))
        # one paragraph per block of lines, so that long text breaks across pages
        for part in text.split("\n\n"):
            story.append(Paragraph(_lines(part) if part.strip() else "-", body))
    if data.signoff:
        story.append(Spacer(1, 0.2 * cm))
        story.append(Paragraph(f"<b>{_esc(data.signoff)}</b>", body))
    for heading, text in data.addenda:
        story.append(Paragraph(_esc(heading), h3))
        for part in text.split("\n\n"):
            story.append(Paragraph(_lines(part), body))
    if data.narrative_note:
        story.append(Paragraph(_esc(data.narrative_note), warn))
    if data.lesions:
        story.append(Paragraph("Lesions", h2))
        rows = [
            [
                "#",
                "Lesion",
                "Long x short axis (mm)",
                "Volume (mL)",
                "Mean",
                "Slice",
                "Centre LPS (mm)",
            ]
        ]
        for r in data.lesions:
            axes = f"{r.long_axis_mm:.1f}" + (
                f" x {r.short_axis_mm:.1f}" if r.kind == "segment" else ""
            )
            rows.append(
                [
                    str(r.number),
                    r.name + ("" if r.kind == "segment" else " (ruler)"),
                    axes,
                    f"{r.volume_ml:.2f}" if r.kind == "segment" else "-",
                    f"{r.mean:.0f}" if r.kind == "segment" and r.mean == r.mean else "-",
                    str(r.slice_number),
                    ", ".join(f"{v:.1f}" for v in r.centre_lps),
                ]
            )
        story.append(
            table(
                rows, [0.7 * cm, 3.6 * cm, 3.2 * cm, 2 * cm, 1.4 * cm, 1.2 * cm, width - 12.1 * cm]
            )
        )
        for r in data.lesions:
            if r.lung_rads:
                story.append(Paragraph(_esc(f"Lesion {r.number}: {r.lung_rads}"), small))

    if data.key_images:
        story.append(Paragraph("Key images", h2))
        for img, caption in data.key_images:
            story.append(
                KeepTogether(
                    [
                        image(img, width * 0.6, 9 * cm),
                        Paragraph(_esc(caption), small),
                        Spacer(1, 0.3 * cm),
                    ]
                )
            )
    if data.measurements:
        story.append(Paragraph("Measurements", h2))
        rows = [["#", "Where", "Figures"]] + [list(r) for r in data.measurements]
        story.append(table(rows, [1 * cm, 4.5 * cm, width - 5.5 * cm]))
    if data.segments:
        story.append(Paragraph("Segmentation", h2))
        made = [data.made_by.get(s.value, "") for s in data.segments]
        if any(m != "MANUAL" for m in made):
            story.append(Paragraph("AI result. " + _esc(RESEARCH_USE), warn))
        u = f" ({data.units})" if data.units else ""
        rows = [["Label", "Made by", "Voxels", "Volume (mL)", f"Mean{u}", f"SD{u}"]]
        for s, m in zip(data.segments, made, strict=True):
            rows.append(
                [
                    s.name,
                    MADE_BY.get(m, m)
                    + (
                        f" ({data.segment_models[s.value]})"
                        if s.value in data.segment_models
                        else ""
                    ),
                    f"{s.voxels}",
                    f"{s.volume_ml:.2f}",
                    f"{s.mean:.1f}",
                    f"{s.sd:.1f}",
                ]
            )
        figures = (width - 8.5 * cm) / 4
        story.append(table(rows, [4 * cm, 4.5 * cm, figures, figures, figures, figures]))
        for note in data.segmentation_notes:
            story.append(Paragraph(_esc(note), warn if is_flagged([note]) else small))
    for cls, thumb in data.classifications:
        block: list[Any] = [Paragraph(f"Classification: {_esc(cls.provenance.name)}", h2)]
        block.append(Paragraph(_esc(RESEARCH_USE), warn))
        rows = [["Class", "Probability"]] + [
            [k, f"{v:.3f}"] for k, v in sorted(cls.probabilities.items(), key=lambda kv: -kv[1])
        ]
        block.append(table(rows, [8 * cm, 4 * cm]))
        block.append(Paragraph(f"Series probability: {_esc(cls.aggregation)}.", small))
        for note in cls.notes:
            block.append(Paragraph(_esc(note), warn))
        if thumb is not None:
            block.append(image(thumb, 8 * cm, 8 * cm))
            block.append(Paragraph(f"Grad-CAM heat map for '{_esc(cls.target_class)}'.", small))
        story.append(KeepTogether(block))
    for rec in data.risk:
        result = rec.get("result", {})
        block = [Paragraph(f"Risk: {_esc(rec.get('model_name', rec.get('model', '')))}", h2)]
        block.append(Paragraph(_esc(result.get("research_use", RESEARCH_USE)), warn))
        low, high = result.get("interval_95", [float("nan"), float("nan")])
        outcome, band = _esc(result.get("outcome", "")), _esc(result.get("band", ""))
        p = 100 * float(result.get("probability", 0.0))
        sha = _esc(result.get("weights_sha256", ""))[:16]
        block.append(
            Paragraph(
                f"{outcome}: <b>{p:.1f} %</b> (95 % interval {100 * low:.1f}-{100 * high:.1f} %), "
                f"band <b>{band}</b>. Model version {_esc(result.get('version', ''))}, weights "
                f"SHA-256 {sha}..., kept {_esc(rec.get('saved', ''))} UTC.",
                body,
            )
        )
        contrib = result.get("contributions_log_odds", {})
        inputs = rec.get("inputs", {})
        rows = [["Feature", "Value", "Contribution (log-odds)", ""]]
        biggest = max((abs(v) for v in contrib.values()), default=1.0) or 1.0
        for name, v in sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:12]:
            bar = _bar(v / biggest)
            rows.append([name, str(inputs.get(name, "")) or "missing", f"{v:+.3f}", bar])
        block.append(table(rows, [5.5 * cm, 3 * cm, 3.5 * cm, width - 12 * cm]))
        for w in result.get("warnings", []):
            block.append(Paragraph(_esc(f"{w.get('feature')}: {w.get('message')}"), small))
        story.append(KeepTogether(block))

    algos: list[tuple[str, Provenance]] = []
    if data.segmentation is not None:
        algos.append(("Segmentation", data.segmentation))
    algos += [("Classification", c.provenance) for c, _ in data.classifications]
    if algos:
        story.append(Paragraph("Provenance of AI results", h2))
        for what, a in algos:
            story.append(Paragraph(_esc(what), styles["Heading4"]))
            story.append(
                table([[k, v] for k, v in a.as_rows()], [4 * cm, width - 4 * cm], header=False)
            )
    story.append(Paragraph("Series warnings", h2))
    if data.warnings:
        for w in data.warnings:
            story.append(Paragraph("• " + _esc(w), body))
    else:
        story.append(Paragraph("None.", body))
    if data.files:
        story.append(Paragraph("Files in this bundle", h2))
        story.append(Paragraph(_esc(", ".join(data.files)), small))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(regular, 8)
        canvas.setFillColor(colors.HexColor("#b00020"))
        canvas.drawString(2 * cm, 1.2 * cm, RESEARCH_USE)
        canvas.setFillColor(colors.black)
        canvas.drawRightString(
            A4[0] - 2 * cm, 1.2 * cm, f"MedView {__version__}  {data.created}  page {doc.page}"
        )
        canvas.restoreState()

    with atomic_path(path, ".pdf") as tmp:
        doc = SimpleDocTemplate(
            tmp,
            pagesize=A4,
            leftMargin=2 * cm,
            rightMargin=2 * cm,
            topMargin=1.8 * cm,
            bottomMargin=2 * cm,
            title="MedView report",
            author="MedView",
            subject="Imaging report (research use)",
            creator=f"MedView {__version__}",
            keywords="",
        )
        doc.build(story, onFirstPage=footer, onLaterPages=footer)


def _bar(fraction: float) -> Any:
    """A signed horizontal bar: red to the right (raises risk), blue to the left."""
    from reportlab.graphics.shapes import Drawing, Line, Rect
    from reportlab.lib import colors

    w, h = 100.0, 10.0
    d = Drawing(w, h)
    mid = w / 2
    length = abs(fraction) * (w / 2 - 2)
    x = mid if fraction >= 0 else mid - length
    color = colors.HexColor("#c0392b") if fraction >= 0 else colors.HexColor("#2e86c1")
    d.add(Rect(x, 1, length, h - 2, fillColor=color, strokeColor=None))
    d.add(Line(mid, 0, mid, h, strokeColor=colors.black, strokeWidth=0.5))
    return d
